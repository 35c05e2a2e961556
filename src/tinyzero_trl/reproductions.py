"""Reproduction folders: find them, read their pinned config, and turn one into a launch plan.

A folder ``reproductions/NAME/`` holds ``config.yaml`` (the pinned run), ``expected.json`` (reference curve,
tolerances, provenance), ``run.sh`` and ``README.md``. ``reproduce`` trains, evaluates and writes
``summary.json``; ``verify`` (verify.py) checks the run against ``expected.json``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tinyzero_trl.launch import LaunchPlan, add_vllm_server, run_plan, wants_vllm_server
from tinyzero_trl.scale import resource_lines

REQUIRED_FILES = ("config.yaml", "expected.json", "run.sh", "README.md")


def reproductions_root() -> Path:
    """``$TINYZERO_REPRODUCTIONS``, else the folder shipped in the wheel, else the checkout's ``reproductions/``."""
    env = os.environ.get("TINYZERO_REPRODUCTIONS")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "_reproductions", here.parent.parent / "reproductions"]
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError("no reproductions folder found; set TINYZERO_REPRODUCTIONS=DIR")


def runs_root() -> Path:
    """Where runs go by default: ``$TINYZERO_RUNS`` (``/runs`` in the images) or ``./runs``."""
    return Path(os.environ.get("TINYZERO_RUNS", "runs"))


@dataclass
class Reproduction:
    """One reproduction folder's pinned configuration."""

    name: str
    folder: Path
    claim: str
    recipe: str  # Hydra group=option, e.g. countdown=grpo-qwen-2.5-3b-base
    overrides: list[str] = field(default_factory=list)
    accelerate: str | None = None
    num_processes: int = 1
    hardware: str = ""
    cpu: bool = False  # a CPU reproduction (countdown-tiny); GPU ones refuse to start without CUDA
    # Start from a packaged tiny base model (rebuilt offline if stale): true or "countdown" (countdown-tiny's), "math".
    tiny_base: bool | str = False
    image: str = ""
    gpu_memory_gb: float | None = None
    vllm_mode: str | None = None
    evaluate: dict | None = None  # arguments of evaluate.evaluate for base/final accuracy
    revisions: dict = field(default_factory=dict)

    @classmethod
    def load(cls, name: str) -> Reproduction:
        """Read ``reproductions/NAME/config.yaml``; unknown names list the known ones."""
        root = reproductions_root()
        folder = root / name
        if not (folder / "config.yaml").is_file():
            known = ", ".join(list_reproductions()) or "none"
            raise FileNotFoundError(f"no reproduction named {name!r} in {root}; known: {known}")
        raw = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        fields = {f for f in cls.__dataclass_fields__} - {"folder", "name"}
        unknown = set(raw) - fields
        if unknown:
            raise ValueError(f"{folder / 'config.yaml'}: unknown keys {sorted(unknown)}; valid: {sorted(fields)}")
        return cls(name=name, folder=folder, **raw)

    def hydra_overrides(self, output_dir: Path, extra: list[str]) -> list[str]:
        """Recipe, pinned overrides, revisions, the run directory, then the user's overrides (last wins)."""
        pinned = [f"{k}={v}" for k, v in self.revisions.items() if v]
        return [f"+{self.recipe}", *self.overrides, *pinned, f"training.output_dir={output_dir}", *extra]

    def plan(self, output_dir: Path, extra: list[str], **launch) -> LaunchPlan:
        """The accelerate launch for this reproduction."""
        return LaunchPlan(overrides=self.hydra_overrides(output_dir, extra), accelerate=self.accelerate,
                          num_processes=launch.pop("num_processes", None) or self.num_processes,
                          cpu=self.cpu, **launch)


def list_reproductions() -> list[str]:
    """Names of the reproduction folders."""
    try:
        root = reproductions_root()
    except FileNotFoundError:
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.yaml").is_file())


def describe(repro: Reproduction, plan: LaunchPlan, output_dir: Path) -> str:
    """The dry-run text: what would run, where, on what hardware."""
    lines = [
        f"reproduction : {repro.name} -- {repro.claim}",
        f"recipe       : +{repro.recipe}",
        f"hardware     : {repro.hardware or 'not stated'}",
        f"image        : {repro.image or 'not pinned'}",
        f"processes    : {plan.num_processes} (accelerate config: {repro.accelerate or 'default'})",
        f"vLLM mode    : {repro.vllm_mode or 'off'}",
        f"GPU memory   : {f'~{repro.gpu_memory_gb:g} GB per GPU expected' if repro.gpu_memory_gb else 'n/a (CPU)'}",
        f"run dir      : {output_dir}",
        "launch       : " + plan.shell(),
    ]
    if repro.evaluate:
        lines.append(f"evaluation   : base and final model, {repro.evaluate}")
    return "\n".join(lines)


def reproduce(name: str, *, output_dir: str | None = None, dry_run: bool = False, extra: list[str] | None = None,
              num_processes: int | None = None) -> int:
    """Run a reproduction end to end: base evaluation, training, final evaluation, ``summary.json``."""
    from tinyzero_trl.run_dir import read_status, write_json

    repro = Reproduction.load(name)
    out = Path(output_dir) if output_dir else runs_root() / name
    extra = list(extra or [])
    start = time.time()  # wall_seconds counts everything a user waits for, the tiny base build included
    if repro.tiny_base:
        from tinyzero_trl.tiny_pretrain import base_module

        # Resolved before the plan so the dry run names the real path; a dry run builds nothing.
        module = base_module("countdown" if repro.tiny_base is True else repro.tiny_base)
        base = module.tiny_base_path(build=not dry_run)
        extra = [f"model.name_or_path={base}", *extra]
    plan = repro.plan(out, extra, num_processes=num_processes)
    from tinyzero_trl.config import compose, validate

    resolved = compose(plan.overrides)
    validate(resolved)  # a bad pin fails here, before any download or GPU time
    if repro.vllm_mode == "server" and wants_vllm_server(resolved) and not repro.cpu:
        add_vllm_server(plan, resolved, 1)  # the server reproductions' hardware: one GPU beside the trainers
    print(describe(repro, plan, out), flush=True)
    print("\n".join(resource_lines(plan, resolved, mode_line=False, cpu=repro.cpu)), flush=True)
    if dry_run:
        return 0
    if not repro.cpu and not _cuda_available():
        raise RuntimeError(f"{name} is sized for {repro.hardware} and no CUDA GPU is visible; run it in the CUDA "
                           "image on GPUs (docker/README.md), or try countdown-tiny on CPU")
    summary: dict = {"reproduction": name}
    if repro.evaluate and "base_accuracy" not in _existing_summary(out):
        summary["base_accuracy"] = _accuracy(repro, resolved["model"]["name_or_path"], out / "eval_base.json",
                                             data=resolved["data"])
    code = run_plan(plan)  # starts and stops the vLLM server when the plan has one
    if code != 0 or read_status(out).get("status") != "completed":
        print(f"[tinyzero-trl] training did not complete (exit {code}); see {out}/run.json", file=sys.stderr)
        return code or 1
    if repro.evaluate:
        summary["final_accuracy"] = _accuracy(repro, str(out), out / "eval_final.json", data=resolved["data"])
    previous = _existing_summary(out)
    summary = {**previous, **summary, "wall_seconds": round(previous.get("wall_seconds", 0) + time.time() - start, 1)}
    write_json(out / "summary.json", summary)
    print(f"[tinyzero-trl] summary: {summary}")
    from tinyzero_trl.curves import plot_curves

    print(f"[tinyzero-trl] curves: {plot_curves({name: out}, out / 'curves.png', title=name)}")
    return 0


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _existing_summary(out: Path) -> dict:
    import json

    path = out / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _accuracy(repro: Reproduction, model_path: str, output: Path, *, data: dict) -> float:
    """Greedy held-out accuracy of ``model_path`` on the run's own task data (written to ``output``)."""
    from tinyzero_trl.evaluate import evaluate

    args = dict(repro.evaluate)
    task = args.pop("task")
    result = evaluate(task, model_path, output=str(output), data_overrides=data, **args)
    print(f"[tinyzero-trl] {model_path}: {task} accuracy {result['accuracy']:.3f} on {result['num_items']} items")
    return result["accuracy"]
