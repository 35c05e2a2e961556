import json
from types import SimpleNamespace

import pytest

from tinyzero_trl.metrics import MetricsCallback, MetricsError, metric_series, read_metrics


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


def test_truncated_file_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    with pytest.raises(MetricsError, match=r"metrics.jsonl:2"):
        read_metrics(path)
    assert [r["step"] for r in read_metrics(path, strict=False)] == [1]


def test_repeated_step_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + json.dumps({"step": 1}) + "\n")
    with pytest.raises(MetricsError, match="appears twice"):
        read_metrics(path)


def test_series_skips_missing_and_nan():
    rows = [{"step": 1, "r": 0.5}, {"step": 2}, {"step": 3, "r": float("nan")}, {"step": 4, "r": 1}]
    assert metric_series(rows, "r") == [(1, 0.5), (4, 1.0)]
