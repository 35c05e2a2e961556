"""Trainer overhead: GRPO step time of `tinyzero-trl train` against bare TRL `GRPOTrainer`, same settings.

Both sides train the same tiny model on the same generated countdown prompts with the same GRPOConfig and
reward functions; the wrapper's side goes through the whole CLI (accelerate launch, Hydra, validation, our
callbacks). Step time is TRL's own `step_time` metric; the first steps (warm-up) are dropped and the median
of the rest is compared. Runs alternate A/B to spread machine noise over both sides.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

STEPS = 16
WARMUP = 2
OVERRIDES = ["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", "data.source=generate", "data.num_train=64",
             f"training.max_steps={STEPS}", f"training.save_steps={STEPS}", "training.beta=0.0"]


def ours(model: str, out: Path, overrides: list[str] = OVERRIDES) -> list[float]:
    """Step times of a `tinyzero-trl train` run with ``overrides`` (read back from its metrics.jsonl)."""
    cmd = [sys.executable, "-m", "tinyzero_trl.cli", "train", *overrides, f"model.name_or_path={model}",
           f"training.output_dir={out}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["step_time"] for r in rows]


BARE = r'''
import json, sys
from trl import GRPOConfig, GRPOTrainer
from transformers import AutoTokenizer, TrainerCallback
from tinyzero_trl.config import validate
from tinyzero_trl.config.compose import compose
from tinyzero_trl.data import load_task_data
from tinyzero_trl.rewards import get_reward_funcs

model, out, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
raw = compose(overrides + [f"model.name_or_path={model}", f"training.output_dir={out}"])
cfg = validate(raw)
tok = AutoTokenizer.from_pretrained(model)
train = load_task_data(cfg.data, tok, seed=cfg.seed)["train"]
funcs, weights = get_reward_funcs(cfg.rewards)
times = []

class Grab(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "step_time" in logs:
            times.append(logs["step_time"])

args = GRPOConfig(**raw["training"], seed=cfg.seed, reward_weights=weights, model_init_kwargs={"dtype": "float32"})
GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=train, processing_class=tok,
            callbacks=[Grab()]).train()
print("STEP_TIMES", json.dumps(times))
'''


def bare(model: str, out: Path) -> list[float]:
    """Step times of plain TRL GRPOTrainer with the identical resolved settings, in its own process."""
    proc = subprocess.run([sys.executable, "-c", BARE, model, str(out), json.dumps(OVERRIDES)],
                          check=True, capture_output=True, text=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("STEP_TIMES"))
    return json.loads(line.split(" ", 1)[1])


def run(quick: bool = False) -> dict:
    """Alternate bare/ours runs; return median step times and their ratio (target <= 1.03)."""
    from tinyzero_trl.tiny.random_model import build_tiny_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rounds = 1 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model("qwen2", Path(tmp) / "model"))
        a_times, b_times = [], []
        for i in range(rounds):
            a_times += bare(model, Path(tmp) / f"bare{i}")[WARMUP:]
            b_times += ours(model, Path(tmp) / f"ours{i}")[WARMUP:]
    a, b = statistics.median(a_times), statistics.median(b_times)
    return {"bare_trl_step_s": round(a, 4), "tinyzero_step_s": round(b, 4), "overhead_ratio": round(b / a, 3),
            "steps_compared_each": len(a_times), "target_max_ratio": 1.03}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
