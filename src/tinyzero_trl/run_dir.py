"""The run directory: status, environment record, resolved config, and where to resume from.

``run.json`` says whether a run is running, completed or failed, so that a crashed or half-written run is never
mistaken for a good one; ``env.json`` records what produced it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

RUN_FILE = "run.json"
ENV_FILE = "env.json"
CONFIG_FILE = "config.yaml"
PACKAGES = ("tinyzero-trl", "torch", "transformers", "trl", "accelerate", "datasets", "deepspeed", "vllm",
            "math-verify", "hydra-core", "peft")


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename) so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_status(run_dir: str | os.PathLike) -> dict:
    """The run's ``run.json`` (``{}`` when there is none)."""
    path = Path(run_dir) / RUN_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def update_status(run_dir: str | os.PathLike, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` and return the new status."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    status.update(fields)
    write_json(run_dir / RUN_FILE, status)
    return status


def latest_checkpoint(run_dir: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` folder, or None."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    steps = []
    for child in run_dir.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit():
            # trainer_state.json is written last; without it the checkpoint was cut off mid-save.
            if (child / "trainer_state.json").is_file():
                steps.append((int(name[11:]), child))
    return str(max(steps)[1]) if steps else None


def set_aside(run_dir: str | os.PathLike) -> Path | None:
    """Move an existing run directory out of the way (``DIR.prev-TIMESTAMP``) for a fresh start; nothing is deleted."""
    run_dir = Path(run_dir)
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    target = run_dir.with_name(f"{run_dir.name}.prev-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(str(run_dir), str(target))
    return target


def git_commit() -> str | None:
    """The commit of the checkout this package runs from, if any (with ``-dirty`` for local changes)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return os.environ.get("TINYZERO_GIT_COMMIT")
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("TINYZERO_GIT_COMMIT")


def environment() -> dict:
    """Package versions, commit, hardware and command line: what ``env.json`` records."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    hardware = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        import torch

        hardware["cuda"] = torch.version.cuda
        hardware["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # torch import problems must not stop a run from recording what it can
        hardware["gpus"] = []
    return {
        "packages": versions,
        "git_commit": git_commit(),
        "hardware": hardware,
        "command": sys.argv,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_rewards(run_dir: str | os.PathLike) -> list[str]:
    """The names of the rewards a run trained with, in its recipe's order (the first is the task's accuracy).

    Read from the run's ``config.yaml``; a run directory without one (an older run, a hand-made copy) gives the
    reward names in the order ``metrics.jsonl`` logged them (TRL logs them in the order of the reward functions).
    """
    import yaml

    run_dir = Path(run_dir)
    config = run_dir / CONFIG_FILE
    if config.is_file():
        rewards = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("rewards") or {}
        if rewards:
            return list(rewards)
    from tinyzero_trl.metrics import METRICS_FILE, read_metrics

    names: list[str] = []
    rows = read_metrics(run_dir / METRICS_FILE, strict=False) if (run_dir / METRICS_FILE).is_file() else []
    for key in (rows[0] if rows else {}):
        if key.startswith("rewards/") and key.endswith("/mean") and key[8:-5] not in names:
            names.append(key[8:-5])
    return names
