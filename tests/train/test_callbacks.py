from types import SimpleNamespace

from tinyzero_trl.run.metrics import read_metrics
from tinyzero_trl.train.callbacks import MetricsCallback


def state(step):
    return SimpleNamespace(global_step=step, is_world_process_zero=True)



def test_train_and_eval_logs_of_a_step_become_one_line(tmp_path):
    cb = MetricsCallback(tmp_path)
    cb.on_log(None, state(1), None, logs={"loss": 1.0, "reward": 0.2})
    cb.on_log(None, state(1), None, logs={"eval_reward": 0.3})
    cb.on_save(None, state(1), None)
    cb.on_log(None, state(2), None, logs={"loss": 0.5})
    cb.on_log(None, state(2), None, logs={"train_runtime": 9.0, "train_loss": 0.7})  # end-of-training summary
    cb.on_train_end(None, state(2), None)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert rows == [{"step": 1, "loss": 1.0, "reward": 0.2, "eval_reward": 0.3}, {"step": 2, "loss": 0.5}]
    assert cb.summary == {"train_runtime": 9.0, "train_loss": 0.7}



def test_resumed_writer_never_logs_a_step_twice(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.9}\n')
    cb = MetricsCallback(tmp_path)
    for step in (2, 3):
        cb.on_log(None, state(step), None, logs={"loss": 0.1})
        cb.on_step_begin(None, state(step), None)
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert steps == [1, 2, 3]



def test_non_main_process_writes_nothing(tmp_path):
    cb = MetricsCallback(tmp_path)
    cb.on_log(None, SimpleNamespace(global_step=1, is_world_process_zero=False), None, logs={"loss": 1})
    cb.on_train_end(None, state(1), None)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_a_line_cut_mid_write_is_set_aside_not_glued_to_the_next(tmp_path):
    """A kill mid-write leaves half a line; the resumed writer must not append onto it (issue 20, item 4)."""
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    cb = MetricsCallback(tmp_path)
    for step in (2, 3):
        cb.on_log(None, state(step), None, logs={"loss": 0.1 * step})
        cb.on_step_begin(None, state(step), None)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]  # strict: every line whole
    assert (tmp_path / "metrics.jsonl.cut").read_text() == '{"step": 2, "lo\n'


def test_a_reader_rank_leaves_the_file_alone(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "lo')
    MetricsCallback(tmp_path, is_writer=False)
    assert path.read_text().endswith('"lo') and not (tmp_path / "metrics.jsonl.cut").exists()


def test_steps_logged_after_the_resume_checkpoint_are_set_aside_and_logged_anew(tmp_path):
    """A run killed at step 7 with checkpoint-6 resumes at 6: its old line for step 7 came from weights that are
    gone, so it moves to metrics.jsonl.cut and the resumed run's step 7 is the one in the curve."""
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(f'{{"step": {s}, "loss": {s}.0}}\n' for s in range(1, 8)))
    cb = MetricsCallback(tmp_path, resume_step=6)
    cb.on_log(None, state(7), None, logs={"loss": 0.5})
    cb.on_train_end(None, state(7), None)
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == list(range(1, 8)) and rows[-1]["loss"] == 0.5
    assert (tmp_path / "metrics.jsonl.cut").read_text() == '{"step": 7, "loss": 7.0}\n'


def test_a_start_without_checkpoint_sets_aside_every_earlier_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n')
    MetricsCallback(tmp_path, resume_step=0)
    assert path.read_text() == "" and (tmp_path / "metrics.jsonl.cut").read_text() == '{"step": 1, "loss": 1.0}\n'


def test_the_trainers_callbacks_resume_metrics_at_the_checkpoint_step(tmp_path):
    """What the trainer builds from a run and its checkpoint: a resumed run's metrics writer sets aside the
    steps after the checkpoint (the trainer handing it no resume step would keep them, and a curve would mix two
    runs: issue 25's last listed mutation)."""
    from tinyzero_trl.train.trainer import callbacks

    (tmp_path / "metrics.jsonl").write_text("".join(f'{{"step": {s}}}\n' for s in range(1, 7)))
    cfg = SimpleNamespace(output_dir=tmp_path, stop_at_step=None, rewards={"r": 1.0}, stop_without_signal=None,
                          training=SimpleNamespace(fp16=False))
    found = callbacks(cfg, is_writer=True, checkpoint=str(tmp_path / "checkpoint-4"))
    # health first: the metric it adds to a step's logs (health/nonfinite_weights) reaches metrics.jsonl with them
    assert [type(c).__name__ for c in found] == ["HealthCallback", "MetricsCallback"]
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    assert (tmp_path / "metrics.jsonl.cut").read_text() == '{"step": 5}\n{"step": 6}\n'
    found = callbacks(SimpleNamespace(output_dir=tmp_path, stop_at_step=9, rewards={"r": 1.0}, stop_without_signal=4,
                                      training=SimpleNamespace(fp16=True)), is_writer=False, checkpoint=None)
    assert [type(c).__name__ for c in found] == ["HealthCallback", "MetricsCallback", "StopAtStep"]
    assert found[0].stop_without_signal == 4 and found[2].step == 9
    assert "skipped_steps" not in [r.name for r in found[0].monitor.rules]  # an fp16 run skips steps by design
