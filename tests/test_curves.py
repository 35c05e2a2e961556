import json
import warnings

from tinyzero_trl.curves import plot_curves


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
    from tinyzero_trl.curves import panels
    from tinyzero_trl.run_dir import run_rewards

    path = run_dir(tmp_path / "countdown")  # no config.yaml: the rewards in the order metrics.jsonl logged them
    assert run_rewards(path) == ["countdown_equation", "countdown_format"]
    assert panels(run_rewards(path))[0] == ("rewards/countdown_equation/mean", "training accuracy (equation reward)")
    (path / "config.yaml").write_text("rewards:\n  math_accuracy: 1.0\n  think_close_format: 1.0\n")
    assert [m for m, _ in panels(run_rewards(path))] == [
        "rewards/math_accuracy/mean", "rewards/think_close_format/mean", "completions/mean_length"]
