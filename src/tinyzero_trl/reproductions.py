"""Reproduction folders: find them, read their pinned config, and turn one into a launch plan.

A folder ``reproductions/NAME/`` holds ``config.yaml`` (the pinned run), ``expected.json`` (reference curve,
tolerances, provenance), ``run.sh`` and ``README.md``. ``reproduce`` trains, evaluates and writes
``summary.json``; ``verify`` (verify.py) checks the run against ``expected.json``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinyzero_trl import launch
from tinyzero_trl.errors import EXIT_FAILED, UserError, report
from tinyzero_trl.run_dir import read_json, read_status, read_yaml, write_json

REQUIRED_FILES = ("config.yaml", "expected.json", "run.sh", "README.md")
SUMMARY_FILE = "summary.json"


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
    # Start from a packaged tiny base model (rebuilt offline if stale): true or "countdown" (countdown-tiny's), "math",
    # "clevr".
    tiny_base: bool | str = False
    image: str = ""
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
            raise UserError(f"no reproduction named {name!r} in {root}; known: {known}")
        raw = read_yaml(folder / "config.yaml", error=UserError)
        fields = {f for f in cls.__dataclass_fields__} - {"folder", "name"}
        unknown = set(raw) - fields
        if unknown:
            raise UserError(f"{folder / 'config.yaml'}: unknown keys {sorted(unknown)}; valid: {sorted(fields)}")
        return cls(name=name, folder=folder, **raw)

    def hydra_overrides(self, output_dir: Path, extra: list[str]) -> list[str]:
        """Recipe, pinned overrides, revisions, the run directory, then the user's overrides (last wins)."""
        pinned = [f"{k}={v}" for k, v in self.revisions.items() if v]
        return [f"+{self.recipe}", *self.overrides, *pinned, f"training.output_dir={output_dir}", *extra]

    def prepare(self, output_dir: Path, extra: list[str], num_processes: int | None = None) -> launch.Prepared:
        """Compose, validate and plan this reproduction's launch (the server reproductions get one vLLM GPU)."""
        return launch.prepare(self.hydra_overrides(output_dir, extra), accelerate=self.accelerate,
                              num_processes=num_processes or self.num_processes, cpu=True if self.cpu else None,
                              vllm_gpus=1 if self.vllm_mode == "server" and not self.cpu else 0)

    def pinned(self, output_dir: Path) -> tuple[dict, set]:
        """The config a run of this reproduction must have been made with, and the keys free to differ.

        The tiny reproductions' base model path is wherever the package is installed, so it is not pinned.
        """
        from tinyzero_trl.recipes import compose

        free = {("model", "name_or_path")} if self.tiny_base else set()
        return compose(self.hydra_overrides(output_dir, [])), free

    def header(self) -> list[str]:
        """The dry run's first lines: what is reproduced, on what, and how it is evaluated."""
        lines = [f"reproduction : {self.name} -- {self.claim}", f"recipe       : +{self.recipe}",
                 f"hardware     : {self.hardware or 'not stated'}", f"image        : {self.image or 'not pinned'}"]
        if self.evaluate:
            lines.append(f"evaluation   : base and final model, {self.evaluate}")
        return lines


def list_reproductions() -> list[str]:
    """Names of the reproduction folders."""
    try:
        root = reproductions_root()
    except FileNotFoundError:
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.yaml").is_file())


def reproduce(name: str, *, output_dir: str | None = None, dry_run: bool = False, extra: list[str] | None = None,
              num_processes: int | None = None, debug: bool = False) -> int:
    """Run a reproduction end to end: base evaluation, training, final evaluation, ``summary.json``, curves.

    Safe to run again into the same directory: a finished reproduction is left alone (one line says so), an
    interrupted one resumes where it stopped, and ``fresh=true`` moves the old directory aside before anything.
    """
    repro = Reproduction.load(name)
    out = Path(output_dir) if output_dir else runs_root() / name
    extra = list(extra or [])
    start = time.time()  # wall_seconds counts everything a user waits for, the tiny base build included
    if repro.tiny_base:
        from tinyzero_trl.tiny_pretrain import tiny_base_path

        # Resolved before the plan so the dry run names the real path; a dry run builds nothing.
        base = tiny_base_path("countdown" if repro.tiny_base is True else repro.tiny_base, build=not dry_run)
        extra = [f"model.name_or_path={base}", *extra]
    prepared = repro.prepare(out, extra, num_processes)
    print(launch.render(prepared, repro.header(), sized_for_cpu=repro.cpu), flush=True)
    if dry_run:
        return 0
    if not repro.cpu and not launch.cuda_available():
        raise UserError(f"{name} is sized for {repro.hardware} and no CUDA GPU is visible; run it in the CUDA image "
                        "on GPUs (docker/README.md), or try countdown-tiny on CPU")
    launch.preflight(prepared)
    done = launch.open_run_dir(prepared)  # fresh=true moves an old run aside here, before the base evaluation
    summary = read_json(out / SUMMARY_FILE)
    waited_before = float(summary.get("wall_seconds") or 0)  # earlier, interrupted attempts
    if done and (not repro.evaluate or "final_accuracy" in summary):
        print(f"[tinyzero-trl] {name}: {done}", flush=True)
        return 0
    resolved = prepared.resolved
    if repro.evaluate and "base_accuracy" not in summary:
        summary["base_accuracy"] = _accuracy(repro, resolved["model"]["name_or_path"], out / "eval_base.json",
                                             resolved=resolved, base=True)
        summary["wall_seconds"] = round(waited_before + time.time() - start, 1)
        write_json(out / SUMMARY_FILE, {"reproduction": name, **summary})  # kept if training is interrupted
    if not done:
        code, error = launch.execute(prepared.plan, debug=debug)
        if code != 0 or read_status(out).get("status") != "completed":
            if error:
                report("reproduce", f"training did not complete: {error.get('message')}", every_rank=True)
                return int(error.get("code") or EXIT_FAILED)
            report("reproduce", f"training did not complete (exit {code}); see {out / 'run.json'}", every_rank=True)
            return code or EXIT_FAILED
    if repro.evaluate:
        summary["final_accuracy"] = _accuracy(repro, str(out), out / "eval_final.json", resolved=resolved, base=False)
    summary = {"reproduction": name, **summary, "wall_seconds": round(waited_before + time.time() - start, 1)}
    write_json(out / SUMMARY_FILE, summary)
    print(f"[tinyzero-trl] summary: {summary}")
    from tinyzero_trl.curves import plot_curves

    print(f"[tinyzero-trl] curves: {plot_curves({name: out}, out / 'curves.png', title=name)}")
    return 0


def _accuracy(repro: Reproduction, model_path: str, output: Path, *, resolved: dict, base: bool) -> float:
    """Greedy held-out accuracy of ``model_path`` on the run's own task data (written to ``output``).

    The base model is loaded with the recipe's revision and ``trust_remote_code``, exactly as the trainer loads
    it; answers are scored by the accuracy reward behind the recipe's rewards.
    """
    from tinyzero_trl.evaluate import evaluate

    args = dict(repro.evaluate)
    task = args.pop("task")
    # The evaluation protocol may use other data than training (a benchmark, its own prompt): `evaluate.data`.
    data = {**resolved["data"], **(args.pop("data", None) or {})}
    model = resolved["model"]
    load = {"revision": model.get("revision"), "trust_remote_code": bool(model.get("trust_remote_code"))} if base else {}
    result = evaluate(task, model_path, output=str(output), data=data, rewards=resolved["rewards"], **load, **args)
    print(f"[tinyzero-trl] {model_path}: {task} accuracy {result['accuracy']:.3f} on {result['num_items']} items")
    return result["accuracy"]
