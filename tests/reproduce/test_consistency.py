"""A folder's expected.json checked against its own config before anything runs (reproduce, --dry-run, --rehearse)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from tinyzero_trl.config.compose import compose
from tinyzero_trl.errors import UserError
from tinyzero_trl.reproduce.consistency import TRL_METRICS, check_folder
from tinyzero_trl.reproduce.folders import Reproduction, list_reproductions, reproductions_root


def resolved(repro: Reproduction) -> dict:
    return compose(repro.hydra_overrides(repro.folder / "_run", []))


@pytest.mark.parametrize("name", list_reproductions())
def test_every_folder_judges_only_what_its_run_produces(name):
    repro = Reproduction.load(name)
    check_folder(repro, resolved(repro))


def with_check(tmp_path, name: str, check: dict, **changes) -> Reproduction:
    folder = tmp_path / name
    shutil.copytree(reproductions_root() / name, folder)
    expected = json.loads((folder / "expected.json").read_text())
    expected["checks"].append({"source": "a check written for this test", **check})
    (folder / "expected.json").write_text(json.dumps(expected))
    return dataclasses.replace(Reproduction.load(name), folder=folder, **changes)


@pytest.mark.parametrize("check,says", [
    ({"metric": "rewards/count_accuracy/mean", "rule": "report"},
     "metric 'rewards/count_accuracy/mean' is never logged: recipe +math=grpo-deepseek-distill-1.5b-openrs trains "
     "with rewards ['open_rs_format', 'cosine_accuracy', 'math_accuracy']"),
    ({"metric": "completion/mean_length", "rule": "report"},
     "metric 'completion/mean_length' is never logged: it is not one trl 1.16's GRPOTrainer logs"),
    ({"summary": "pass_at_k", "rule": "report"}, "summary figure 'pass_at_k' is never written"),
    ({"metric": "rewards/open_rs_format/mean", "rule": "band", "points": [{"step": 150, "low": 0, "high": 1}]},
     "reference step 150 is past step 100, where the run stops"),
])
def test_a_check_that_could_never_be_judged_is_named(tmp_path, check, says):
    repro = with_check(tmp_path, "math-1.5b", check)
    with pytest.raises(UserError, match="expected.json checks\\[5\\]: ") as err:
        check_folder(repro, resolved(repro))
    assert says in str(err.value)


def test_a_metric_our_trainer_logs_can_be_checked(tmp_path):
    """health/identical_groups is logged by our reward wrapper (train.health), not by trl: a check of it is
    judged, not refused as never logged."""
    repro = with_check(tmp_path, "math-1.5b", {"metric": "health/identical_groups", "rule": "report"})
    check_folder(repro, resolved(repro))


def test_an_evaluation_of_another_task_or_an_unknown_scorer_is_named(tmp_path):
    repro = Reproduction.load("math-1.5b")
    other = dataclasses.replace(repro, evaluate={**repro.evaluate, "task": "countdown"})
    with pytest.raises(UserError, match="evaluate.task='countdown', but the recipe trains data.task='math'"):
        check_folder(other, resolved(repro))
    unknown = dataclasses.replace(repro, evaluate={**repro.evaluate, "scorer": "lighteval"})
    with pytest.raises(UserError, match="evaluate.scorer='lighteval' is not a registered reward"):
        check_folder(unknown, resolved(repro))


def test_a_summary_check_needs_an_evaluation(tmp_path):
    repro = dataclasses.replace(Reproduction.load("countdown-3b"), evaluate=None)
    with pytest.raises(UserError, match="'base_accuracy' needs an evaluate: block"):
        check_folder(repro, resolved(repro))


def test_the_trl_metric_list_is_the_installed_trls():
    """Every name in TRL_METRICS except Trainer's own is a key trl's GRPOTrainer writes (read from its source)."""
    import re
    from pathlib import Path

    import trl

    source = (Path(trl.__file__).parent / "trainer" / "grpo_trainer.py").read_text()
    logged = set(re.findall(r'_metrics\[mode\]\["([^"]+)"\]', source))
    assert TRL_METRICS - {"loss", "grad_norm", "learning_rate", "epoch"} == logged


def test_a_dry_run_refuses_a_folder_whose_check_could_never_be_judged(tmp_path, monkeypatch, capsys):
    from tinyzero_trl import cli

    with_check(tmp_path, "countdown-3b", {"metric": "rewards/mini_r1_equation/mean", "rule": "report"})
    monkeypatch.setenv("TINYZERO_REPRODUCTIONS", str(tmp_path))
    assert cli.main(["reproduce", "countdown-3b", "--dry-run"]) == 2
    assert "metric 'rewards/mini_r1_equation/mean' is never logged" in capsys.readouterr().err


@pytest.mark.parametrize("change,says", [
    ({"max_new_token": 128}, "evaluate.max_new_token is not an evaluate setting; did you mean 'max_new_tokens'?"),
    ({"revision": "main"}, "evaluate.revision is not an evaluate setting"),  # the protocol loads the recipe's model
    ({"batch_size": "100"}, "evaluate.batch_size='100': expected int"),
    ({"backend": "hff"}, "evaluate.backend='hff': expected one of 'auto', 'vllm', 'hf'"),
    ({"batch_size": 0}, "evaluate: invalid evaluation settings: batch_size=0 (need at least 1)"),
    ({"limit": -3}, "evaluate: invalid evaluation settings: limit=-3 (need at least 1)"),
    ({"top_p": 0}, "evaluate: invalid sampling settings: top_p=0 (need 0 < top_p <= 1)"),
])
def test_an_evaluate_block_evaluate_would_refuse_is_named(change, says):
    """A folder's evaluate: block is checked with the folder, not when the base evaluation starts (there a typo
    was a TypeError, after the run directory was claimed)."""
    repro = Reproduction.load("math-tiny")
    bad = dataclasses.replace(repro, evaluate={**repro.evaluate, **change})
    with pytest.raises(UserError, match="config.yaml: evaluate") as err:
        check_folder(bad, resolved(repro))
    assert says in str(err.value)


def test_a_dry_run_refuses_a_folder_whose_evaluate_block_has_a_typo(tmp_path, monkeypatch, capsys):
    from tinyzero_trl import cli

    folder = tmp_path / "math-tiny"
    shutil.copytree(reproductions_root() / "math-tiny", folder)
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("  max_new_tokens:", "  max_new_token:"))
    monkeypatch.setenv("TINYZERO_REPRODUCTIONS", str(tmp_path))
    assert cli.main(["reproduce", "math-tiny", "--dry-run", "--output-dir", str(tmp_path / "run")]) == 2
    assert f"{config}: evaluate.max_new_token is not an evaluate setting" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
