"""Fixtures for the multi-process tests: a tiny model, free ports, and launches that can never hang the suite."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Generous for two CPU cores shared with other work; a healthy 2-step run takes about a minute.
RUN_TIMEOUT = 300


@pytest.fixture(scope="session")
def dist_model(tmp_path_factory) -> str:
    """A random 2-layer Qwen2 + tokenizer, built once for all distributed tests."""
    from tinyzero_trl.tiny.random_model import build_tiny_model

    return str(build_tiny_model("qwen2", tmp_path_factory.mktemp("dist-tiny-qwen2")))


def free_port() -> int:
    """A TCP port nobody listens on right now (the launches bind it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_train(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """``tinyzero-trl train ARGS`` in its own process group (``env`` added to the tests' environment), output to
    ``log``."""
    from support import ENV

    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "tinyzero_trl.cli", "train", *args], stdout=fh,
                                stderr=subprocess.STDOUT, env={**ENV, **env}, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every rank it started (they share the process group), and wait until none runs
    (the launch's own ``supervise.stop``)."""
    from tinyzero_trl.launch.supervise import stop

    stop(proc, signal.SIGKILL)


def wait_all(procs: list[subprocess.Popen], logs: list[Path], timeout: float = RUN_TIMEOUT) -> list[int]:
    """Wait for every launch; on timeout kill them all and fail with the end of each log."""
    import time

    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        tails = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
        pytest.fail(f"launch still running after {timeout} s; killed\n{tails}")
    finally:
        for proc in procs:
            kill_group(proc)
    return [proc.returncode for proc in procs]
