"""What a launch may do in a run directory (run.claim), decided from the files a run leaves: start, resume,
extend, nothing, or a refusal that says why and what to do; and the one write that follows (start_run)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import tinyzero_trl
from tinyzero_trl.errors import RunDirError
from tinyzero_trl.run import claim as claim_module
from tinyzero_trl.run.claim import (
    checkpoint_step,
    claim,
    config_differences,
    latest_checkpoint,
    open_run,
    set_aside,
    start_run,
    target_reached,
)
from tinyzero_trl.run.status import _process_start

CONFIG = {"model": "tiny", "training": {"learning_rate": 1e-6, "max_steps": 10, "save_steps": 5}}
NEXT = "Resume it with the same settings, extend it with a larger training.max_steps, start over with fresh=true " \
       "(the old run is moved aside), or choose another training.output_dir"


def make_run(run_dir: Path, *, config=None, status=None, checkpoints=(), metrics=False, partial=()) -> Path:
    """A run directory as a launch leaves it: config.yaml, run.json, checkpoint-N folders, metrics.jsonl."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if status is not None:
        (run_dir / "run.json").write_text(json.dumps(status))
    for step in checkpoints:
        (run_dir / f"checkpoint-{step}").mkdir()
        (run_dir / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    for step in partial:  # cut off mid-save: no trainer_state.json
        (run_dir / f"checkpoint-{step}").mkdir()
    if metrics:
        (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')
    return run_dir


def with_training(**training):
    return {**CONFIG, "training": {**CONFIG["training"], **training}}


# latest_checkpoint, checkpoint_step


def test_latest_checkpoint_is_the_highest_complete_step_by_number(tmp_path):
    run = make_run(tmp_path / "run", checkpoints=(19, 100), partial=(200,))
    (run / "checkpoint-300").write_text("a file, not a folder")
    (run / "checkpoint-final").mkdir()
    (run / "logs").mkdir()
    (run / "logs" / "trainer_state.json").write_text("{}")
    (run / "zzzzzzzzzzz999").mkdir()  # 11 characters then digits: not a checkpoint
    (run / "zzzzzzzzzzz999" / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(run) == str(run / "checkpoint-100")  # 100 > 19 as numbers; 200 was cut off
    assert latest_checkpoint(str(run)) == str(run / "checkpoint-100")


def test_no_checkpoint_reads_as_none(tmp_path):
    assert latest_checkpoint(tmp_path / "absent") is None
    assert latest_checkpoint(make_run(tmp_path / "run", partial=(5,))) is None
    assert latest_checkpoint(make_run(tmp_path / "one", checkpoints=(7,))) == str(tmp_path / "one" / "checkpoint-7")


def test_checkpoint_step_is_the_saved_step_and_zero_from_scratch():
    assert checkpoint_step("/runs/x/checkpoint-40") == 40
    assert checkpoint_step(Path("checkpoint-7")) == 7
    assert checkpoint_step(None) == 0


# set_aside, start_run


@pytest.fixture
def frozen_clock(monkeypatch):
    # the code's own format, applied to a fixed moment: 2026-01-01 12:00:00
    moment, strftime = time.struct_time((2026, 1, 1, 12, 0, 0, 3, 1, 0)), time.strftime
    monkeypatch.setattr(claim_module.time, "strftime", lambda fmt: strftime(fmt, moment))


def test_set_aside_moves_a_run_and_keeps_everything(tmp_path, frozen_clock):
    run = make_run(tmp_path / "run", config=CONFIG, checkpoints=(5,))
    moved = set_aside(run)
    assert moved == tmp_path / "run.prev-20260101-120000"
    assert not run.exists()
    assert (moved / "config.yaml").is_file() and (moved / "checkpoint-5" / "trainer_state.json").is_file()


def test_set_aside_never_overwrites_an_earlier_one(tmp_path, frozen_clock):
    (tmp_path / "run.prev-20260101-120000").mkdir()
    run = make_run(tmp_path / "run", metrics=True)
    assert set_aside(str(run)) == tmp_path / "run.prev-20260101-120000-1"
    make_run(run, checkpoints=(3,))
    assert set_aside(run) == tmp_path / "run.prev-20260101-120000-2"
    assert (tmp_path / "run.prev-20260101-120000-1" / "metrics.jsonl").is_file()
    assert (tmp_path / "run.prev-20260101-120000-2" / "checkpoint-3").is_dir()
    assert not any((tmp_path / "run.prev-20260101-120000").iterdir())


def test_set_aside_leaves_a_missing_or_empty_directory(tmp_path):
    assert set_aside(tmp_path / "absent") is None
    (tmp_path / "empty").mkdir()
    assert set_aside(tmp_path / "empty") is None
    assert (tmp_path / "empty").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_fresh_start_moves_the_old_run_aside_says_where_and_writes_the_redacted_config(
        tmp_path, frozen_clock, capsys):
    run = make_run(tmp_path / "run", config={"old": True}, checkpoints=(5,))
    start_run(run, {**CONFIG, "training": {"hub_token": "hf_secret"}}, fresh=True)
    out = capsys.readouterr().out
    assert f"[tinyzero-trl] fresh start: previous run moved to {tmp_path / 'run.prev-20260101-120000'}" in out
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]
    assert yaml.safe_load((run / "config.yaml").read_text())["training"] == {"hub_token": "<HUB_TOKEN>"}
    assert "hf_secret" not in (run / "config.yaml").read_text()
    assert (tmp_path / "run.prev-20260101-120000" / "checkpoint-5").is_dir()


def test_start_run_creates_missing_parents_and_keeps_a_run_unless_fresh(tmp_path, capsys):
    run = tmp_path / "a" / "b" / "run"
    start_run(run, CONFIG, fresh=False)
    assert yaml.safe_load((run / "config.yaml").read_text()) == CONFIG
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    start_run(run, CONFIG, fresh=False)  # a resume rewrites config.yaml, nothing else moves
    assert (run / "metrics.jsonl").is_file()
    start_run(tmp_path / "new", CONFIG, fresh=True)  # nothing to set aside: nothing said
    assert "fresh start" not in capsys.readouterr().out


def test_the_fresh_start_line_is_flushed_at_once(tmp_path, monkeypatch):
    """In-process twin of the test below: stdout as a pipe gives it (block-buffered), the line must be out of the
    buffer when start_run returns."""
    import io

    pipe = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(pipe, encoding="utf-8", line_buffering=False))
    start_run(make_run(tmp_path / "run", metrics=True), {}, fresh=True)
    assert b"fresh start: previous run moved to" in pipe.getvalue()


def test_the_fresh_start_line_reaches_a_pipe_even_if_the_process_then_dies(tmp_path):
    # The launcher's log is a pipe: a line left in the buffer is lost when a rank is killed right after.
    run = make_run(tmp_path / "run", metrics=True)
    code = ("import os, sys; from pathlib import Path; from tinyzero_trl.run.claim import start_run; "
            "start_run(Path(sys.argv[1]), {}, fresh=True); os._exit(0)")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(Path(tinyzero_trl.__file__).parents[1])
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "fresh start: previous run moved to" in out.stdout


# config_differences


def test_config_differences_name_each_changed_added_and_removed_setting_in_order():
    old = {"a": {"x": 1, "y": 2}, "gone": 1, "b": {"nested": True}}
    new = {"a": {"x": 1, "y": 3}, "added": 2, "b": 5}
    assert config_differences(old, new) == ["a.y: 2 -> 3", "added: None -> 2", "b: {'nested': True} -> 5",
                                            "gone: 1 -> None"]
    assert config_differences({"b": 5}, {"b": {"nested": True}}) == ["b: 5 -> {'nested': True}"]


def test_config_differences_sort_keys_of_mixed_types_and_skip_relaunch_settings():
    assert config_differences({1: "a", "k": "b"}, {1: "c", "k": "b"}) == ["1: 'a' -> 'c'"]
    old = {"training": {"max_steps": 10, "save_steps": 5, "hub_token": "a", "learning_rate": 1.0},
           "stop_at_step": 3, "fresh": False}
    new = {"training": {"max_steps": 20, "save_steps": 2, "hub_token": "b", "learning_rate": 1.0},
           "stop_at_step": 9, "fresh": True}
    assert config_differences(old, new) == []


# target_reached


@pytest.mark.parametrize("status, training, stop_at_step, reached", [
    ({"global_step": 10}, {"max_steps": 10}, None, True),
    ({"global_step": 9}, {"max_steps": 10}, None, False),
    ({"global_step": 11}, {"max_steps": 10}, None, True),
    ({"global_step": 5}, {"max_steps": 10}, 5, True),    # stop_at_step wins over max_steps
    ({"global_step": 5}, {"max_steps": 2}, 6, False),
    ({"global_step": 6}, {"max_steps": 2}, 7, False),
    ({}, {"max_steps": 10}, 1, False),                    # no step recorded: step 0
    ({"global_step": None}, {"max_steps": 1}, None, False),
    ({"global_step": 0}, {"max_steps": 0}, None, False),  # max_steps 0 / -1: unset, epochs decide
    ({"global_step": 50, "num_train_epochs": 2.0}, {"max_steps": -1, "num_train_epochs": 2}, None, True),
    ({"global_step": 50, "num_train_epochs": 1.5}, {"max_steps": -1, "num_train_epochs": 2}, None, False),
    ({"global_step": 50, "num_train_epochs": 2.5}, {"num_train_epochs": 2}, None, True),
    ({"global_step": 50, "num_train_epochs": 3.0}, {}, None, True),  # the default: 3 epochs
    ({"global_step": 50, "num_train_epochs": 2.9}, {}, None, False),
    ({"global_step": 50}, {}, None, False),
    ({"global_step": 50}, {"num_train_epochs": 1}, None, False),  # no epochs recorded: none done
    ({"global_step": 1}, {"max_steps": 1}, None, True),
    ({"global_step": 50, "num_train_epochs": 2.0}, {"max_steps": 0, "num_train_epochs": 2}, None, True),
])
def test_target_reached(status, training, stop_at_step, reached):
    assert target_reached(status, training, stop_at_step) is reached


# claim


def this_process_status(**fields):
    return {"status": "running", "host": socket.gethostname(), "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()), **fields}


def test_a_live_run_is_never_claimed_not_even_fresh(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, status=this_process_status(), metrics=True)
    for fresh in (False, True):
        with pytest.raises(RunDirError) as err:
            claim(run, CONFIG, fresh=fresh)
        assert str(err.value) == (f"{run}: another run is using this directory (process {os.getpid()} on "
                                  f"{socket.gethostname()} is running; no heartbeat); wait for it to finish, stop "
                                  "it, or choose another training.output_dir")


def test_a_dead_running_run_is_resumed(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, status=this_process_status(pid_start="not-its-start"),
                   checkpoints=(5,))
    assert claim(run, CONFIG) is None
    assert claim(str(run), CONFIG) is None


def test_a_run_with_other_settings_is_refused_and_the_message_says_what_changed(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, checkpoints=(5,))
    with pytest.raises(RunDirError) as err:
        claim(run, with_training(learning_rate=2e-6))
    assert str(err.value) == (f"{run} holds a run made with other settings (training.learning_rate: 1e-06 -> 2e-06). "
                              + NEXT)
    assert claim(run, with_training(learning_rate=2e-6), fresh=True) is None


def test_a_run_that_only_logged_steps_pins_its_settings_too(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, metrics=True)
    with pytest.raises(RunDirError, match=r"other settings \(model: 'tiny' -> 'other'\)"):
        claim(run, {**CONFIG, "model": "other"})


def test_a_run_that_never_trained_starts_again_with_corrected_settings(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, partial=(5,))
    assert claim(run, {**CONFIG, "model": "other"}) is None
    # a run that trained but has no config.yaml (an older run) resumes
    assert claim(make_run(tmp_path / "old", metrics=True, checkpoints=(5,)), CONFIG) is None


def test_the_settings_message_shows_five_changes_then_counts_the_rest(tmp_path):
    def refused(n):
        old = {f"k{i}": 0 for i in range(n)}
        run = make_run(tmp_path / f"run{n}", config=old, metrics=True)
        with pytest.raises(RunDirError) as err:
            claim(run, {f"k{i}": 1 for i in range(n)})
        return str(err.value).split("other settings (")[1].split("). Resume")[0]

    assert refused(5) == "k0: 0 -> 1; k1: 0 -> 1; k2: 0 -> 1; k3: 0 -> 1; k4: 0 -> 1"
    assert refused(6) == "k0: 0 -> 1; k1: 0 -> 1; k2: 0 -> 1; k3: 0 -> 1; k4: 0 -> 1; and 1 more"
    assert refused(8) == "k0: 0 -> 1; k1: 0 -> 1; k2: 0 -> 1; k3: 0 -> 1; k4: 0 -> 1; and 3 more"


def test_a_token_matches_its_placeholder_and_is_never_shown(tmp_path):
    resolved = {**CONFIG, "data": {"api_token": "sekrit"}}
    run = make_run(tmp_path / "run", config={**CONFIG, "data": {"api_token": "<API_TOKEN>"}}, checkpoints=(5,))
    assert claim(run, resolved) is None
    with pytest.raises(RunDirError) as err:
        claim(run, {**CONFIG, "data": {"api_token": "sekrit", "path": "x"}})
    assert "sekrit" not in str(err.value) and "data.path: None -> 'x'" in str(err.value)


def test_an_unreadable_config_says_how_to_move_the_run_aside(tmp_path):
    run = make_run(tmp_path / "run", checkpoints=(5,))
    (run / "config.yaml").write_text("model: [\n")
    with pytest.raises(RunDirError, match=r"config.yaml: not valid YAML \(.*\); move the run aside with fresh=true$"):
        claim(run, CONFIG)


def test_a_completed_run_at_its_target_is_left_alone_with_a_reason(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, checkpoints=(10,),
                   status={"status": "completed", "global_step": 10, "num_train_epochs": 0.5})
    assert claim(run, CONFIG) == (f"{run} already holds a completed run (step 10); nothing to do. Pass a larger "
                                  "training.max_steps to extend it, or fresh=true to start over")
    assert claim(run, with_training(max_steps=20)) is None  # extend
    assert claim(run, CONFIG, fresh=True) is None


def test_a_completed_run_at_its_stop_at_step_is_left_alone(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, checkpoints=(10,),
                   status={"status": "completed", "global_step": 10})
    resolved = {**with_training(max_steps=20), "stop_at_step": 10}
    assert "nothing to do" in claim(run, resolved)
    assert claim(run, {**resolved, "stop_at_step": 15}) is None


def test_an_unfinished_run_at_its_step_count_is_resumed_not_called_done(tmp_path):
    for state in ("failed", "interrupted", "running"):
        run = make_run(tmp_path / state, config=CONFIG, metrics=True,
                       status={"status": state, "global_step": 10, "host": "elsewhere"})
        assert claim(run, CONFIG) is None


def test_a_checkpoint_past_max_steps_is_refused(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, checkpoints=(30,))
    with pytest.raises(RunDirError) as err:
        claim(run, with_training(max_steps=20))
    assert str(err.value) == (f"{run}: its latest checkpoint (checkpoint-30) is already past training.max_steps=20; "
                              "resume with training.max_steps of at least 30, start over with fresh=true (the old "
                              "run is moved aside), or choose another training.output_dir")
    with pytest.raises(RunDirError, match=r"past training.max_steps=1; resume with training.max_steps of at least 30"):
        claim(run, with_training(max_steps=1))


def test_a_checkpoint_past_stop_at_step_is_refused(tmp_path):
    run = make_run(tmp_path / "run", config=CONFIG, checkpoints=(30,))
    with pytest.raises(RunDirError) as err:
        claim(run, {**with_training(max_steps=100), "stop_at_step": 20})
    assert str(err.value).startswith(f"{run}: its latest checkpoint (checkpoint-30) is already past stop_at_step=20; "
                                     "resume with stop_at_step of at least 30, start over with fresh=true")


@pytest.mark.parametrize("training", [{"max_steps": 30}, {"max_steps": 0}, {"max_steps": -1}, {}])
def test_a_checkpoint_at_or_without_a_step_target_resumes(tmp_path, training):
    run = make_run(tmp_path / "run", checkpoints=(30,))
    assert claim(run, {"training": training}) is None
    assert claim(tmp_path / "empty", {"training": training}) is None


# open_run: the one call a launch makes (claim, then start_run on the one writer)


def finished_run(run_dir: Path) -> Path:
    """A run that completed its 10 steps with CONFIG's settings."""
    return make_run(run_dir, config=CONFIG, status={"status": "completed", "global_step": 10}, checkpoints=(10,),
                    metrics=True)


def test_open_run_leaves_a_finished_run_alone_and_says_so(tmp_path):
    run = finished_run(tmp_path / "run")
    line = open_run(run, CONFIG)
    assert line.startswith(f"{run} already holds a completed run (step 10); nothing to do")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing set aside
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-10", "config.yaml", "metrics.jsonl", "run.json"]


def test_open_run_fresh_sets_the_finished_run_aside_and_starts_anew(tmp_path, frozen_clock):
    run = finished_run(tmp_path / "run")
    assert open_run(run, {**CONFIG, "fresh": True}, fresh=True) is None
    assert (tmp_path / "run.prev-20260101-120000" / "checkpoint-10").is_dir()
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]
    assert yaml.safe_load((run / "config.yaml").read_text())["fresh"] is False  # the ranks must not move it again


def test_open_run_on_another_machine_only_checks(tmp_path):
    assert open_run(tmp_path / "run", CONFIG, write=False) is None
    assert not (tmp_path / "run").exists()
    with pytest.raises(RunDirError, match="holds a run made with other settings"):
        open_run(finished_run(tmp_path / "old"), with_training(learning_rate=2e-6), write=False)
