"""``tinyzero-trl health RUN_DIR`` (issue 31): recorded healthy runs raise no alarm; exit codes as verify's; no torch.

The healthy runs in tests/run/healthy/ are real runs of the CPU miniatures' recipes (tests/run/healthy/README.md says
how each was made); a rule that fires on them is a false alarm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT
from tinyzero_trl.cli import main
from tinyzero_trl.run.health import RULES

HEALTHY = sorted((ROOT / "tests" / "run" / "healthy").glob("*/metrics.jsonl"))


def test_the_recorded_healthy_runs_are_there():
    assert [p.parent.name for p in HEALTHY] == ["clevr-tiny", "countdown-tiny", "math-tiny"]


@pytest.mark.parametrize("metrics", HEALTHY, ids=[p.parent.name for p in HEALTHY])
def test_a_recorded_healthy_run_raises_no_alarm(metrics, capsys):
    assert main(["health", str(metrics.parent)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(": HEALTHY"), out
    for rule in RULES:
        state = "no data" if rule.name == "vllm_out_of_step" else "ok"  # the miniatures train without vLLM
        assert f"  {rule.name} " in out and f"{rule.name:16}  {state:9}  " in out, out


@pytest.fixture
def run(tmp_path) -> Path:
    """A copy of the recorded math-tiny run to break."""
    copy = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "run" / "healthy" / "math-tiny", copy)
    return copy


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def write(run: Path, lines: list[dict]) -> None:
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_a_fired_rule_exits_1_with_its_step_and_line(run, capsys):
    write(run, [{**r, "frac_reward_zero_std": 1.0} if r["step"] >= 8 else r for r in rows(run)])
    assert main(["health", str(run)]) == 1
    out = capsys.readouterr().out
    assert "no_signal         FIRED      at step 12: frac_reward_zero_std was 1.00" in out
    assert "\nhealth: no_signal at step 12: " in out and out.rstrip().endswith(": UNHEALTHY")
    assert main(["health", str(run), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "UNHEALTHY" and report["rules"][0] | {"detail": None} == {
        "rule": "no_signal", "state": "FIRED", "step": 12, "detail": None}


def test_too_few_steps_to_judge_is_unchecked_not_healthy(run, capsys):
    write(run, rows(run)[:2])
    assert main(["health", str(run)]) == 3
    captured = capsys.readouterr()
    assert captured.out.rstrip().endswith(": UNCHECKED")
    assert captured.err.strip() == (f"tinyzero-trl health: {run}: no rule has the logged steps it needs yet: reported "
                                    "only, not healthy")


@pytest.mark.parametrize("damage, message", [
    ("cut", "metrics.jsonl:20: "),  # a line cut mid-write: file and line named
    ("gone", "metrics.jsonl: no such file"),
    ("no-dir", "no such directory (give the run's training.output_dir)"),
])
def test_a_run_that_cannot_be_read_exits_2_with_one_line(run, capsys, damage, message):
    path = run / "metrics.jsonl"
    if damage == "cut":
        path.write_text(path.read_text()[:-30])
    elif damage == "gone":
        path.unlink()
    target = run / "nope" if damage == "no-dir" else run
    assert main(["health", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinyzero-trl health: ") and message in err[0], err


def test_health_loads_no_ml_stack():
    code = ("import sys\nfrom tinyzero_trl.cli import main\ncode = main([sys.argv[1]] and ['health', sys.argv[1]])\n"
            "print('EXIT=' + str(code))\nprint('LOADED=' + str(sorted(m for m in ('torch', 'transformers', "
            "'datasets', 'trl', 'hydra', 'accelerate') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code, str(HEALTHY[0].parent)], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.splitlines()[-2:] == ["EXIT=0", "LOADED=[]"], proc.stdout + proc.stderr
