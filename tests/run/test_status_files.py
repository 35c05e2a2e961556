"""run.json (run.status), the JSON and YAML files of a run directory (run.files) and summary.json (run.summary):
what a reader of a run directory, a later launch on another host, or a person opening the files finds."""

import datetime
import json
import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from tinyzero_trl.errors import RunDirError
from tinyzero_trl.run import status as status_module
from tinyzero_trl.run.files import check_writable, read_json, read_yaml, write_json, write_yaml
from tinyzero_trl.run.status import (
    HEARTBEAT_SECONDS,
    _process_start,
    describe_unfinished,
    liveness,
    this_process,
)
from tinyzero_trl.run.summary import read_summary, update_summary

# run.files


def test_json_files_are_indented_one_key_a_line_and_take_paths_and_dates(tmp_path):
    path = tmp_path / "run.json"
    write_json(path, {"status": "running", "dir": Path("/runs/x"), "at": datetime.date(2026, 1, 2)})
    assert path.read_text() == '{\n  "status": "running",\n  "dir": "/runs/x",\n  "at": "2026-01-02"\n}\n'
    assert read_json(path) == {"status": "running", "dir": "/runs/x", "at": "2026-01-02"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # the temporary file was renamed into place


def test_a_json_file_that_is_not_an_object_is_named_with_what_it_holds(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("[1, 2]")
    with pytest.raises(RunDirError) as err:
        read_json(path)
    assert str(err.value) == f"{path}: expected a JSON object, found list"
    path.write_text("{")
    with pytest.raises(RunDirError, match=r"run.json: not valid JSON \(.*\); restore it or move the run directory"):
        read_json(path)
    assert read_json(tmp_path / "absent.json") == {}


def test_yaml_files_keep_their_key_order(tmp_path):
    path = tmp_path / "config.yaml"
    write_yaml(path, {"training": {"max_steps": 2, "learning_rate": 1.0}, "model": "m"})
    assert path.read_text() == "training:\n  max_steps: 2\n  learning_rate: 1.0\nmodel: m\n"
    assert list(read_yaml(path)) == ["training", "model"]
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_a_yaml_error_without_a_fix_ends_with_the_problem(tmp_path):
    with pytest.raises(RunDirError) as err:
        read_yaml(tmp_path / "absent.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'absent.yaml'}: cannot read it (")
    assert str(err.value).endswith(")")


def test_check_writable_creates_the_directory_and_leaves_nothing_behind(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    check_writable(run)
    assert run.is_dir() and not any(run.iterdir())
    check_writable(run)  # an existing directory is fine
    assert not any(run.iterdir())


def test_an_unwritable_output_dir_is_refused_with_the_key_and_what_to_do(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError) as err:
        check_writable(tmp_path / "file" / "run")
    assert str(err.value) == (f"training.output_dir={tmp_path / 'file' / 'run'}: cannot write there (Not a "
                              "directory); choose a directory you can write, e.g. --output-dir runs/NAME")
    with pytest.raises(RunDirError, match=r"^reproduce.output_dir=.*: cannot write there \(Not a directory\)"):
        check_writable(tmp_path / "file" / "run", key="reproduce.output_dir")


# run.summary


def test_summary_json_keeps_each_figure_as_it_is_added(tmp_path):
    assert read_summary(tmp_path) == {}
    assert update_summary(tmp_path, base_accuracy=0.1) == {"base_accuracy": 0.1}
    assert update_summary(str(tmp_path), final_accuracy=0.5, base_accuracy=0.2) == {"base_accuracy": 0.2,
                                                                                    "final_accuracy": 0.5}
    assert read_summary(tmp_path) == {"base_accuracy": 0.2, "final_accuracy": 0.5}
    assert (tmp_path / "summary.json").is_file()


# run.status: the process record and liveness


def test_this_process_records_what_liveness_checks():
    record = this_process()
    assert record["host"] == socket.gethostname() and record["pid"] == os.getpid()
    assert record["pid_start"] == _process_start(os.getpid()) is not None
    assert abs(record["heartbeat"] - time.time()) < 60
    assert record["heartbeat_every"] == HEARTBEAT_SECONDS == 30.0
    alive, how = liveness({"status": "running", **record})
    assert alive is True
    assert how == f"process {os.getpid()} on {socket.gethostname()} is running; last heartbeat 0 s ago"


def test_process_start_is_the_kernels_start_time_even_for_a_name_with_a_parenthesis(tmp_path):
    # /proc/PID/stat puts the name in parentheses and a name may hold ") ": the fields are counted after the last.
    exe = tmp_path / "a) b c d"
    exe.symlink_to(sys.executable)
    child = subprocess.Popen([str(exe), "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        assert "a) b c d" in Path(f"/proc/{child.pid}/stat").read_text()
        ticks = int(_process_start(child.pid))
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        assert abs(boot + ticks / os.sysconf("SC_CLK_TCK") - time.time()) < 30
    finally:
        child.kill()
        child.wait()
    assert _process_start(child.pid) is None  # reaped: gone


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(status_module, "time", types.SimpleNamespace(time=lambda: 10_000.0))
    return 10_000.0


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_gone_process_on_this_host_is_dead_even_with_a_fresh_heartbeat(clock):
    pid = dead_pid()
    status = {"host": socket.gethostname(), "pid": pid, "pid_start": "123", "heartbeat": clock - 5}
    assert liveness(status) == (False, f"process {pid} on {socket.gethostname()} is gone; last heartbeat 5 s ago")


def test_a_live_process_on_another_host_is_judged_by_its_heartbeat(clock):
    # The same pid and start on another host says nothing: only the heartbeat does.
    remote = {"host": "elsewhere", "pid": os.getpid(), "pid_start": _process_start(os.getpid())}
    assert liveness({**remote, "heartbeat": clock - 100}) == (True, f"process {os.getpid()} on host elsewhere; "
                                                                    "last heartbeat 100 s ago")
    assert liveness({**remote, "heartbeat": clock - 1000}) == (False, f"process {os.getpid()} on host elsewhere; "
                                                                      "last heartbeat 1000 s ago")


@pytest.mark.parametrize("age, every, alive", [
    (100, None, True), (149.9, None, True), (150, None, False), (150.5, None, False), (170, None, False),
    (200, 100, True), (359, 100, True), (360, 100, False), (100, 0, True),
])
def test_a_remote_run_is_alive_until_three_missed_heartbeats_and_a_minute(clock, age, every, alive):
    status = {"host": "elsewhere", "pid": 7, "heartbeat": clock - age}
    if every is not None:
        status["heartbeat_every"] = every
    assert liveness(status)[0] is alive


def test_a_status_naming_no_process_is_not_alive(clock):
    assert liveness({}) == (False, "run.json names no process (no heartbeat)")
    assert liveness({"host": "elsewhere", "pid": 7}) == (False, "run.json names no process (no heartbeat)")


# run.status: what became of an unfinished run


def test_describe_unfinished_says_what_became_of_the_run_and_what_to_do(clock):
    assert describe_unfinished({}) == "has status 'missing', not completed"
    assert describe_unfinished({"status": "odd"}) == "has status 'odd', not completed"
    assert describe_unfinished({"status": "interrupted", "global_step": 5}) == (
        "was interrupted at step 5; rerun the same command to resume")
    assert describe_unfinished({"status": "interrupted", "global_step": 0, "error": "SIGTERM"}) == (
        "was interrupted at step 0: SIGTERM; rerun the same command to resume")
    assert describe_unfinished({"status": "failed", "error": "CUDA out of memory"}) == (
        "failed: CUDA out of memory; fix the cause and rerun the same command to resume")
    assert describe_unfinished({"status": "failed", "global_step": 3}) == (
        "failed at step 3; fix the cause and rerun the same command to resume")
    assert describe_unfinished({"status": "running", "global_step": 4}) == (
        "died without a word at step 4, e.g. killed with SIGKILL or out of memory (run.json names no process "
        "(no heartbeat)); rerun the same command to resume")
    assert describe_unfinished({"status": "running", "host": "elsewhere", "pid": 7, "heartbeat": clock - 1}) == (
        "is still running (process 7 on host elsewhere; last heartbeat 1 s ago)")


def test_run_files_are_read_as_utf8_whatever_the_locale(tmp_path):
    # A job started under a legacy locale (here C with Python's UTF-8 mode off: ASCII) still reads a hand-written
    # config.yaml, a JSON file and metrics.jsonl holding non-ASCII text as the UTF-8 they are.
    import tinyzero_trl

    (tmp_path / "config.yaml").write_text("prompt: café\n", encoding="utf-8")
    (tmp_path / "summary.json").write_text('{"note": "café"}\n', encoding="utf-8")
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "sample": "café"}\n', encoding="utf-8")
    code = ("import json, sys; from pathlib import Path; from tinyzero_trl.run.files import read_json, read_yaml; "
            "from tinyzero_trl.run.metrics import read_metrics; d = Path(sys.argv[1]); "
            "print(json.dumps([read_yaml(d / 'config.yaml')['prompt'], read_json(d / 'summary.json')['note'], "
            "read_metrics(d / 'metrics.jsonl')[0]['sample']]))")
    env = {**os.environ, "PYTHONPATH": str(Path(tinyzero_trl.__file__).parents[1]), "LC_ALL": "C", "LANG": "C",
           "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["café"] * 3


# run.rehearsal


def test_a_rehearsal_is_known_by_its_file_or_by_summary_json(tmp_path):
    from tinyzero_trl.run.rehearsal import read_rehearsal, write_rehearsal

    assert read_rehearsal(tmp_path) is None  # a run that is not a rehearsal
    update_summary(tmp_path, rehearsal={"replaced": "model"})
    assert read_rehearsal(str(tmp_path)) == {"replaced": "model"}  # rehearsal.json stripped, summary.json says so
    write_rehearsal(str(tmp_path), {"replaced": "data"})
    assert read_json(tmp_path / "rehearsal.json") == {"replaced": "data"}
    assert read_rehearsal(tmp_path) == {"replaced": "data"}
    update_summary(tmp_path, rehearsal={})
    write_rehearsal(tmp_path, {})
    assert read_rehearsal(tmp_path) is None


def test_mark_running_records_this_process_in_one_write_and_clears_an_old_error(tmp_path):
    """What the trainer writes as it starts (resuming a failed run here): running, no error, who runs it and a first
    heartbeat, its own fields, and what run.json held before."""
    from tinyzero_trl.run.status import liveness, mark_running, read_status, update_status

    update_status(tmp_path, status="failed", error={"message": "boom"}, global_step=3)
    before = time.time()
    status = mark_running(tmp_path, resumed_from="checkpoint-3")
    assert status == read_status(tmp_path)
    assert {k: status[k] for k in ("status", "error", "global_step", "resumed_from", "host", "pid")} == {
        "status": "running", "error": None, "global_step": 3, "resumed_from": "checkpoint-3",
        "host": socket.gethostname(), "pid": os.getpid()}
    assert before <= status["heartbeat"] <= time.time()
    assert liveness(status)[0]
