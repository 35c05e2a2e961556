"""The vLLM tests: real vLLM 0.31.0 (its CPU build here, README "vLLM on CPU"), a tiny model it can run.

Without vLLM installed these tests are skipped, as the main install has no vLLM; CI runs them in the vLLM
environment with ``TINYZERO_REQUIRE_VLLM=1``, where a missing or broken vLLM is a failure, never a skip.
Every process they start is bounded by a timeout and killed with its whole process group.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
RUN_TIMEOUT = 420  # one engine start plus a few steps; a cold torch.compile cache costs a minute of it


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("vllm") is not None:
        return
    if os.environ.get("TINYZERO_REQUIRE_VLLM") == "1":
        raise pytest.UsageError("TINYZERO_REQUIRE_VLLM=1 but vLLM is not importable here (README: vLLM on CPU)")
    skip = pytest.mark.skip(reason="vLLM is not installed (README: vLLM on CPU); the main install has none")
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(skip)


def env(**extra) -> dict:
    """The environment of a launched command: offline, and 1 GiB of vLLM KV cache on CPU."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), **extra}


def run_cli(args: list[str], log: Path, *, timeout: float = RUN_TIMEOUT, **extra_env) -> subprocess.CompletedProcess:
    """``tinyzero-trl ARGS`` in its own process group, output in ``log``; the group is killed on a timeout."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "tinyzero_trl.cli", *args], stdout=fh,
                                stderr=subprocess.STDOUT, env=env(**extra_env), start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            pytest.fail(f"tinyzero-trl {' '.join(args[:2])} did not finish in {timeout:.0f} s; log: {log}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(errors="replace"), "")


def kill_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group of ``proc``, SIGKILL what is left after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_model(tmp_path_factory) -> str:
    """A random tiny Qwen2 in the shape vLLM's CPU attention runs (``tinyzero-trl tiny-model --vllm``)."""
    from tinyzero_trl.tiny_model import build_tiny_model

    return str(build_tiny_model("qwen2", tmp_path_factory.mktemp("tiny-vllm"), vllm=True))


