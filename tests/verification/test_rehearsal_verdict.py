"""verify on a rehearsal: its first line says so, every check is evaluated, and it never says PASS, whatever its
numbers: a rehearsal can never be mistaken for a reproduction."""

from __future__ import annotations

import json

import pytest
import yaml

from tinyzero_trl import cli
from tinyzero_trl.config.compose import compose
from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.reproduce.folders import Reproduction
from tinyzero_trl.reproduce.rehearsal_plan import plan_rehearsal
from tinyzero_trl.verification.rehearsal import rehearsal_step

NAME = "countdown-3b-instruct"  # bands at steps 100, 200 and 450 of a 450-step run: rehearsal steps 2, 2 and 4


def write_run(out, tmp_path, *, equation=(0.3, 0.6), marked=True) -> None:
    """A finished rehearsal of NAME whose every judged number lies inside its band."""
    repro = Reproduction.load(NAME)
    plan = plan_rehearsal(repro, out, assets=tmp_path / "assets", vllm=False)
    out.mkdir(parents=True)
    resolved = compose(repro.hydra_overrides(out, plan.overrides))
    (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    (out / "run.json").write_text(json.dumps({"status": "completed", "global_step": 4}))
    rows = [{"step": step, "loss": 0.0, "grad_norm": 0.1, "rewards/mini_r1_equation/mean": value,
             "rewards/mini_r1_format/mean": 0.97, "rewards/countdown_equation/mean": value,
             "completions/mean_length": 30.0} for step, value in zip((2, 4), equation)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"base_accuracy": 0.2, "final_accuracy": 0.5, "wall_seconds": 60.0}
    if marked:
        summary["rehearsal"] = plan.record()
        (out / "rehearsal.json").write_text(json.dumps(plan.record()))
    (out / "summary.json").write_text(json.dumps(summary))


def test_a_rehearsal_inside_every_band_is_unchecked_never_pass(tmp_path, capsys):
    out = tmp_path / "run"
    write_run(out, tmp_path)
    code = cli.main(["verify", NAME, "--run-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 3, captured.out + captured.err
    assert captured.out.splitlines()[0].startswith(f"REHEARSAL of {NAME}, not a reproduction")
    assert "PASS" not in captured.out + captured.err + (out / "verify.md").read_text()
    assert captured.out.count("IN-BAND") == 4  # three equation points and the format point, all judged
    assert "100 (at 2)" in captured.out and "450 (at 4)" in captured.out
    assert (out / "verify.md").read_text().startswith("**REHEARSAL of")


def test_a_rehearsal_outside_a_band_fails(tmp_path, capsys):
    out = tmp_path / "run"
    write_run(out, tmp_path, equation=(0.0, 0.0))
    assert cli.main(["verify", NAME, "--run-dir", str(out)]) == 1
    assert "PASS" not in capsys.readouterr().out


def test_a_rehearsal_stripped_of_its_marks_cannot_be_judged(tmp_path, capsys):
    """Without rehearsal.json it is judged as a reproduction, and its config is not the folder's: exit 2."""
    out = tmp_path / "run"
    write_run(out, tmp_path, marked=False)
    assert cli.main(["verify", NAME, "--run-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not this reproduction's pinned settings" in err and "model.dtype: 'float32' -> 'bfloat16'" in err


def test_a_tampered_rehearsal_config_cannot_be_judged(tmp_path, capsys):
    out = tmp_path / "run"
    write_run(out, tmp_path)
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["training"]["learning_rate"] = 1.0e-4
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["verify", NAME, "--run-dir", str(out)]) == 2
    assert "training.learning_rate: 0.0001 -> 5e-07" in capsys.readouterr().err


def test_reference_steps_map_onto_logged_rehearsal_steps():
    record = {"real_last_step": 450, "last_step": 4}
    assert [rehearsal_step(s, record, [2, 4], "w") for s in (1, 100, 200, 225, 226, 450)] == [2, 2, 2, 2, 4, 4]
    with pytest.raises(UnusableRun, match="reference step 500 is past step 450, where the real run stops"):
        rehearsal_step(500, record, [2, 4], "w")


def test_a_rehearsal_record_without_its_model_dir_is_one_line_exit_2(tmp_path, capsys):
    """rehearsal.json is rebuilt into the plan from its model_dir; an older or edited one without it is refused in
    one line (a KeyError traceback, exit 1, before)."""
    out = tmp_path / "run"
    write_run(out, tmp_path)
    record = json.loads((out / "rehearsal.json").read_text())
    del record["model_dir"]
    (out / "rehearsal.json").write_text(json.dumps(record))
    code = cli.main(["verify", NAME, "--run-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "rehearsal.json: no model_dir" in err and "Traceback" not in err
