"""``run.json``: whether a run is running, completed, interrupted or failed, and whether a "running" one is alive.

A crashed or half-written run is never mistaken for a good one. A running run also records its process (host,
pid, start time) and a heartbeat, so a run killed with SIGKILL, which can write nothing, is still told apart
from a live one.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from tinyzero_trl.run.files import read_json, write_json

RUN_FILE = "run.json"
HEARTBEAT_SECONDS = 30.0


def read_status(run_dir: str | os.PathLike) -> dict:
    """The run's ``run.json`` (``{}`` when there is none)."""
    return read_json(Path(run_dir) / RUN_FILE)


# The trainer's heartbeat thread and its main thread both update run.json: one read-modify-write at a time, or
# one thread's fields are lost and the two race for the same temp file.
_STATUS_LOCK = threading.Lock()


def update_status(run_dir: str | os.PathLike, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` and return the new status."""
    run_dir = Path(run_dir)
    with _STATUS_LOCK:
        status = read_status(run_dir)
        status.update(fields)
        write_json(run_dir / RUN_FILE, status)
    return status


def mark_running(run_dir: str | os.PathLike, **fields) -> dict:
    """Record that this process trains ``run_dir`` from now on: ``running``, no error, the process and a first
    heartbeat (``this_process``), and ``fields``, in one write."""
    return update_status(run_dir, status="running", error=None, **this_process(), **fields)


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), which tells a live process from a later one reusing its pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict:
    """What ``run.json`` records of the process that trains, for ``liveness`` to check later."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _process_start(os.getpid()),
            "heartbeat": time.time(), "heartbeat_every": HEARTBEAT_SECONDS}


def liveness(status: dict) -> tuple[bool, str]:
    """Whether a ``running`` status belongs to a live process, and a phrase saying how that was decided."""
    host, pid = status.get("host"), status.get("pid")
    beat = status.get("heartbeat")
    age = f"last heartbeat {time.time() - beat:.0f} s ago" if isinstance(beat, (int, float)) else "no heartbeat"
    if host == socket.gethostname() and isinstance(pid, int):
        alive = _process_start(pid) is not None and _process_start(pid) == status.get("pid_start")
        return alive, f"process {pid} on {host} {'is running' if alive else 'is gone'}; {age}"
    if isinstance(beat, (int, float)):
        every = float(status.get("heartbeat_every") or HEARTBEAT_SECONDS)
        alive = time.time() - beat < 3 * every + 60
        return alive, f"process {pid} on host {host}; {age}"
    return False, f"run.json names no process ({age})"


def describe_unfinished(status: dict) -> str:
    """What became of a run that is not ``completed``, as the rest of a sentence starting "the run ..."."""
    state = status.get("status", "missing")
    step = f" at step {status['global_step']}" if status.get("global_step") is not None else ""
    why = f": {status['error']}" if status.get("error") else ""
    if state == "running":
        alive, how = liveness(status)
        return (f"is still running{step} ({how})" if alive else
                f"died without a word{step}, e.g. killed with SIGKILL or out of memory ({how}); rerun the same "
                "command to resume")
    if state == "interrupted":
        return f"was interrupted{step}{why}; rerun the same command to resume"
    if state == "failed":
        return f"failed{step}{why}; fix the cause and rerun the same command to resume"
    return f"has status {state!r}, not completed"
