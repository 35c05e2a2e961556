"""The images a Slurm job on the test cluster runs, saved to one archive for the nodes' own Docker daemons.

``tinyzero-trl:VERSION-cpu`` is built from this checkout exactly as docker/e2e.py builds it (the pinned base, else the
Debian substitute; the PyTorch CPU index, else this machine's torch wheel served on 127.0.0.1, each said out
loud), and ``tinyzero-trl:VERSION-cpu-vllm`` (docker/slurm/Dockerfile.vllm-cpu) on top of it. The build runs on the
engine that answers ``docker info``, else on a private dockerd under ``STATE/engine`` (docker/engine.py), which
keeps its build cache and substitute base there for the next build: CI points ``STATE`` at the folder
docker/e2e.py just used, so nothing is built twice. Stdlib only.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from pathlib import Path

DOCKER = Path(__file__).resolve().parents[1]
ROOT = DOCKER.parent
# The build's one tag scheme, tinyzero-trl:VERSION-TARGET (docker/nox_docker.py build_commands)
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
CPU = f"tinyzero-trl:{VERSION}-cpu"
CPU_VLLM = f"tinyzero-trl:{VERSION}-cpu-vllm"
VLLM_DOCKERFILE = "docker/slurm/Dockerfile.vllm-cpu"


def build_and_save(state: Path, archive: Path, *, vllm: bool = True, log=print) -> dict:
    """Build the images and ``docker save`` them into ``archive``; returns what was used and the timings."""
    import sys

    sys.path.insert(0, str(DOCKER))
    import e2e
    import engine

    state.mkdir(parents=True, exist_ok=True)
    report: dict = {"timings_s": {}}
    e2e.use_buildkit_client(state)
    with contextlib.ExitStack() as stack:
        if engine.reachable():
            report["engine"] = "an engine that was already running"
        else:
            stack.enter_context(engine.PrivateEngine(state / "engine", log=log))
            report["engine"] = f"private dockerd under {state / 'engine'}, stopped after the save"
        t = time.monotonic()
        base, report["base"] = e2e.choose_base(state)
        with e2e.torch_source(state) as (torch_url, report["torch_source"]):
            tag, _ = e2e.build_cpu(base, torch_url)
        report["timings_s"]["build_cpu"] = round(time.monotonic() - t, 1)
        images = [CPU]
        if vllm:
            t = time.monotonic()
            command = ["docker", "build", "--network", "host", "--file", VLLM_DOCKERFILE,
                       "--build-arg", f"BASE_IMAGE={tag}", "--tag", CPU_VLLM, "."]
            log("$ " + " ".join(command))
            subprocess.run(command, cwd=ROOT, check=True)
            report["timings_s"]["build_cpu_vllm"] = round(time.monotonic() - t, 1)
            images.append(CPU_VLLM)
        t = time.monotonic()
        archive.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["docker", "save", "--output", str(archive), *images], check=True)
        report["timings_s"]["save"] = round(time.monotonic() - t, 1)
        report["images"] = images
        report["archive_bytes"] = archive.stat().st_size
        log(f"saved {', '.join(images)} to {archive} ({report['archive_bytes'] / 1e9:.2f} GB) in "
            f"{report['timings_s']['save']:.0f} s")
    return report
