import json

import pytest

from tinyzero_trl.cli import main
from tinyzero_trl.verify import UnusableRun, verify_run

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


def make_run(path, scale=1.0, steps=8):
    path.mkdir(parents=True)
    rows = [{"step": s, "rewards/acc/mean": scale * s / 10, "completions/mean_length": 20 + s} for s in range(1, steps + 1)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "run.json").write_text(json.dumps({"status": "completed", "global_step": steps}))
    (path / "summary.json").write_text(json.dumps({"final_accuracy": scale * 0.75}))
    return path


@pytest.fixture
def repro(tmp_path, monkeypatch):
    folder = tmp_path / "reproductions" / "demo"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("claim: demo\nrecipe: countdown=grpo-qwen-2.5-0.5b-base\n")
    (folder / "expected.json").write_text(json.dumps(EXPECTED))
    monkeypatch.setenv("TINYZERO_REPRODUCTIONS", str(tmp_path / "reproductions"))
    return folder


def test_honest_run_passes_and_writes_report_and_plots(repro, tmp_path):
    run = make_run(tmp_path / "run")
    verdict, rows = verify_run(repro / "expected.json", run)
    assert verdict == "PASS"
    assert [r.verdict for r in rows] == ["PASS", "PASS", "PASS", "PASS", "INFO", "PASS"]
    assert "**PASS**" in (run / "verify.md").read_text()
    pngs = sorted(p.name for p in run.glob("verify-*.png"))
    assert pngs == ["verify-completions_mean_length.png", "verify-rewards_acc_mean.png"]
    assert all((run / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_cli_exit_codes(repro, tmp_path, capsys):
    good = make_run(tmp_path / "good")
    assert main(["verify", "demo", "--run-dir", str(good)]) == 0
    degraded = make_run(tmp_path / "bad", scale=1 / 3)  # rewards and accuracy cut to a third
    assert main(["verify", "demo", "--run-dir", str(degraded)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["verify", "demo", "--run-dir", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


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


def test_crashed_run_is_not_judged(repro, tmp_path):
    run = make_run(tmp_path / "run")
    (run / "run.json").write_text(json.dumps({"status": "failed", "error": "OOM"}))
    with pytest.raises(UnusableRun, match="'failed'"):
        verify_run(repro / "expected.json", run)


def test_json_output(repro, tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["verify", "demo", "--run-dir", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "PASS" and len(out["checks"]) == 6


def test_only_reported_checks_are_unchecked_not_passed(repro, tmp_path, capsys):
    (repro / "expected.json").write_text(json.dumps({"checks": [
        {"metric": "rewards/acc/mean", "rule": "report", "window": 2, "source": "no number published"}]}))
    run = make_run(tmp_path / "run")
    verdict, _ = verify_run(repro / "expected.json", run)
    assert verdict == "UNCHECKED"
    assert main(["verify", "demo", "--run-dir", str(run)]) == 3  # not PASS's exit code
    assert "not a pass" in capsys.readouterr().err
    # --json stays one parseable document (scripts such as .ci/verify_catches.py read it)
    assert main(["verify", "demo", "--run-dir", str(run), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["verdict"] == "UNCHECKED"
