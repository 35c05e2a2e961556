"""The training entry point as users run it: the original accelerate commands, train, resume, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import ENV, LEARNING_SIGNAL, ROOT, assert_every_parameter_moved
from tinyzero_trl.run.metrics import read_metrics
from tinyzero_trl.run.status import read_status

GRPO = str(ROOT / "src" / "tinyzero_trl" / "grpo.py")


def run(cmd, timeout=600):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def cli(*args, timeout=600):
    return run([sys.executable, "-m", "tinyzero_trl.cli", *args], timeout=timeout)


def steps(out):
    return [r["step"] for r in read_metrics(Path(out) / "metrics.jsonl")]


@pytest.mark.slow
def test_original_countdown_command_trains_two_steps_on_cpu(tiny_model, tmp_path):
    out = tmp_path / "countdown"
    proc = run([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu",
                "--mixed_precision", "no", GRPO, "+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu",
                f"model.name_or_path={tiny_model}", "data.source=generate", f"training.output_dir={out}",
                *LEARNING_SIGNAL])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all("rewards/tinyzero_countdown/mean" in r and "rewards/countdown_equation/mean" in r for r in rows)
    assert_every_parameter_moved(tiny_model, out)
    assert read_status(out)["status"] == "completed"
    assert (out / "checkpoint-2").is_dir() and (out / "config.yaml").is_file()
    env = json.loads((out / "env.json").read_text())
    assert env["packages"]["trl"] == "1.16.0" and env["command"]


@pytest.mark.slow
def test_original_math_command_with_local_data(tiny_model, math_jsonl, tmp_path):
    out = tmp_path / "math"
    proc = run([sys.executable, "-m", "tinyzero_trl.grpo", "+math=grpo-deepseek-distill-1.5b-inst", "+smoke=cpu",
                f"model.name_or_path={tiny_model}", "data.source=local", f"data.path={math_jsonl}",
                f"training.output_dir={out}", *LEARNING_SIGNAL])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all("rewards/math_accuracy/mean" in r for r in rows)
    assert_every_parameter_moved(tiny_model, out)


@pytest.mark.slow
def test_train_resumes_without_logging_a_step_twice_then_evaluate(tiny_model, tmp_path):
    out = tmp_path / "run"
    common = ["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", f"model.name_or_path={tiny_model}",
              "data.source=generate", f"training.output_dir={out}"]
    first = cli("train", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    second = cli("train", *common, "training.max_steps=3", "training.save_steps=3")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stdout + second.stderr
    assert steps(out) == [1, 2, 3]
    assert (out / "checkpoint-3").is_dir() and read_status(out)["global_step"] == 3

    result_file = tmp_path / "eval.json"
    ev = cli("evaluate", "countdown", "--model_path", str(out), "--limit", "8", "--max-new-tokens", "8",
             "--output", str(result_file))
    assert ev.returncode == 0, ev.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert 0.0 <= result["accuracy"] <= 1.0 and result["num_items"] == 8
    assert len(result["items"]) == 8 and all(len(it["completions"]) == 1 for it in result["items"])

    fresh = cli("train", *common, "--fresh")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert steps(out) == [1, 2]
    assert list(tmp_path.glob("run.prev-*")), "the previous run is set aside, not deleted"


def test_evaluate_bare_model_on_generated_tasks(tiny_model, tmp_path):
    ev = cli("evaluate", "countdown", "--model_path", tiny_model, "--limit", "4", "--max-new-tokens", "4",
             "--data-source", "generate", "--output", str(tmp_path / "e.json"))
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert 0.0 <= json.loads((tmp_path / "e.json").read_text())["accuracy"] <= 1.0


@pytest.mark.parametrize("extra, message", [
    (["+training.learnig_rate=1e-5"], "did you mean 'learning_rate'"),
    (["model.name_or_path=/no/such/model"], "no such model directory"),
    (["model.name_or_path=Qwen/Qwen2.5-3B"], "hub could not provide it"),
    (["data.source=local", "data.path=/no/such.jsonl"], "does not exist"),
])
def test_bad_input_gives_a_short_error_and_no_good_looking_run(tiny_model, tmp_path, extra, message):
    out = tmp_path / "bad"
    args = ["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", f"model.name_or_path={tiny_model}",
            "data.source=generate", f"training.output_dir={out}", *extra]
    proc = run([sys.executable, "-m", "tinyzero_trl.grpo", *args], timeout=300)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert read_status(out).get("status") != "completed"


def test_malformed_data_file_is_named(tiny_model, tmp_path):
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"nums": [1, 2], "target": 3}\n{oops\n')
    proc = run([sys.executable, "-m", "tinyzero_trl.grpo", "+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu",
                f"model.name_or_path={tiny_model}", "data.source=local", f"data.path={bad}",
                f"training.output_dir={tmp_path / 'out'}"], timeout=300)
    assert proc.returncode != 0 and str(bad) in proc.stderr and "Traceback" not in proc.stderr


def test_missing_model_key_says_what_to_add(tmp_path):
    proc = run([sys.executable, "-m", "tinyzero_trl.grpo", "+countdown=grpo-qwen-2.5-3b-base",
                "model.name_or_path=???", f"training.output_dir={tmp_path}"], timeout=300)
    assert proc.returncode != 0 and "model.name_or_path" in proc.stderr


def test_leave_runs_what_an_exit_runs_then_skips_the_teardown(tmp_path):
    """grpo.py ends every rank with ``leave``: its non-daemon threads finish, its exit handlers run and its open
    files are flushed, as on a normal exit, and the exit code is kept; the interpreter's teardown, where a surviving
    library thread can abort a finished rank, never starts (here an object that would write ``teardown`` then)."""
    script = f"""
import atexit, os, pathlib, threading, time
from tinyzero_trl.train.entry import leave
out = pathlib.Path({str(tmp_path)!r})
class Teardown:  # opens its file now and holds os.write: little else works once teardown has begun
    write, fd = staticmethod(os.write), os.open(out / "teardown", os.O_WRONLY | os.O_CREAT)
    def __del__(self):
        self.write(self.fd, b"ran")
marker = Teardown()
atexit.register(lambda: (out / "exit_handler").write_text("ran"))
log = open(out / "open_file", "w")  # written, never flushed or closed, as a plugin's log may be
log.write("kept")
threading.Thread(target=lambda: (time.sleep(0.5), (out / "thread").write_text("ran"))).start()
from concurrent.futures import ThreadPoolExecutor
pool = ThreadPoolExecutor(1)  # held, as a library holds one: its worker stops when threading's exit callbacks say so
pool.submit(time.sleep, 0.1)
leave(3)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 3, proc.stderr
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "exit_handler": "ran", "thread": "ran", "open_file": "kept", "teardown": ""}
    # the control: without leave, the same process reaches the teardown and the object writes
    plain = subprocess.run([sys.executable, "-c", script.replace("leave(3)", "")], timeout=60, env=ENV)
    assert plain.returncode == 0 and (tmp_path / "teardown").read_text() == "ran"
