"""verify as a user meets it: verdicts and exit codes, every rule, unusable references, impossible runs."""

import json
import math
import os
import socket

import pytest
import yaml

from tinyzero_trl.cli import main
from tinyzero_trl.config.compose import compose
from tinyzero_trl.verification.verify import UnusableRun, verify_run

RECIPE = "countdown=grpo-qwen-2.5-0.5b-base"
EXPECTED = {
    "reproduction": "demo",
    "checks": [
        {"metric": "rewards/acc/mean", "rule": "band", "window": 2,
         "points": [{"step": 4, "value": 0.4, "low": 0.3, "high": 0.5},
                    {"step": 8, "value": 0.8, "low": 0.7, "high": 0.9}], "source": "test"},
        {"metric": "rewards/acc/mean", "rule": "rises", "window": 2, "source": "test"},
        {"metric": "completions/mean_length", "rule": "stays_below", "high": 50, "window": 1, "source": "test"},
        {"metric": "completions/mean_length", "rule": "report", "window": 2, "source": "no number"},
        {"summary": "final_accuracy", "rule": "at_least", "low": 0.6, "source": "test"},
    ],
}


def make_run(path, scale=1.0, steps=8, recipe=RECIPE):
    path.mkdir(parents=True)
    rows = [{"step": s, "rewards/acc/mean": scale * s / 10, "rewards/countdown_equation/mean": scale * s / 10,
             "completions/mean_length": 20 + s, "loss": 0.01 * s, "grad_norm": 0.5} for s in range(1, steps + 1)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "run.json").write_text(json.dumps({"status": "completed", "global_step": steps}))
    (path / "summary.json").write_text(json.dumps({"final_accuracy": scale * 0.75, "base_accuracy": 0.1}))
    config = compose([f"+{recipe}", f"training.output_dir={path}"])
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def rewrite_rows(run, change):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        change(row)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))


def set_summary(run, **fields):
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, **fields}))


@pytest.fixture
def repro(tmp_path, monkeypatch):
    folder = tmp_path / "reproductions" / "demo"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"claim: demo\nrecipe: {RECIPE}\n")
    (folder / "expected.json").write_text(json.dumps(EXPECTED))
    monkeypatch.setenv("TINYZERO_REPRODUCTIONS", str(tmp_path / "reproductions"))
    return folder


def verify(run, capsys, *extra):
    code = main(["verify", "demo", "--run-dir", str(run), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_honest_run_passes_and_writes_report_and_plots(repro, tmp_path):
    run = make_run(tmp_path / "run")
    verdict, rows = verify_run(repro / "expected.json", run)
    assert verdict == "PASS"
    assert [r.verdict for r in rows] == ["PASS", "PASS", "PASS", "PASS", "INFO", "PASS"]
    assert "**PASS**" in (run / "verify.md").read_text()
    pngs = sorted(p.name for p in run.glob("verify-*.png"))
    assert pngs == ["verify-completions_mean_length.png", "verify-rewards_acc_mean.png"]


def test_cli_exit_codes(repro, tmp_path, capsys):
    assert verify(make_run(tmp_path / "good"), capsys)[0] == 0
    code, out, _ = verify(make_run(tmp_path / "bad", scale=1 / 3), capsys)  # rewards and accuracy cut to a third
    assert code == 1 and "FAIL" in out
    code, _, err = verify(tmp_path / "missing", capsys)
    assert code == 2 and "no such run directory" in err


def test_a_report_it_cannot_write_is_bad_input_not_a_fail(repro, tmp_path, capsys):
    """An unwritable --report-dir was an OSError at the end, exit 1: what a script reads as FAIL of a good run."""
    (tmp_path / "a-file").write_text("")
    code, out, err = verify(make_run(tmp_path / "good"), capsys, "--report-dir", str(tmp_path / "a-file" / "report"))
    assert code == 2 and "--report-dir=" in err and "a-file/report: cannot write there" in err and "PASS" not in out


def test_truncated_metrics_are_unusable_with_file_and_line(repro, tmp_path):
    run = make_run(tmp_path / "run")
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text[: len(text) - 30])  # cut mid-line
    with pytest.raises(UnusableRun, match=r"metrics.jsonl:8"):
        verify_run(repro / "expected.json", run)


def test_metrics_cut_at_a_line_boundary_are_incomplete(repro, tmp_path):
    run = make_run(tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:5]))
    with pytest.raises(UnusableRun, match="truncated"):
        verify_run(repro / "expected.json", run)


@pytest.mark.parametrize("status, message", [
    ({"status": "failed", "error": "OOM"}, "the run failed: OOM; fix the cause"),
    ({"status": "interrupted", "error": "interrupted by SIGTERM", "global_step": 3}, "the run was interrupted at "
                                                                                      "step 3: interrupted by SIGTERM"),
    ({"status": "running", "host": socket.gethostname(), "pid": 2 ** 22 + 7, "pid_start": "1",
      "heartbeat": 0}, "died without a word"),
    ({"status": "running", "host": socket.gethostname(), "pid": os.getpid(), "pid_start": None}, "died"),
])
def test_unfinished_runs_are_not_judged_and_say_why(repro, tmp_path, capsys, status, message):
    run = make_run(tmp_path / "run")
    (run / "run.json").write_text(json.dumps(status))
    code, _, err = verify(run, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_live_run_is_reported_as_running(repro, tmp_path, capsys):
    from tinyzero_trl.run.status import this_process

    run = make_run(tmp_path / "run")
    (run / "run.json").write_text(json.dumps({"status": "running", **this_process()}))
    code, _, err = verify(run, capsys)
    assert code == 2 and "the run is still running" in err and f"process {os.getpid()}" in err


def test_json_output(repro, tmp_path, capsys):
    code, out, _ = verify(make_run(tmp_path / "run"), capsys, "--json")
    assert code == 0
    out = json.loads(out)
    assert out["verdict"] == "PASS" and len(out["checks"]) == 6


def test_json_names_the_run_it_judged_when_none_was_given(repro, tmp_path, capsys, monkeypatch):
    """Without --run-dir verify judges $TINYZERO_RUNS/NAME, and --json says which directory that was (scripts
    that collect verdicts read it; it printed null)."""
    monkeypatch.setenv("TINYZERO_RUNS", str(tmp_path / "runs"))
    run = make_run(tmp_path / "runs" / "demo")
    code = main(["verify", "demo", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["run_dirs"] == [str(run)]


def test_only_reported_checks_are_unchecked_not_passed(repro, tmp_path, capsys):
    (repro / "expected.json").write_text(json.dumps({"checks": [
        {"metric": "rewards/acc/mean", "rule": "report", "window": 2, "source": "no number published"}]}))
    run = make_run(tmp_path / "run")
    verdict, _ = verify_run(repro / "expected.json", run)
    assert verdict == "UNCHECKED"
    code, _, err = verify(run, capsys)
    assert code == 3 and "not a pass" in err  # never PASS's exit code
    code, out, _ = verify(run, capsys, "--json")  # --json stays one parseable document
    assert code == 3 and json.loads(out)["verdict"] == "UNCHECKED"


# ---------------------------------------------------------------- the rules no other test exercises


@pytest.mark.parametrize("low, high, verdict", [(0.6, 0.9, "PASS"), (0.8, None, "FAIL"), (None, 0.7, "FAIL")])
def test_final_mean(repro, tmp_path, low, high, verdict):
    (repro / "expected.json").write_text(json.dumps({"checks": [
        {"metric": "rewards/acc/mean", "rule": "final_mean", "window": 2, "low": low, "high": high, "source": "t"}]}))
    # the last two steps log 0.7 and 0.8: mean 0.75
    assert verify_run(repro / "expected.json", make_run(tmp_path / "run"))[0] == verdict


@pytest.mark.parametrize("low, high, verdict", [(0.7, 0.8, "PASS"), (0.76, 0.9, "FAIL"), (0.5, 0.74, "FAIL")])
def test_between(repro, tmp_path, low, high, verdict):
    (repro / "expected.json").write_text(json.dumps({"checks": [
        {"summary": "final_accuracy", "rule": "between", "low": low, "high": high, "source": "t"}]}))
    assert verify_run(repro / "expected.json", make_run(tmp_path / "run"))[0] == verdict  # final accuracy 0.75


# ---------------------------------------------------------------- references that cannot be applied


@pytest.mark.parametrize("spec, message", [
    ({"metric": "rewards/acc/mean", "rule": "at_least", "low": 0.9}, "rule 'at_least' cannot judge the metric"),
    ({"metric": "rewards/acc/mean", "rule": "between", "low": 0, "high": 1}, "applies to summary figures"),
    ({"summary": "final_accuracy", "rule": "band", "points": []}, "rule 'band' cannot judge the summary"),
    ({"metric": "rewards/acc/mean", "rule": "final_mean"}, "needs low or high"),
    ({"metric": "rewards/acc/mean", "rule": "band", "points": [{"step": 4, "low": 0.5}]}, "needs low and high"),
    ({"summary": "final_accuracy", "rule": "between", "low": 0.9, "high": 0.1}, "above high"),
    ({"metric": "rewards/acc/mean", "rule": "rises", "window": 0}, "window=0"),
    ({"metric": "rewards/acc/mean", "rule": "nope"}, "rule 'nope'"),
])
def test_a_check_that_cannot_be_applied_is_an_error_naming_it(repro, tmp_path, capsys, spec, message):
    """Before: `at_least` on a metric yielded no row, and a run logging 0.0 came out UNCHECKED with exit 0."""
    (repro / "expected.json").write_text(json.dumps({"checks": [
        {"metric": "rewards/acc/mean", "rule": "report", "source": "shown"}, {**spec, "source": "test"}]}))
    code, _, err = verify(make_run(tmp_path / "run", scale=0.0), capsys)
    assert code == 2 and "checks[1]" in err and message in err


# ---------------------------------------------------------------- impossible runs (exit 2, file + step + value)


def _nan_judged(row):
    if row["step"] == 6:
        row["rewards/acc/mean"] = float("nan")


def _nan_health(row):
    row["loss"] = row["grad_norm"] = float("nan")


@pytest.mark.parametrize("change, message", [
    (_nan_judged, "step 6: rewards/acc/mean = nan"),
    (_nan_health, "step 1: loss = nan"),
    (lambda r: r.update({"rewards/countdown_equation/mean": 1.5}), "= 1.5, outside [0, 1]"),
    (lambda r: r.update({"rewards/countdown_equation/mean": -3}), "= -3, outside [0, 1]"),
    (lambda r: r.update({"grad_norm": float("inf")}), "grad_norm = inf"),
])
def test_impossible_metrics_are_unusable(repro, tmp_path, capsys, change, message):
    run = make_run(tmp_path / "run")
    rewrite_rows(run, change)
    code, _, err = verify(run, capsys)
    assert code == 2 and message in err and "metrics.jsonl" in err and "Traceback" not in err


@pytest.mark.parametrize("value, message", [(1.7, "an accuracy lies in [0, 1]"), (-0.2, "an accuracy lies in [0, 1]"),
                                            ("0.9", "'0.9' is not a number"),
                                            (True, "True is not a number"), (None, "None is not a number")])
def test_impossible_summary_figures_are_unusable(repro, tmp_path, capsys, value, message):
    run = make_run(tmp_path / "run")
    set_summary(run, final_accuracy=value)
    code, _, err = verify(run, capsys)
    assert code == 2 and "summary.json: final_accuracy" in err and message in err and "Traceback" not in err


def test_a_run_of_another_recipe_is_not_this_reproduction(repro, tmp_path, capsys):
    run = make_run(tmp_path / "run", recipe="countdown=grpo-qwen-2.5-3b-base")
    code, _, err = verify(run, capsys)
    assert code == 2 and "not this reproduction's pinned settings" in err
    assert "model.name_or_path: 'Qwen/Qwen2.5-3B' -> 'Qwen/Qwen2.5-0.5B'" in err


def test_a_changed_pinned_setting_is_named_but_the_seed_may_differ(repro, tmp_path, capsys):
    run = make_run(tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["seed"] = 7
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert verify(run, capsys)[0] == 0
    config["training"]["learning_rate"] = 5e-6
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    code, _, err = verify(run, capsys)
    assert code == 2 and "training.learning_rate: 5e-06 -> 1e-06" in err
    (run / "config.yaml").unlink()
    code, _, err = verify(run, capsys)
    assert code == 2 and "config.yaml: missing" in err


@pytest.mark.parametrize("name", ["run.json", "summary.json"])
def test_invalid_json_names_the_file(repro, tmp_path, capsys, name):
    run = make_run(tmp_path / "run")
    (run / name).write_text("{not json")
    code, _, err = verify(run, capsys)
    assert code == 2 and f"{name}: not valid JSON" in err and "Traceback" not in err


def test_finite_values_only_in_the_sanity_checks_of_unjudged_rewards(repro, tmp_path, capsys):
    """A reward that no check judges may log NaN (TRL's nanmean of a batch with no parseable gold) and still pass."""
    run = make_run(tmp_path / "run")
    rewrite_rows(run, lambda r: r.update({"rewards/math_accuracy/mean": math.nan}))
    assert verify(run, capsys)[0] == 0


# ---------------------------------------------------------------- several runs, judged together


def _target(low=0.4, high=0.6, spread=None):
    from tinyzero_trl.verification.verify import Target

    return Target("m", "10", "0.5", low, high, "src", seed_spread=spread)


@pytest.mark.parametrize("values, verdict, detail", [
    ([0.5], "PASS", ""),
    ([0.3], "FAIL", ""),
    ([0.45, 0.5, 0.55], "PASS", "mean of 3 runs"),
    ([0.65, 0.15, 0.35], "PASS", "within noise"),  # mean 0.383 below 0.4, but the runs scatter widely
    ([0.31, 0.30, 0.32], "FAIL", "significantly outside"),
    ([0.5, 0.25, 0.26, 0.24, 0.25], "FAIL", "significantly outside"),  # the best run alone would pass
    ([0.3, 0.3], "FAIL", "identical runs"),
])
def test_several_runs_are_judged_by_their_mean_and_a_one_sided_test(values, verdict, detail):
    from tinyzero_trl.verification.verify import judge

    row = judge(_target(), values)
    assert row.verdict == verdict and detail in row.detail


def test_the_references_seed_spread_decides_so_noisy_runs_cannot_buy_a_pass():
    from tinyzero_trl.verification.verify import judge

    noisy = [0.60, 0.10, 0.35]  # mean 0.35: within the noise of its own sample spread
    assert judge(_target(), noisy).verdict == "PASS"
    assert judge(_target(spread=0.02), noisy).verdict == "FAIL"  # but not against the reference's spread
    assert "seed spread 0.02" in judge(_target(spread=0.02), noisy).detail
    assert judge(_target(spread=0.2), noisy).verdict == "PASS"


def test_with_five_runs_the_best_and_worst_are_set_aside():
    from tinyzero_trl.verification.verify import judge

    row = judge(_target(), [0.5, 0.52, 0.48, 0.0, 0.99])
    assert row.verdict == "PASS" and row.observed == pytest.approx(0.5) and "mean of 3 runs" in row.detail


def test_cli_judges_several_seeds_together_and_writes_one_report(repro, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYZERO_RUNS", str(tmp_path / "runs"))
    good = [make_run(tmp_path / f"seed{i}", scale=s) for i, s in enumerate((0.95, 1.0, 1.05))]
    code, out, _ = verify(good[0], capsys, "--run-dir", str(good[1]), "--run-dir", str(good[2]))
    assert code == 0 and "mean of 3 runs" in out
    report = (tmp_path / "runs" / "verify-demo" / "verify.md").read_text()
    assert all(str(d) in report for d in good)
    bad = [make_run(tmp_path / f"bad{i}", scale=s) for i, s in enumerate((0.3, 0.32, 0.34))]
    code, out, _ = verify(bad[0], capsys, "--run-dir", str(bad[1]), "--run-dir", str(bad[2]))
    assert code == 1 and "significantly outside" in out


def test_every_reference_point_shows_its_own_source(repro, tmp_path, capsys):
    spec = dict(EXPECTED["checks"][0])
    spec["points"] = [dict(spec["points"][0], source="figure 2, read by pixel"), spec["points"][1]]
    (repro / "expected.json").write_text(json.dumps({"checks": [spec]}))
    code, out, _ = verify(make_run(tmp_path / "run"), capsys)
    assert code == 0 and "[1] figure 2, read by pixel" in out and "[2] test" in out
    report = (tmp_path / "run" / "verify.md").read_text()
    assert "1. figure 2, read by pixel" in report and "| [1] |" in report
