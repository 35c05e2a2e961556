"""verification.sanity: what makes a run's log unusable, and the line that says why."""

from __future__ import annotations

import math

import pytest

from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.verification.sanity import check_metrics, check_recipe, check_summary


@pytest.mark.parametrize("key, value, kind", [
    ("rewards/countdown_accuracy/mean", math.nan, "a judged metric"),
    ("loss", math.inf, "the training's health"),
    ("grad_norm", "nan", "the training's health"),
])
def test_a_non_finite_value_names_the_step_the_metric_and_what_it_is(key, value, kind, tmp_path):
    rows = [{"step": 1, key: 0.5}, {"step": 2, key: value}]
    with pytest.raises(UnusableRun) as err:
        check_metrics(rows, {"rewards/countdown_accuracy/mean"}, tmp_path)
    assert f"step 2: {key} = {value!r}; {kind} must be a finite number" in str(err.value)


def test_the_gradient_norm_of_a_skipped_step_is_no_divergence(tmp_path):
    """DeepSpeed skips a step whose gradient is not finite and logs its grad_norm as inf; the trainer logs beside it
    whether the weights are still numbers. Only when they are not (or nothing says) is the run refused."""
    check_metrics([{"step": 2, "grad_norm": math.inf, "health/nonfinite_weights": 0.0}], set(), tmp_path)  # no error
    diverged, unknown = {"health/nonfinite_weights": 1.0}, {}  # the weights went NaN; an older run says nothing
    for row in ({"step": 2, "grad_norm": math.nan, **diverged}, {"step": 2, "grad_norm": math.inf, **unknown}):
        with pytest.raises(UnusableRun, match="step 2: grad_norm = (nan|inf); the training's health"):
            check_metrics([row], set(), tmp_path)
    with pytest.raises(UnusableRun, match="step 2: loss = inf"):  # a skipped step excuses grad_norm alone
        check_metrics([{"step": 2, "loss": math.inf, "health/nonfinite_weights": 0.0}], set(), tmp_path)


def test_a_metric_neither_judged_nor_health_may_be_anything(tmp_path):
    check_metrics([{"step": 1, "completions/mean_length": math.nan}], set(), tmp_path)  # no error


def test_a_non_finite_value_says_the_run_diverged_or_its_log_is_corrupt(tmp_path):
    with pytest.raises(UnusableRun, match=r"\(the run diverged or its log is corrupt\)$"):
        check_metrics([{"step": 3, "loss": math.nan}], set(), tmp_path)


@pytest.mark.parametrize("value", [0.0, 1.0, -1e-6, 1.0 + 1e-6, 0.5])
def test_a_reward_mean_at_its_bounds_give_or_take_float_noise_passes(value, tmp_path):
    check_metrics([{"step": 1, "rewards/countdown_format/mean": value}], set(), tmp_path)


@pytest.mark.parametrize("value", [-1e-5, 1.00001, 2.0])
def test_a_reward_mean_outside_its_bounds_is_refused_with_the_bounds(value, tmp_path):
    with pytest.raises(UnusableRun) as err:
        check_metrics([{"step": 4, "rewards/countdown_format/mean": value}], set(), tmp_path)
    assert str(err.value).endswith(f"step 4: rewards/countdown_format/mean = {value!r}, outside [0, 1], "
                                   "the only values countdown_format can give")


def test_only_a_reward_mean_is_held_to_the_reward_bounds(tmp_path):
    # A reward's other figures (its std, or a plugin's own per-reward statistic) may lie anywhere.
    check_metrics([{"step": 1, "rewards/countdown_format/std": 3.0, "rewards/countdown_format/last": 7.0,
                    "eval_rewards/countdown_format/mean": 9.0}], set(), tmp_path)


def test_summary_figures_must_be_numbers_and_accuracies_within_0_and_1(tmp_path):
    check_summary({"eval_accuracy": 0.0, "train_accuracy": 1.0, "reward": 7.0}, {"reward"}, tmp_path)
    with pytest.raises(UnusableRun, match=r"summary\.json: eval_accuracy = 1\.5; an accuracy lies in \[0, 1\]"):
        check_summary({"eval_accuracy": 1.5}, set(), tmp_path)  # every accuracy, judged or not
    # a judged figure absent from the summary is skipped, and the ones after it are still checked
    with pytest.raises(UnusableRun, match=r"summary\.json: b_reward = nan is not a number"):
        check_summary({"b_reward": math.nan}, {"a_missing", "b_reward"}, tmp_path)


def _differing(n: int) -> tuple[dict, dict]:
    pinned = {"training": {f"k{i}": i for i in range(n)}}
    return {"training": {f"k{i}": i + 100 for i in range(n)}}, pinned


@pytest.mark.parametrize("n, more", [(6, ""), (7, "; and 1 more"), (9, "; and 3 more")])
def test_a_run_with_other_settings_names_the_first_six_differences(n, more, tmp_path):
    saved, pinned = _differing(n)
    with pytest.raises(UnusableRun) as err:
        check_recipe(saved, pinned, tmp_path)
    first_six = "; ".join(f"training.k{i}: {i + 100} -> {i}" for i in range(6))
    assert str(err.value).endswith(f"not this reproduction's pinned settings (run -> pinned: {first_six}{more})")
