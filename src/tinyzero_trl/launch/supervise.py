"""Run a launch as one supervised process tree: signals reach every rank, and a failure ends in one line.

The training processes report a failure by writing ``{code, message}`` to ``$TINYZERO_ERROR_FILE`` (see
``errors.report``) before they exit. Everything they and the launcher print is passed through as it comes, until
that file appears: what follows is the launcher's own traceback about a child that failed, which says nothing
the child's line does not, so it is held back, and the child's line is printed last. ``--debug`` (or
``TINYZERO_DEBUG=1``) passes everything through.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tinyzero_trl.errors import ERROR_FILE_ENV


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
    """Send ``sig`` to the process group of ``proc``, then SIGKILL what is left after ``grace`` seconds; return once
    ``proc`` is reaped and nothing else of its group runs.

    A server's helpers outlive it by a moment: Python's resource tracker, which ignores SIGTERM, exits once its
    parent has, and prints its leak warnings to the same terminal as it goes. Returning before it has would let those
    lines land after the launch's own last line (a vLLM server's "leaked semaphore" warnings did, after the one-line
    error of a refused server-mode launch)."""
    if proc.poll() is not None and not _running_in_group(proc.pid):
        return
    _signal_group(proc.pid, sig)
    if not _wait_for_group(proc, grace):
        _signal_group(proc.pid, signal.SIGKILL)
        _wait_for_group(proc, 5.0)  # what SIGKILL cannot end at once (a process in the kernel) is left to init
    proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # the group has ended
        pass


def _wait_for_group(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait until ``proc`` is reaped and its group has no running member; False if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _running_in_group(proc.pid):
            return True
        time.sleep(0.05)
    return False


def _running_in_group(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running, zombies aside: an orphan's zombie waits for init to reap
    it, which inside a container without an init may be never. Read from /proc; without /proc, the group's
    existence (``killpg`` with signal 0) is all there is to go on."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended while we looked
            continue
        state, _, group = text[text.rindex(")") + 2:].split()[:3]  # after "pid (comm) ": state, ppid, pgrp
        if group == str(pgid) and state != "Z":
            return True
    return False


TAIL_BYTES = 65536


def _pump(source, sink, error_file: Path, debug: bool, last: dict, tail: bytearray | None = None) -> None:
    """Copy ``source`` to ``sink`` chunk by chunk (progress bars have no newlines) until the error file appears;
    the last ``TAIL_BYTES`` into ``tail`` as well, if given."""
    fd = source.fileno()
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        if tail is not None:
            tail += chunk
            del tail[:-TAIL_BYTES]
        if debug or not error_file.exists():
            last[sink] = chunk[-1:]
            buffer = getattr(sink, "buffer", None)
            if buffer is not None:
                buffer.write(chunk)
                buffer.flush()
            else:  # a text stream without bytes underneath (a test's capture): decode
                sink.write(chunk.decode("utf-8", "replace"))
                sink.flush()


def run(cmd: list[str], env: dict, *, debug: bool = False,
        stderr_tail: bytearray | None = None) -> tuple[int, dict | None]:
    """Run ``cmd`` in its own process group; return its exit code and the error its ranks reported, if any.
    ``stderr_tail``, if given, receives the last ``TAIL_BYTES`` of what the launch printed on stderr.

    SIGINT and SIGTERM sent to this process are passed on to the whole group (a launcher in a new session would
    not get Ctrl-C from the terminal), and this process waits for it to end.
    """
    with tempfile.TemporaryDirectory(prefix="tinyzero-") as tmp:
        error_file = Path(tmp) / "error.json"
        proc = subprocess.Popen(cmd, env={**env, ERROR_FILE_ENV: str(error_file)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        last: dict = {}  # the last byte passed to each stream
        pumps = [threading.Thread(target=_pump, args=(pipe, sink, error_file, debug, last, tail), daemon=True)
                 for pipe, sink, tail in ((proc.stdout, sys.stdout, None), (proc.stderr, sys.stderr, stderr_tail))]
        for t in pumps:
            t.start()

        def forward(signum, frame):
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                pass

        main_thread = threading.current_thread() is threading.main_thread()  # only it may set handlers
        previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
        try:
            code = proc.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if proc.poll() is None:
                stop(proc)
        for t in pumps:
            t.join(timeout=10)
        if last.get(sys.stderr, b"\n") != b"\n":  # a progress bar left the line open: our line starts a new one
            sys.stderr.write("\n")
            sys.stderr.flush()
        report = None
        if error_file.is_file():
            try:
                report = json.loads(error_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                report = None
    return code, report
