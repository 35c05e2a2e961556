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
from pathlib import Path

from tinyzero_trl.errors import ERROR_FILE_ENV


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
    """Send ``sig`` to the process group of ``proc``, then SIGKILL what is left after ``grace`` seconds; reap it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


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
