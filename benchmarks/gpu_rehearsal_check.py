"""The GPU check of the rehearsals: countdown-3b and math-1.5b at their real architecture's size, on one GPU.

    python benchmarks/gpu_rehearsal_check.py                 # on a CUDA machine (one 80 GB GPU), < 10 minutes
    python benchmarks/gpu_rehearsal_check.py --dry-run       # anywhere: what it would run, and what must be carried
    python benchmarks/gpu_rehearsal_check.py --cpu-smoke     # its whole code path at the rehearsal's tiny size, on CPU

For each folder: a random-weight stand-in of the real model at full size (Qwen2.5-3B's and R1-Distill-Qwen-1.5B's
config.json shapes, the real 151,936-row vocabulary, bf16; ``tiny.rehearsal``), the folder's recipe and
overrides with the data mirrors of its rehearsal, vLLM colocated on the GPU (math-1.5b's server mode needs a
second GPU: colocated here), a few GRPO steps. It prints, per folder, the median step time (trl's
``step_time``), completion tokens per second, the peak GPU memory in use (nvidia-smi, sampled every 0.5 s: vLLM's
reserved pool included) beside the dry run's model-state estimate for the same launch, and the folder's own dry
run for its real launch. Nothing in the package depends on this script; no GPU has been lent to this project, so
it has not run on one yet (``--cpu-smoke`` has).

What the check changes besides the scale of the rehearsal (printed): one process on one GPU (the folders use 8 and
3), per-device batch = one prompt's generations, ``CHECK_TOKENS`` new tokens, ``vllm_gpu_memory_utilization``
``CHECK_VLLM_SHARE`` so that the training states fit beside the engine, no checkpoints.

A CUDA machine without network and without trl (the workplace's device image: Python 3.12, torch, transformers,
accelerate, peft): ``--dry-run`` lists the wheels to carry, as the device README says to carry them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FOLDERS = ("countdown-3b", "math-1.5b")
CHECK_TOKENS = 512
CHECK_VLLM_SHARE = 0.25
STEPS = 3
# What the package imports that the device image lacks (pins from constraints.txt); vLLM's CUDA wheel is far over
# the 64 MiB a device call carries and is built for its own torch, so without it generation is HF generate (said).
CARRY = {"trl": "trl==1.16.0", "datasets": "datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19",
         "hydra": "hydra-core==1.3.8", "omegaconf": "omegaconf==2.3.1 antlr4-python3-runtime==4.9.3",
         "pydantic": "pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5",
         "math_verify": "math-verify==0.9.0 latex2sympy2_extended==1.11.0",
         "deepspeed": "deepspeed==0.19.8 (an sdist: optional, without it the check runs plain DDP, said)",
         "vllm": "vllm==0.31.0 (not carryable: pre-install it, or the check generates with HF)"}


def use_checkout_source() -> None:
    """Import this checkout's package without an install (a device machine): its src/ first on sys.path, and in
    PYTHONPATH for the trainer processes that accelerate starts."""
    if importlib.util.find_spec("tinyzero_trl") is not None:
        return
    src = str(Path(__file__).resolve().parents[1] / "src")
    sys.path.insert(0, src)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)


def missing_modules() -> list[str]:
    return [name for name in CARRY if importlib.util.find_spec(name) is None]


class PeakMemory(threading.Thread):
    """The highest GPU memory in use while it runs, from nvidia-smi every 0.5 s (MiB); 0 without nvidia-smi."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = 0, threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.peak = max([self.peak, *(int(x) for x in out.split() if x.strip().isdigit())])
            except (OSError, subprocess.SubprocessError):
                return


def memory_line(plan_text: str) -> str:
    """The dry run's model-state estimate (its ``memory`` line) of a launch plan."""
    return next((line for line in plan_text.splitlines() if line.startswith("memory")), "memory: -")


def overrides(name: str, model_dir: str, out: Path, *, cpu: bool, vllm: bool) -> tuple[list[str], list[str]]:
    """The folder's recipe and overrides, with the check's changes (returned second, to print)."""
    from tinyzero_trl.config.compose import compose
    from tinyzero_trl.reproduce.folders import Reproduction

    repro = Reproduction.load(name)
    real = compose(repro.hydra_overrides(out, []))

    def setting(key: str, value) -> str:  # Hydra overrides a key the recipe sets, and adds (+) one it does not
        node = real
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return f"{'' if node is not None else '+'}{key}={value}"

    values = {"model.name_or_path": model_dir, "training.max_steps": STEPS, "stop_at_step": "null",
              "training.per_device_train_batch_size": real["training"]["num_generations"],
              "training.gradient_accumulation_steps": 1, "training.steps_per_generation": 1,
              "training.max_completion_length": 16 if cpu else CHECK_TOKENS, "training.logging_steps": 1,
              "training.save_strategy": "no", "training.use_vllm": str(vllm).lower(), "training.vllm_mode": "colocate",
              "training.vllm_gpu_memory_utilization": CHECK_VLLM_SHARE}
    if cpu:
        values.update({"model.dtype": "float32", "training.bf16": "false"})
    changes = [setting(key, value) for key, value in values.items()]
    return repro.hydra_overrides(out, changes), changes


def check(name: str, work: Path, *, cpu: bool, dry_run: bool) -> dict:
    from tinyzero_trl.launch.plan import prepare
    from tinyzero_trl.launch.run import run
    from tinyzero_trl.reproduce.folders import Reproduction
    from tinyzero_trl.reproduce.rehearsal import environment
    from tinyzero_trl.reproduce.rehearsal_plan import plan_rehearsal
    from tinyzero_trl.run.metrics import read_metrics
    from tinyzero_trl.tiny.hub_mirrors import build_mirror
    from tinyzero_trl.tiny.rehearsal import build_rehearsal_model

    repro = Reproduction.load(name)
    out = work / name
    plan = plan_rehearsal(repro, out, assets=work / "assets", vllm=importlib.util.find_spec("vllm") is not None)
    model_dir = str(work / "models" / (plan.model.replace("/", "--") + ("-tiny" if cpu else "-full")))
    args, changes = overrides(name, model_dir, out, cpu=cpu, vllm=plan.vllm and not cpu)
    accelerate = repro.accelerate if importlib.util.find_spec("deepspeed") else "ddp"
    real = prepare(repro.hydra_overrides(out, []), **repro.launch_options())
    real_memory = memory_line(real.text)
    print(f"== {name}: stand-in of {plan.model} at {'the rehearsal' if cpu else 'full'} size; changes: {changes}; "
          f"accelerate {accelerate} on 1 process", flush=True)
    if dry_run:
        return {"folder": name, "folder's own launch": real_memory}
    started = time.time()
    build_rehearsal_model(plan.model, model_dir, full_size=not cpu, device="cpu" if cpu else "cuda")
    for dataset in plan.datasets:
        build_mirror(work / "assets" / "hub", dataset)
    built = time.time() - started
    with environment({**plan.env, "VLLM_CPU_KVCACHE_SPACE": "1"}):
        prepared = prepare(args, accelerate=accelerate, num_processes=1, cpu=cpu)
        ours = memory_line(prepared.text)
        peak = PeakMemory()
        peak.start()
        outcome = run(prepared)
        peak.done.set()
    rows = read_metrics(out / "metrics.jsonl") if (out / "metrics.jsonl").is_file() else []
    times = [r["step_time"] for r in rows if "step_time" in r]
    tokens = [r["completions/mean_length"] * prepared.config.training.per_device_train_batch_size for r in rows]
    return {"folder": name, "exit": outcome.code, "message": outcome.message, "build_s": round(built, 1),
            "steps": len(rows), "step_time_s": round(statistics.median(times), 2) if times else None,
            "completion_tokens_per_s": round(sum(tokens) / sum(times), 1) if times else None,
            "peak_gpu_mib": peak.peak, "estimate (this launch)": ours, "folder's own launch": real_memory,
            "wall_s": round(time.time() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan and what must be carried; run nothing")
    parser.add_argument("--cpu-smoke", action="store_true", help="the same path at the rehearsal's tiny size on CPU")
    parser.add_argument("--only", choices=FOLDERS, default=None)
    parser.add_argument("--work", default=None, help="where models, mirrors and runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    use_checkout_source()
    missing = missing_modules()
    needed = [m for m in missing if m != "vllm" and not (m == "deepspeed")]
    if missing:
        print("not installed here: " + "; ".join(CARRY[m] for m in missing) + ". Carry them as wheels "
              "(/work/.library/device/README.md: pip download --no-deps --only-binary=:all: --python-version 3.12 ... "
              "-d .whl; antlr4-python3-runtime 4.9.3 is an sdist: pip wheel it here)", flush=True)
    if needed and not args.dry_run:
        print(f"gpu_rehearsal_check: missing {needed}; see the line above", file=sys.stderr)
        return 2
    if not args.dry_run and not args.cpu_smoke:
        import torch

        if not torch.cuda.is_available():
            print("gpu_rehearsal_check: needs a CUDA GPU and none is visible; --cpu-smoke runs the same path on CPU",
                  file=sys.stderr)
            return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-rehearsal-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tinyzero_trl.errors import UserError

    try:
        results = [check(name, work, cpu=args.cpu_smoke, dry_run=args.dry_run)
                   for name in ([args.only] if args.only else FOLDERS)]
    except UserError as err:  # one line, as the CLI ends its errors
        print(f"gpu_rehearsal_check: {err}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2))
    return 0 if all(r.get("exit", 0) == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
