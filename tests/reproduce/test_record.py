import json
import subprocess

import pytest

from tinyzero_trl.errors import UserError
from tinyzero_trl.reproduce.record import build_expected, record
from tinyzero_trl.verification.verify import judge, observe


def seed_run(path, scale, final):
    path.mkdir(parents=True)
    rows = [{"step": s, "rewards/countdown_equation/mean": scale * s / 20, "completions/mean_length": 10 + s,
             "rewards/countdown_format/mean": 1.0} for s in range(1, 21)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps({"base_accuracy": 0.1, "final_accuracy": final, "wall_seconds": 9}))
    return path


def test_bands_cover_every_seed_and_reject_a_run_cut_to_a_third(tmp_path):
    runs = [seed_run(tmp_path / f"s{i}", scale, final) for i, (scale, final) in
            enumerate([(0.9, 0.6), (1.0, 0.7), (1.1, 0.65)])]
    expected = build_expected("demo", runs, every=10, window=2)
    band = expected["checks"][0]
    assert [p["step"] for p in band["points"]] == [10, 20]
    for point in band["points"]:
        assert point["low"] < min(point["seeds"]) and point["high"] > max(point["seeds"])
    final = next(c for c in expected["checks"] if c.get("summary") == "final_accuracy")
    assert final["low"] < 0.6
    assert "git_commit" in expected["recorded"]["environment"]

    def verdicts(scale, acc):
        rows = [{"step": s, "rewards/countdown_equation/mean": scale * s / 20} for s in range(1, 21)]
        out = []
        for spec in (band, final):
            found, _ = observe(spec, rows, {"final_accuracy": acc}, "test")
            out += [judge(target, [value]).verdict for target, value in found]
        return out

    assert set(verdicts(1.0, 0.66)) == {"PASS"}
    assert "FAIL" in verdicts(1 / 3, 0.66 / 3)


def test_recording_refuses_a_dirty_tree(tmp_path, monkeypatch):
    monkeypatch.setattr("tinyzero_trl.reproduce.record._dirty", lambda root: " M src/x.py")
    with pytest.raises(UserError, match="dirty tree"):
        record("countdown-3b", [0], out_root=str(tmp_path))


@pytest.mark.parametrize("seeds,options,says", [
    ([0, 1], {"every": 0}, "--every 0: need >= 1"),
    ([0, 1], {"window": 0}, "--window 0: need >= 1"),  # averaged every step so far; verify refuses the file
    ([0, 1, 0], {}, "seed 0 given twice"),  # one run counted as two seeds: a band narrower than the runs
    ([], {}, "--seeds: give at least one seed"),
])
def test_recording_refuses_settings_that_would_make_it_wrong_before_any_seed_runs(tmp_path, monkeypatch, seeds,
                                                                                   options, says):
    monkeypatch.setattr("tinyzero_trl.reproduce.record._dirty", lambda root: "")
    monkeypatch.setattr("tinyzero_trl.reproduce.pipeline.reproduce", lambda *a, **k: pytest.fail("a seed ran"))
    with pytest.raises(UserError, match=says):
        record("countdown-tiny", seeds, out_root=str(tmp_path), **options)


def test_dirty_check_reads_git(tmp_path):
    from tinyzero_trl.reproduce.record import _dirty

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert _dirty(tmp_path) == ""
    assert _dirty(tmp_path.parent / "definitely-not-a-repo-xyz") != ""


def test_recording_reuses_a_finished_seed_only_from_the_same_commit(tmp_path, monkeypatch):
    monkeypatch.setattr("tinyzero_trl.reproduce.record._dirty", lambda root: "")
    monkeypatch.setattr("tinyzero_trl.reproduce.record.environment", lambda: {"git_commit": "new"})
    monkeypatch.setattr("tinyzero_trl.reproduce.pipeline.reproduce", lambda *a, **k: pytest.fail("must not train"))
    run = seed_run(tmp_path / "countdown-tiny-seed0", 1.0, 0.7)
    (run / "env.json").write_text(json.dumps({"git_commit": "old"}))
    with pytest.raises(UserError, match="from commit old, not new"):
        record("countdown-tiny", [0], out_root=str(tmp_path))

    written = []
    monkeypatch.setattr("pathlib.Path.write_text", lambda self, text: written.append(self.name))
    monkeypatch.setattr("tinyzero_trl.verification.curves.plot_curves", lambda *a, **k: None)
    (run / "env.json").write_bytes(json.dumps({"git_commit": "new"}).encode())
    assert record("countdown-tiny", [0], out_root=str(tmp_path)).name == "expected.json"
    assert written == ["expected.json"]


def test_the_judged_curve_is_the_runs_accuracy_reward_wherever_the_recipe_lists_it(tmp_path):
    # math_accuracy is judged, the format reward and the response length are only reported, even with the format
    # reward listed first (as Mini-R1's and Open-RS's recipes list it).
    runs = []
    for i in range(2):
        path = tmp_path / f"m{i}"
        path.mkdir()
        (path / "config.yaml").write_text("rewards:\n  think_close_format: 1.0\n  math_accuracy: 1.0\n")
        rows = [{"step": s, "rewards/think_close_format/mean": 1.0, "rewards/math_accuracy/mean": s / 25,
                 "completions/mean_length": 20 + s} for s in range(1, 21)]
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (path / "summary.json").write_text(json.dumps({"base_accuracy": 0.0, "final_accuracy": 0.9}))
        runs.append(path)
    checks = build_expected("math-tiny", runs, every=10, window=5)["checks"]
    assert [(c.get("metric") or c.get("summary"), c["rule"]) for c in checks] == [
        ("rewards/math_accuracy/mean", "band"), ("completions/mean_length", "report"),
        ("rewards/think_close_format/mean", "report"), ("final_accuracy", "at_least"), ("base_accuracy", "report")]
