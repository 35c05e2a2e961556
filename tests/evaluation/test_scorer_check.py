"""A scorer that cannot judge a task's held-out rows is refused before anything is generated: rewards never raise
on a missing column, they score nothing, so the evaluation would otherwise report 0 after all its generation."""

from __future__ import annotations

import pytest

from tinyzero_trl.errors import UserError
from tinyzero_trl.evaluation.evaluate import check_scorer


@pytest.mark.parametrize("scorer,columns,task", [
    ("countdown_equation", ["prompt", "nums", "target"], "countdown"),
    ("math_accuracy", ["prompt", "problem", "solution"], "math"),
    ("r1v_count_eval", ["prompt", "image", "problem", "solution"], "multimodal"),
])
def test_a_scorer_that_reads_the_rows_gold_is_accepted(scorer, columns, task):
    check_scorer(scorer, columns, task)


def test_a_scorer_whose_gold_the_rows_lack_is_refused():
    with pytest.raises(UserError, match=r"scorer 'math_accuracy' reads \['solution'\], which the countdown task's "
                                        r"held-out rows lack \(they have \['nums', 'target'\]\); countdown's own: "
                                        "countdown_equation"):
        check_scorer("math_accuracy", ["prompt", "nums", "target"], "countdown")


def test_a_format_reward_judges_no_answer():
    with pytest.raises(UserError, match="scorer 'think_format' judges no answer"):
        check_scorer("think_format", ["prompt", "solution"], "math")


def test_evaluate_refuses_before_loading_weights(tiny_model, monkeypatch):
    """The check comes before generation: a model directory without weights is never opened."""
    from tinyzero_trl.evaluation import evaluate as module

    monkeypatch.setattr(module, "generate", lambda *a, **k: pytest.fail("generated before checking the scorer"))
    with pytest.raises(UserError, match="scorer 'r1v_count_eval' reads"):
        module.evaluate("countdown", tiny_model, data={"task": "countdown", "source": "generate", "num_test": 4,
                                                       "template": "tiny"}, scorer="r1v_count_eval")
