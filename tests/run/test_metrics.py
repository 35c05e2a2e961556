import json

import pytest

from tinyzero_trl.run.metrics import MetricsError, metric_series, read_metrics, window_mean


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


def test_window_mean_averages_the_last_values_up_to_a_step():
    series = [(1, 0.0), (2, 1.0), (3, 2.0), (5, 4.0)]
    assert window_mean(series, 3, 2) == 1.5
    assert window_mean(series, 4, 2) == 1.5  # no value at step 4: the window ends at the last one before
    assert window_mean(series, 5, 10) == 7 / 4
    assert window_mean(series, 0, 3) is None


def test_a_step_that_is_not_an_integer_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": true, "loss": 1}\n')
    with pytest.raises(MetricsError, match="integer 'step'"):
        read_metrics(path)


def test_reading_metrics_loads_no_ml_stack():
    import subprocess
    import sys

    code = ("import sys, tinyzero_trl.verification.verify, tinyzero_trl.run.metrics; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_read_curves_reads_a_run_once_with_the_one_smoothing(tmp_path):
    """Every metric's series and its moving mean, the same numbers window_mean gives at each logged step."""
    from tinyzero_trl.run.metrics import moving_means, read_curves

    rows = [{"step": s, "rewards/r/mean": s * 0.1, "loss": 1.0 / s} for s in range(1, 9)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    curves = read_curves(tmp_path, 3)
    assert curves.last_step == 8 and curves.rewards == ["r"]
    assert list(curves.series) == list(curves.means) == ["rewards/r/mean", "loss"]  # the step is no metric
    series = metric_series(rows, "rewards/r/mean")
    assert curves.series["rewards/r/mean"] == series
    assert curves.means["rewards/r/mean"] == [window_mean(series, s, 3) for s, _ in series]
    assert moving_means([], 3) == []


def test_curves_of_a_run_that_has_logged_nothing_yet_are_empty(tmp_path):
    """A run directory whose metrics.jsonl is still empty (or holds only a line cut mid-write) plots nothing."""
    from tinyzero_trl.run.metrics import read_curves

    for text in ("", '{"step": 1, "lo'):
        (tmp_path / "metrics.jsonl").write_text(text)
        curves = read_curves(tmp_path, 3)
        assert (curves.last_step, curves.series, curves.means) == (None, {}, {})


def test_a_missing_file_asks_whether_the_run_started(tmp_path):
    with pytest.raises(MetricsError) as err:
        read_metrics(tmp_path / "metrics.jsonl")
    assert str(err.value) == (f"{tmp_path / 'metrics.jsonl'}: no such file (has the run started? is this a run "
                              "directory?)")


def test_a_last_line_without_its_newline_was_cut_mid_write(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for text, problem in [('{"step": 1}\n{"step": 2}', "2: line is not terminated (the file was cut mid-write)"),
                          ('[1]\n', "1: each line must be a JSON object with an integer 'step'")]:
        path.write_text(text)
        with pytest.raises(MetricsError) as err:
            read_metrics(path)
        assert str(err.value) == f"{path}:{problem}"


def test_blank_lines_and_lines_cut_by_a_crash_are_skipped_and_reading_goes_on(tmp_path):
    # A resuming writer appends after the line a crash cut: the steps after it are the resumed run's.
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n\n{"step": 2, "lo{"step": 3}\n{"step": 4}\n')
    assert [r["step"] for r in read_metrics(path, strict=False)] == [1, 4]
    path.write_text('{"step": 1}\n\n{"step": 2}\n')
    assert [r["step"] for r in read_metrics(path)] == [1, 2]


def test_a_byte_that_is_not_utf8_does_not_lose_the_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1, "sample": "caf\xe9"}\n{"step": 2}\n')
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2] and rows[0]["sample"] == "caf\ufffd"


def test_run_rewards_come_from_the_config_else_from_the_logged_means_in_order(tmp_path):
    from tinyzero_trl.run.metrics import run_rewards

    assert run_rewards(tmp_path) == []  # nothing yet
    (tmp_path / "metrics.jsonl").write_text("")
    assert run_rewards(tmp_path) == []
    row = {"step": 1, "loss": 0.1, "rewards/format_reward/mean": 1.0, "rewards/format_reward/std": 0.0,
           "kl/mean": 0.0, "rewards/answer_reward/mean": 0.5, "completions/mean": 3}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(row) + "\n" + '{"step": 2, "cut')
    assert run_rewards(str(tmp_path)) == ["format_reward", "answer_reward"]
    (tmp_path / "config.yaml").write_text("model: m\n")  # a config without rewards: the logged ones
    assert run_rewards(tmp_path) == ["format_reward", "answer_reward"]
    (tmp_path / "config.yaml").write_text("rewards:\n  answer: {}\n  format: {}\n")
    assert run_rewards(tmp_path) == ["answer", "format"]


def test_run_rewards_keeps_a_name_that_ends_another(tmp_path):
    from tinyzero_trl.run.metrics import run_rewards

    row = {"step": 1, "rewards/len/mean": 0.0, "rewards/xlen/mean": 1.0, "rewards/lens/mean": 2.0}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    assert run_rewards(tmp_path) == ["len", "xlen", "lens"]
