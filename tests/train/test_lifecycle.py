"""A run directory never lies: interrupted, killed, resumed, finished and rerun, as a user does it (issue 20)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.run.claim import checkpoint_step, latest_checkpoint
from tinyzero_trl.run.status import read_status
from tinyzero_trl.verification.verify import load_run

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
pytestmark = pytest.mark.slow


def _train_args(tiny_model, out, *extra):
    return [sys.executable, "-m", "tinyzero_trl.cli", "train", "+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu",
            f"model.name_or_path={tiny_model}", "data.source=generate", f"training.output_dir={out}", *extra]


def _steps(out):
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _start_and_wait(cmd, out, steps=3, timeout=240):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / "metrics.jsonl").is_file() and len(_steps(out)) >= steps:
            return proc
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1][-3000:])
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("training logged too few steps in time")


def _resume_point(out):
    """The checkpoint a resumed run starts from, and the steps logged after it (which it trains again)."""
    start = checkpoint_step(latest_checkpoint(out))
    return start, [s for s in _steps(out) if s > start]


def _cut_steps(out):
    cut = out / "metrics.jsonl.cut"
    return [json.loads(line)["step"] for line in cut.read_text().splitlines()] if cut.is_file() else []


# How far a run gets before the signal lands depends on the machine, so each test reads where the run stopped
# and asks for a couple of steps beyond it.
def test_sigterm_is_recorded_and_a_rerun_resumes_then_leaves_the_finished_run_alone(tiny_model, tmp_path):
    out = tmp_path / "run"
    cmd = _train_args(tiny_model, out, "training.max_steps=40", "training.save_steps=2")
    proc = _start_and_wait(cmd, out)
    proc.send_signal(signal.SIGTERM)  # to `tinyzero-trl train`, as `kill -TERM PID` does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("tinyzero-trl train: training interrupted by SIGTERM at step "), last
    status = read_status(out)
    assert status["status"] == "interrupted" and status["global_step"] >= 3
    with pytest.raises(UnusableRun, match="was interrupted at step .*: interrupted by SIGTERM"):
        load_run(out)

    start, redone = _resume_point(out)
    target = status["global_step"] + 2
    resumed = subprocess.run(_train_args(tiny_model, out, f"training.max_steps={target}", "training.save_steps=2"),
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / f'checkpoint-{start}'}" in resumed.stdout
    assert _steps(out) == list(range(1, target + 1)) and _cut_steps(out) == redone
    assert read_status(out)["status"] == "completed"

    before = (_sha(out / "model.safetensors"), (out / "metrics.jsonl").read_text(), read_status(out))
    again = subprocess.run(_train_args(tiny_model, out, f"training.max_steps={target}", "training.save_steps=2"),
                           capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"already holds a completed run (step {target}); nothing to do" in again.stdout
    assert (_sha(out / "model.safetensors"), (out / "metrics.jsonl").read_text(), read_status(out)) == before
    assert not (out / f"checkpoint-{target + 1}").exists()


def test_sigkill_leaves_a_run_that_reads_as_dead_and_resumes(tiny_model, tmp_path):
    out = tmp_path / "run"
    cmd = _train_args(tiny_model, out, "training.max_steps=40", "training.save_steps=2")
    proc = _start_and_wait(cmd, out)
    trainer = read_status(out)["pid"]
    os.kill(trainer, signal.SIGKILL)  # what the out-of-memory killer does: the trainer cannot write a word
    proc.communicate(timeout=120)
    assert proc.returncode != 0 and read_status(out)["status"] == "running"
    with pytest.raises(UnusableRun, match="died without a word"):
        load_run(out)

    start, redone = _resume_point(out)
    assert start >= 2
    short = subprocess.run(_train_args(tiny_model, out, "training.max_steps=1", "training.save_steps=2"),
                           capture_output=True, text=True, env=ENV, timeout=600)
    assert short.returncode == 2, short.stderr[-3000:]
    assert f"its latest checkpoint (checkpoint-{start}) is already past training.max_steps=1" in short.stderr
    assert not (out / "metrics.jsonl.cut").exists()  # refused before anything was touched

    target = max(_steps(out)) + 2
    done = subprocess.run(_train_args(tiny_model, out, f"training.max_steps={target}", "training.save_steps=2"),
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _steps(out) == list(range(1, target + 1)) and read_status(out)["status"] == "completed"
    assert _cut_steps(out) == redone


@pytest.fixture
def demo_reproduction(tiny_model, tmp_path, monkeypatch):
    """A CPU reproduction of the smoke recipe on the random tiny model: the whole reproduce path in a minute."""
    folder = tmp_path / "reproductions" / "demo"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(
        "claim: demo\nrecipe: countdown=grpo-qwen-2.5-3b-base\ncpu: true\n"
        f"overrides: ['+smoke=cpu', 'model.name_or_path={tiny_model}', 'data.source=generate']\n"
        "evaluate: {task: countdown, limit: 4, max_new_tokens: 4, batch_size: 4}\n")
    (folder / "expected.json").write_text(json.dumps({"checks": [
        {"metric": "rewards/countdown_equation/mean", "rule": "report", "source": "demo, no reference"}]}))
    monkeypatch.setenv("TINYZERO_REPRODUCTIONS", str(folder.parent))
    return folder


def _reproduce(out, *extra):
    return subprocess.run([sys.executable, "-m", "tinyzero_trl.cli", "reproduce", "demo", "--output-dir", str(out),
                           *extra], capture_output=True, text=True, env={**ENV, **_repro_env()}, timeout=900)


def _repro_env():
    return {"TINYZERO_REPRODUCTIONS": os.environ["TINYZERO_REPRODUCTIONS"]}


def test_reproduce_leaves_a_finished_run_alone_and_fresh_starts_over_before_the_base_evaluation(
        demo_reproduction, tmp_path):
    out = tmp_path / "r"
    first = _reproduce(out)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert {"base_accuracy", "final_accuracy", "wall_seconds"} <= set(summary)
    weights = _sha(out / "model.safetensors")

    again = _reproduce(out)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text()) == summary and _sha(out / "model.safetensors") == weights

    fresh = _reproduce(out, "fresh=true")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    moved = list(tmp_path.glob("r.prev-*"))
    assert len(moved) == 1 and json.loads((moved[0] / "summary.json").read_text()) == summary
    new = json.loads((out / "summary.json").read_text())
    assert "base_accuracy" in new and "final_accuracy" in new  # the base was evaluated again, in the new run
    assert fresh.stdout.index("previous run moved to") < fresh.stdout.index("accuracy")


def test_stop_at_step_keeps_the_whole_runs_schedule_and_extends(tiny_model, tmp_path):
    """A published checkpoint part-way through a longer run: stop at step 2 of a 4-step linear schedule."""
    out = tmp_path / "run"
    args = ["training.max_steps=4", "training.lr_scheduler_type=linear", "training.learning_rate=1e-4",
            "training.save_steps=1"]
    first = subprocess.run(_train_args(tiny_model, out, *args, "stop_at_step=2"), capture_output=True, text=True,
                           env=ENV, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and read_status(out)["status"] == "completed"
    # the lr step 2 ran with: linear over 4 steps gives 1e-4 x (1 - 1/4); over 2 steps it would be 1e-4 x (1 - 1/2)
    assert rows[1]["learning_rate"] == pytest.approx(7.5e-5)
    again = subprocess.run(_train_args(tiny_model, out, *args, "stop_at_step=2"), capture_output=True, text=True,
                           env=ENV, timeout=600)
    assert "nothing to do" in again.stdout
    more = subprocess.run(_train_args(tiny_model, out, *args, "stop_at_step=3"), capture_output=True, text=True,
                          env=ENV, timeout=600)
    assert more.returncode == 0, more.stderr[-3000:]
    assert _steps(out) == [1, 2, 3] and read_status(out)["global_step"] == 3
