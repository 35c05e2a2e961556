import json
import warnings

from tinyzero_trl.verification.curves import plot_curves


def run_dir(path, with_summary=True):
    path.mkdir(parents=True)
    rows = [{"step": s, "rewards/countdown_equation/mean": s / 20, "completions/mean_length": 100 - s,
             "rewards/countdown_format/mean": 0.9} for s in range(1, 21)]
    # A run that crashed mid-write leaves a cut last line; the picture still shows what was logged.
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 21, "rew'
    (path / "metrics.jsonl").write_text(text)
    if with_summary:
        (path / "summary.json").write_text(json.dumps({"base_accuracy": 0.2, "final_accuracy": 0.7}))
    return path


def test_plot_draws_several_runs_into_one_png(tmp_path):
    runs = {"seed 0": run_dir(tmp_path / "a"), "seed 1": run_dir(tmp_path / "b", with_summary=False)}
    out = plot_curves(runs, tmp_path / "curves.png", title="demo")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_run_without_some_metric_still_plots(tmp_path):
    path = tmp_path / "r"
    path.mkdir()
    (path / "metrics.jsonl").write_text(json.dumps({"step": 1, "completions/mean_length": 5.0}) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no matplotlib complaint about an empty legend
        assert plot_curves({"r": path}, tmp_path / "c.png").is_file()


def test_panels_follow_the_runs_rewards(tmp_path):
    from tinyzero_trl.run.metrics import run_rewards
    from tinyzero_trl.verification.curves import panels

    path = run_dir(tmp_path / "countdown")  # no config.yaml: the rewards in the order metrics.jsonl logged them
    assert run_rewards(path) == ["countdown_equation", "countdown_format"]
    assert panels(run_rewards(path))[0] == ("rewards/countdown_equation/mean", "training accuracy (equation reward)")
    (path / "config.yaml").write_text("rewards:\n  math_accuracy: 1.0\n  think_close_format: 1.0\n")
    assert [m for m, _ in panels(run_rewards(path))] == [
        "rewards/math_accuracy/mean", "rewards/think_close_format/mean", "completions/mean_length"]
    # Mini-R1 and Open-RS list their format reward first: the accuracy panel still shows the accuracy.
    assert [m for m, _ in panels(["open_rs_format", "cosine_accuracy", "math_accuracy"])] == [
        "rewards/cosine_accuracy/mean", "rewards/open_rs_format/mean", "completions/mean_length"]
    assert panels(["mini_r1_format", "mini_r1_equation"])[0][0] == "rewards/mini_r1_equation/mean"


def _drawn(monkeypatch, runs, tmp_path):
    """The figure plot_curves saves, kept for inspection instead of read back from pixels."""
    import matplotlib.figure

    saved = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, **kw: (saved.append(fig),
                                                                                       real(fig, path, **kw)))
    plot_curves(runs, tmp_path / "c.png")
    return saved[0]


def test_the_figure_draws_the_logged_values_and_the_held_out_accuracies(tmp_path, monkeypatch):
    fig = _drawn(monkeypatch, {"seed 0": run_dir(tmp_path / "a")}, tmp_path)
    accuracy, fmt, length = fig.axes
    raw, smooth, held_out = accuracy.lines
    assert list(raw.get_xdata()) == list(range(1, 21)) and list(raw.get_ydata()) == [s / 20 for s in range(1, 21)]
    assert smooth.get_ydata()[-1] == sum(s / 20 for s in range(16, 21)) / 5  # the last 5 steps' mean
    assert list(held_out.get_ydata()) == [0.2, 0.7] and "0.20 -> 0.70" in held_out.get_label()
    assert list(length.lines[0].get_ydata())[:2] == [99, 98] and set(fmt.lines[0].get_ydata()) == {0.9}


def test_a_run_that_logged_one_step_is_drawn_as_a_point(tmp_path, monkeypatch):
    path = tmp_path / "one"
    path.mkdir()
    (path / "metrics.jsonl").write_text(json.dumps({"step": 1, "rewards/countdown_equation/mean": 0.5}) + "\n")
    fig = _drawn(monkeypatch, {"one": path}, tmp_path)
    smooth = fig.axes[0].lines[1]
    assert smooth.get_marker() == "o" and list(smooth.get_ydata()) == [0.5]
    assert "completions/mean_length\nnot in metrics.jsonl" in [t.get_text() for t in fig.axes[2].texts]
