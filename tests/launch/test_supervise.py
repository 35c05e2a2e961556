"""supervise.stop: a stopped server's whole process group has ended when it returns."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tinyzero_trl.launch import supervise

# A server whose helper, like Python's resource tracker, ignores SIGTERM and outlives it, then writes as it exits.
SERVER = textwrap.dedent("""
    import os, signal, sys, time
    parent = os.getpid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("up", flush=True)  # the helper is ready, and so is the server
        while os.getppid() == parent:
            time.sleep(0.05)
        time.sleep(0.5)  # the tracker's clean-up
        open(sys.argv[1], "w").write("helper done")
        os._exit(0)
    time.sleep(600)
""")


def test_stop_returns_after_the_servers_helpers_have_ended(tmp_path):
    """The helper's last words land before stop returns, so the launch's own line stays the last one printed."""
    marker = tmp_path / "helper.txt"
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(marker)], stdout=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout.readline() == b"up\n"
    supervise.stop(proc, grace=10.0)
    assert proc.returncode is not None
    assert marker.read_text() == "helper done"
    assert not supervise._running_in_group(proc.pid)  # it ended by itself: SIGKILL would have left no marker


def test_stop_kills_what_ignores_the_signal_after_the_grace(tmp_path):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout.readline() == b"up\n"
    supervise.stop(proc, grace=0.5)
    assert proc.returncode == -9
