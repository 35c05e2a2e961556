"""verification.sanity: what makes a run's log unusable, and the line that says why."""

from __future__ import annotations

import math

import pytest

from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.verification.sanity import check_metrics


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


def test_a_metric_neither_judged_nor_health_may_be_anything(tmp_path):
    check_metrics([{"step": 1, "completions/mean_length": math.nan}], set(), tmp_path)  # no error
