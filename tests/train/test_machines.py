"""Issue 30, item 4: machines that disagree. A non-main machine's trainers read RUN_DIR/config.yaml, which machine
rank 0 writes; through a shared filesystem it may come late, and with a machine-local output_dir it never comes.
The wait is bounded ($TINYZERO_CONFIG_WAIT, default train.entry.CONFIG_WAIT_SECONDS = 120 s), and its end is one
line naming the shared output_dir, exit 2."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from support import ENV
from tinyzero_trl.train import entry


def test_a_non_main_machine_waits_for_the_main_machines_config(tmp_path):
    """config.yaml written 1.5 s after the non-main machine's trainer looked: it is read, not refused."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    writer = threading.Timer(1.5, lambda: (run_dir / "config.yaml").write_text("seed: 1\n"))
    writer.start()
    try:
        t0 = time.monotonic()
        path = entry.wait_for_run_config(run_dir, timeout=30)
        assert path == run_dir / "config.yaml" and path.read_text() == "seed: 1\n"
        assert 1.0 <= time.monotonic() - t0 < 10
    finally:
        writer.cancel()


def test_the_default_bound_is_stated_and_a_setting(tmp_path, monkeypatch):
    assert entry.CONFIG_WAIT_SECONDS == 120.0
    monkeypatch.setenv("TINYZERO_CONFIG_WAIT", "0.5")
    t0 = time.monotonic()
    try:
        entry.wait_for_run_config(tmp_path)
    except entry.UserError:
        pass
    assert 0.4 <= time.monotonic() - t0 < 5


def test_a_machine_with_its_own_output_dir_exits_2_with_one_line(tmp_path):
    """Machine rank 1's trainer (RANK=1 of 2) with a run directory machine 0 never writes: after the bound, exit 2
    and one line on stderr that says every machine needs the same output_dir on a shared filesystem."""
    run_dir = tmp_path / "machine-1-only"
    run_dir.mkdir()
    env = {**ENV, "TINYZERO_CONFIG_WAIT": "2", "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    env.pop("TINYZERO_ERROR_FILE", None)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "import sys; from tinyzero_trl.train.entry import main; "
                           "sys.exit(main(sys.argv[1:]))", "--run", str(run_dir)],
                          capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{run_dir / 'config.yaml'}: not written after 2 s" in lines[0]
    assert "same training.output_dir" in lines[0] and "filesystem they all share" in lines[0]
    assert 2 <= elapsed < 60, elapsed
    assert not os.listdir(run_dir)  # nothing written by the machine that waited
    assert Path(run_dir).is_dir()
