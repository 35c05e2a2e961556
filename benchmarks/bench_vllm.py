"""vLLM against HF generate, side by side in one run, on vLLM 0.31.0's CPU build and a tiny model it runs.

- GRPO step time: `tinyzero-trl train` with `training.use_vllm=true` (colocate) and with HF generate, identical
  otherwise (same recipe, model, prompts, group size and completion length). TRL's `step_time`, first steps
  dropped, median of the rest; runs alternate to spread machine noise over both sides.
- Evaluation throughput: greedy completions per second of `generate_vllm` and `generate_hf` on the same
  countdown prompts. vLLM's figure counts generation only; its engine start-up is reported beside it.

Needs the vLLM environment (README "vLLM on CPU"); `nox -s bench` runs it there (session bench_vllm).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

STEPS, WARMUP = 8, 2
EVAL_ITEMS, EVAL_TOKENS = 64, 128
OVERRIDES = ["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", "data.source=generate", "data.num_train=64",
             f"training.max_steps={STEPS}", f"training.save_steps={STEPS}", "training.max_completion_length=64"]


def step_times(model: str, out: Path, use_vllm: bool) -> list[float]:
    """Step times of `tinyzero-trl train` with HF generate or vLLM colocated (``bench_trainer.ours``)."""
    from bench_trainer import ours

    return ours(model, out, [*OVERRIDES, f"training.use_vllm={str(use_vllm).lower()}"])


def evaluation(model: str) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinyzero_trl.config import DataConfig
    from tinyzero_trl.data import load_task_data
    from tinyzero_trl.evaluation.generation import Sampling, generate_hf, generate_vllm, prompt_texts

    tok = AutoTokenizer.from_pretrained(model)
    data = DataConfig(task="countdown", source="generate", template="r1-chat", num_train=8, num_test=EVAL_ITEMS)
    texts = prompt_texts(load_task_data(data, tok, seed=0)["test"]["prompt"], tok)
    sampling = Sampling(max_new_tokens=EVAL_TOKENS)
    timings: dict = {}
    start = time.perf_counter()
    vllm = generate_vllm(model, texts, sampling, timings=timings)
    vllm_wall = time.perf_counter() - start
    hf_model = AutoModelForCausalLM.from_pretrained(model).eval()
    start = time.perf_counter()
    hf = generate_hf(hf_model, tok, texts, sampling, progress=False)
    hf_seconds = time.perf_counter() - start
    same = sum(a == b for a, b in zip(vllm, hf)) / len(texts)
    return {"items": len(texts), "max_new_tokens": EVAL_TOKENS, "greedy_agreement": round(same, 3),
            "hf_completions_per_s": round(len(texts) / hf_seconds, 2),
            "vllm_completions_per_s": round(len(texts) / timings["generate_seconds"], 2),
            "vllm_engine_start_s": round(timings["engine_seconds"], 1), "vllm_wall_s": round(vllm_wall, 1),
            "throughput_ratio": round(hf_seconds / timings["generate_seconds"], 2),
            "throughput_ratio_with_start_up": round(hf_seconds / vllm_wall, 2)}


def run(quick: bool = False) -> dict:
    """Both comparisons; ratios are vLLM's speed-up over HF (above 1: vLLM faster)."""
    from tinyzero_trl.tiny.random_model import build_tiny_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    rounds = 1 if quick else 2
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model("qwen2", Path(tmp) / "model", vllm=True))
        hf_steps, vllm_steps = [], []
        for i in range(rounds):
            hf_steps += step_times(model, Path(tmp) / f"hf{i}", use_vllm=False)[WARMUP:]
            vllm_steps += step_times(model, Path(tmp) / f"vllm{i}", use_vllm=True)[WARMUP:]
        evals = evaluation(model)
    hf_step, vllm_step = statistics.median(hf_steps), statistics.median(vllm_steps)
    return {"grpo_hf_step_s": round(hf_step, 3), "grpo_vllm_colocate_step_s": round(vllm_step, 3),
            "grpo_step_ratio": round(hf_step / vllm_step, 2), "steps_compared_each": len(hf_steps),
            "evaluation": evals, "load_1min_after": os.getloadavg()[0]}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
