"""A launch checks its model once (issue 25): the path when the plan is made (a dry run's too), a hub id's lookup
in the launch's preflight, and nothing again before the base evaluation. One ``reproduce`` used to check it three
times: the plan, the preflight and the evaluation protocol."""

from __future__ import annotations

import pytest

from tinyzero_trl.evaluation.protocol import Protocol
from tinyzero_trl.launch import run as launch_run
from tinyzero_trl.launch.plan import prepare
from tinyzero_trl.model import loading


@pytest.fixture
def checks(monkeypatch):
    """Counts of the two stages of the model check; a hub id 'found' without the network."""
    seen = {"path": [], "hub": []}
    real_path = loading.check_model_path

    def path(name, **kwargs):
        seen["path"].append(name)
        return real_path(name, **kwargs)

    monkeypatch.setattr(loading, "check_model_path", path)
    monkeypatch.setattr(loading, "check_hub_model", lambda name, **kwargs: seen["hub"].append(name))
    return seen


def _launch(model: str, out, monkeypatch) -> None:
    """``prepare`` then ``launch.run``, the training launch itself a stand-in that ends at once."""
    monkeypatch.setattr(launch_run.supervise, "run", lambda cmd, env, debug=False, **_: (1, None))
    prepared = prepare(["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", f"model.name_or_path={model}",
                        f"training.output_dir={out}"], cpu=True)
    assert launch_run.run(prepared).code != 0  # the stand-in launch "failed": every check before it has run


def test_a_hub_model_is_looked_up_once_and_its_path_checked_once(checks, tmp_path, monkeypatch):
    _launch("example-org/some-model", tmp_path / "run", monkeypatch)
    assert checks == {"path": ["example-org/some-model"], "hub": ["example-org/some-model"]}


def test_a_local_model_is_checked_once_and_never_looked_up(checks, tiny_model, tmp_path, monkeypatch):
    _launch(tiny_model, tmp_path / "run", monkeypatch)
    assert checks == {"path": [tiny_model], "hub": []}


def test_a_dry_run_checks_the_path_and_looks_nothing_up(checks, tmp_path):
    prepare(["+countdown=grpo-qwen-2.5-3b-base", "model.name_or_path=example-org/some-model",
             f"training.output_dir={tmp_path / 'run'}"], cpu=True)
    assert checks == {"path": ["example-org/some-model"], "hub": []}
    assert not (tmp_path / "run").exists()  # nor is the run directory made


def test_the_base_evaluation_does_not_check_the_model_again(checks, tiny_model, tmp_path):
    """The protocol's evaluation is prepared after the launch's preflight checked the model."""
    resolved = {"model": {"name_or_path": tiny_model}, "rewards": {"tinyzero_countdown": 1.0},
                "data": {"task": "countdown", "source": "generate", "num_train": 4, "num_test": 3}}
    held = Protocol("countdown-tiny", {"task": "countdown", "max_new_tokens": 4}, resolved).held_out()
    assert len(held.prompts) == 3
    assert checks == {"path": [], "hub": []}


def test_evaluating_a_saved_model_still_checks_it(checks, tmp_path):
    """``tinyzero-trl evaluate`` has no launch before it: it checks the model itself."""
    from tinyzero_trl.errors import ConfigError
    from tinyzero_trl.evaluation.evaluate import evaluate

    with pytest.raises(ConfigError, match="--model_path=.*no such model directory"):
        evaluate("countdown", str(tmp_path / "missing"))
    assert checks["path"] == [str(tmp_path / "missing")]
