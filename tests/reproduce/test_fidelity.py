"""`tinyzero-trl fidelity`: every GPU folder's settings, protocol and data draw beside its source's, each row the same,
set to match, or an explained deviation; the READMEs hold the current tables, so a trl upgrade that moves a default
(or adds a field) fails here until the tables are regenerated and every new difference is fixed or explained."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from tinyzero_trl.config import schema
from tinyzero_trl.errors import UserError
from tinyzero_trl.reproduce import fidelity
from tinyzero_trl.reproduce.fidelity import (
    DEVIATION,
    SAME,
    SET,
    UNEXPLAINED,
    FidelityError,
    build,
    source_folders,
)
from tinyzero_trl.reproduce.fidelity_readme import readme_copy, section, sync
from tinyzero_trl.reproduce.folders import reproductions_root

GPU_FOLDERS = ["clevr-2b", "countdown-0.5b", "countdown-1.5b", "countdown-3b", "countdown-3b-instruct", "math-1.5b"]


@pytest.fixture(scope="module")
def tables():
    """The six tables, built once for the module (each composes and checks its folder's run as reproduce does)."""
    return {name: build(name) for name in GPU_FOLDERS}


def test_every_gpu_folder_has_a_source_table(tables):
    assert source_folders() == GPU_FOLDERS


@pytest.mark.parametrize("name", GPU_FOLDERS)
def test_each_table_has_no_problem_and_its_readme_holds_the_current_one(tables, name):
    """Regenerated against the installed trl: a moved default changes a row (or its status) and fails here."""
    table = tables[name]
    assert table.problems == [], "\n".join(table.problems)
    rows = [r for rs in table.rows.values() for r in rs]
    assert {r.status for r in rows} <= {SAME, SET, DEVIATION, fidelity.REPORTED}
    assert readme_copy(reproductions_root() / name / "README.md", name) == section(table), (
        f"reproductions/{name}/README.md is stale: run `tinyzero-trl fidelity {name} --write`")


def test_the_fixed_rows_are_fixed(tables):
    """The differences the research found and a setting could fix, each now the source's value."""
    def status(name, key):
        return next(r for r in tables[name].rows[key.split(".")[0]] if r.key == key)

    for name in GPU_FOLDERS:  # no source multiplies its KL term by the importance ratio
        assert status(name, "training.use_bias_correction_kl").ours is False
    for name in ("countdown-0.5b", "countdown-3b-instruct"):
        assert status(name, "training.vllm_importance_sampling_correction").ours is False
    assert status("math-1.5b", "training.loss_type").ours == "bnpo"
    assert {k: status("countdown-0.5b", f"training.{k}").ours for k in ("weight_decay", "entropy_coef", "loss_type")} \
        == {"weight_decay": 0.01, "entropy_coef": 0.001, "loss_type": "bnpo"}
    assert status("clevr-2b", "training.max_completion_length").ours == 256
    assert status("clevr-2b", "run.accelerate").ours == "ddp"
    assert status("countdown-3b", "evaluate.strip").ours is True
    assert status("countdown-3b", "data.max_prompt_tokens").ours == 256
    assert status("countdown-3b-instruct", "data.shuffle_seed").ours == 42


def _flipped(**fields):
    """``schema.grpo_config_class`` as if trl shipped other defaults (or more fields): a GRPOConfig subclass."""
    from trl import GRPOConfig

    annotations = {name: type(value) for name, value in fields.items()}
    cls = dataclasses.make_dataclass("NextGRPOConfig", [(n, annotations[n], dataclasses.field(default=v))
                                                        for n, v in fields.items()], bases=(GRPOConfig,))

    def grpo_config_class(processes=None):
        if processes is None:
            return cls
        return type("Planned", (cls,), {"world_size": property(lambda self: processes)})

    return grpo_config_class


def test_a_trl_default_that_moves_fails_the_table_and_the_readme(monkeypatch, tables):
    """An upgrade flips a default no recipe sets (an unexplained row) and one a recipe sets (a stale README)."""
    monkeypatch.setattr(schema, "grpo_config_class", _flipped(mask_truncated_completions=True,
                                                              use_bias_correction_kl=False))
    table = build("countdown-3b")
    row = next(r for r in table.rows["training"] if r.key == "training.mask_truncated_completions")
    assert (row.ours, row.default, row.source, row.status) == (True, True, False, UNEXPLAINED)
    assert any("training.mask_truncated_completions" in p for p in table.problems)
    kl = next(r for r in table.rows["training"] if r.key == "training.use_bias_correction_kl")
    assert kl.status == SAME  # was "set to match": the README's copy no longer matches
    assert section(table) != section(tables["countdown-3b"])


def test_a_new_trl_field_needs_a_source_value(monkeypatch):
    monkeypatch.setattr(schema, "grpo_config_class", _flipped(brand_new_knob=0.5))
    problems = build("countdown-0.5b").problems
    assert problems == ["training.brand_new_knob: no source value: say in source.yaml what the source ran"]


@pytest.fixture
def copied_root(tmp_path, monkeypatch):
    """A copy of the reproductions folder to edit (the env var is what reproductions_root reads)."""
    root = tmp_path / "reproductions"
    shutil.copytree(reproductions_root(), root)
    monkeypatch.setenv("TINYZERO_REPRODUCTIONS", str(root))
    return root


def test_deviations_are_checked_both_ways(copied_root):
    path = copied_root / "countdown-0.5b" / "expected.json"
    expected = json.loads(path.read_text())
    expected["deviations"] = [d for d in expected["deviations"] if d["field"] != "training.seed"] + [
        {"field": "training.learning_rate", "what": "x", "reason": "y"},  # stale: the row matches
        {"field": "data.no_such_row", "what": "x", "reason": "y"},  # names nothing
        "a deviation in words only",  # not structured
        {"field": "claim.other", "what": "x", "reason": "y"},  # outside the tables: listed under "other"
    ]
    path.write_text(json.dumps(expected))
    table = build("countdown-0.5b")
    problems = "\n".join(table.problems)
    assert "training.seed: ours 42" in problems and "fix it or list it under deviations" in problems
    assert "training.learning_rate: expected.json lists it as a deviation, but ours matches" in problems
    assert "'data.no_such_row' names no row" in problems
    assert "deviations[" in problems and "a deviation in words only" in problems
    assert len(table.problems) == 4 and [d["field"] for d in table.other] == ["claim.other"]


def test_a_source_value_must_say_where_it_was_read(copied_root):
    path = copied_root / "countdown-3b" / "source.yaml"
    path.write_text(path.read_text().replace('  learning_rate: {value: 1.0e-6, cite: "sail-sg/oat-zero@2c1661ba:'
                                             'training/run_grpo.sh:1 (--learning_rate 0.000001)"}',
                                             "  learning_rate: {value: 1.0e-6}"))
    with pytest.raises(FidelityError, match="learning_rate: no `cite`"):
        build("countdown-3b")


def test_the_command_checks_and_writes_the_readme(copied_root, tables):
    """`fidelity NAME --check` fails on a README whose table was edited by hand; `--write` puts the current one."""
    readme = copied_root / "countdown-1.5b" / "README.md"
    readme.write_text(readme.read_text().replace("| `learning_rate` | `1e-06` |", "| `learning_rate` | `2e-06` |"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "tinyzero_trl.cli", "fidelity", "countdown-1.5b", "--check"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 1 and "does not hold the current table" in proc.stderr, proc.stderr[-2000:]
    assert sync(tables["countdown-1.5b"], readme, write=True)
    assert readme_copy(readme, "countdown-1.5b") == section(tables["countdown-1.5b"])
    assert "| `learning_rate` | `1e-06` |" in readme.read_text()


def test_a_folder_without_expected_json_is_one_line(copied_root):
    (copied_root / "countdown-0.5b" / "expected.json").unlink()
    with pytest.raises(UserError, match=r"countdown-0.5b/expected.json: unreadable reference"):
        build("countdown-0.5b")
