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


def test_the_figure_says_what_it_shows(tmp_path, monkeypatch):
    """Issue 32: the smoothing was unlabelled, the base -> final pair was joined by a line that looked measured,
    and the step axis could tick at fractions."""
    fig = _drawn(monkeypatch, {"seed 0": run_dir(tmp_path / "a")}, tmp_path)
    raw, smooth, held_out = fig.axes[0].lines
    assert raw.get_label() == "seed 0: each step" and smooth.get_label() == "seed 0: mean of the last 5 steps"
    assert held_out.get_linestyle() == "None" and list(held_out.get_xdata()) == [0, 20]  # two points, no line
    assert "step 0 and 20" in held_out.get_label()
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "seed 0: mean of the last 5 steps" in legend
    for ax in fig.axes:
        assert all(float(t).is_integer() for t in ax.get_xticks()), ax.get_xticks()


def _verify_figure(monkeypatch, tmp_path, metric, values):
    import matplotlib.figure

    from tinyzero_trl.verification.report import plot

    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, **kw: saved.append(fig))
    series = list(zip(range(1, len(values) + 1), values))
    plot(tmp_path / "v.png", metric, [series], [{"rule": "report", "window": 2}], "PASS")
    return saved[0].axes[0]


def test_verify_plots_a_0_1_reward_from_0_to_1_with_whole_steps(tmp_path, monkeypatch):
    """Before: a format reward between 0.87 and 1.0 filled the plot, so a small drift looked like a collapse."""
    ax = _verify_figure(monkeypatch, tmp_path, "rewards/countdown_format/mean", [1.0, 0.95, 0.87, 0.9])
    low, high = ax.get_ylim()
    assert low <= 0 and high >= 1 and high - low < 1.1
    assert all(float(t).is_integer() for t in ax.get_xticks()), ax.get_xticks()
    assert [line.get_label() for line in ax.lines] == ["run, each step", "run, mean of the last 2 steps"]
    length = _verify_figure(monkeypatch, tmp_path, "completions/mean_length", [100.0, 120.0, 130.0])
    assert length.get_ylim()[0] > 50  # a length has no fixed range: its axis follows the values
