"""The math-tiny recipe and reproduction: it composes and validates, plans offline, is the original README's math
recipe (grpo-deepseek-distill-1.5b-inst) but for the model and the data source, and keeps math-verify's hard time
limit on inside a training step."""

import time

import pytest

from tinyzero_trl.config import validate
from tinyzero_trl.config.compose import compose
from tinyzero_trl.reproduce.folders import Reproduction
from tinyzero_trl.rewards import REWARDS
from tinyzero_trl.rewards.math import DEFAULT_TIME_LIMIT
from tinyzero_trl.tiny.math_base import PACKAGED_DIR

HOSTILE = "</think>\nThe answer is $\\boxed{9^{9^{9^{9}}}}$."  # one big-int pow in C: only a kill stops it


def recipe(*extra):
    return compose(["+math=grpo-tiny-base", f"model.name_or_path={PACKAGED_DIR}", *extra])


def test_recipe_validates_and_differs_from_the_math_recipe_only_in_model_and_data_source():
    tiny = recipe()
    validate(tiny)
    big = compose(["+math=grpo-deepseek-distill-1.5b-inst"])
    assert tiny["rewards"] == big["rewards"] == {"math_accuracy": 1.0, "think_close_format": 1.0}
    same = ("task", "system_prompt", "instruction")
    assert {k: tiny["data"][k] for k in same} == {k: big["data"][k] for k in same}
    assert tiny["data"]["source"] == "generate" and big["data"]["source"] == "hub"


def test_reproduction_uses_the_packaged_math_base(capsys):
    from tinyzero_trl.reproduce.pipeline import reproduce

    assert Reproduction.load("math-tiny").tiny_base == "math"
    assert reproduce("math-tiny", dry_run=True) == 0
    out = capsys.readouterr().out
    assert f"model        : {PACKAGED_DIR} " in out and "+math=grpo-tiny-base" in out and "host memory" in out


@pytest.mark.timeout(120)
def test_a_hostile_completion_in_a_training_step_costs_at_most_its_time_limit(tmp_path, monkeypatch):
    """One GRPO step of the real recipe, with one completion of the batch swapped for a hostile one."""
    from tinyzero_trl.train.trainer import build_trainer

    real = REWARDS["math_accuracy"]
    calls = []

    def math_accuracy(completions, **kwargs):
        completions = [[{"role": "assistant", "content": HOSTILE}], *completions[1:]]
        start = time.perf_counter()
        scores = real(completions, **kwargs)
        calls.append((time.perf_counter() - start, scores))
        return scores

    monkeypatch.setitem(REWARDS, "math_accuracy", math_accuracy)
    cfg = validate(recipe(f"training.output_dir={tmp_path / 'run'}", "training.max_steps=1",
                          "training.per_device_train_batch_size=16", "data.num_train=16", "training.save_strategy=no"))
    from accelerate import PartialState

    trainer = build_trainer(cfg, PartialState(cpu=True))
    trainer.train()
    assert trainer.state.global_step == 1 and len(calls) == 1, calls
    took, scores = calls[0]
    assert scores[0] == 0.0 and len(scores) == 16, scores
    # The hostile item holds one worker for the limit while the others score the rest of the batch.
    assert took < DEFAULT_TIME_LIMIT + 5.0, took
