"""lighteval's ``extractive_match`` on MATH-500, the scorer behind open-r1's and Open-RS's published numbers.

Source: knoveleng/open-rs ``src/open_r1/evaluate.py`` @2889c47 (``latex_gold_metric``, the metric of its
``math_500`` task): the gold (MATH-500's full ``solution``) is extracted with ``LatexExtractionConfig()``; the
prediction with ``ExprExtractionConfig()`` and ``LatexExtractionConfig(boxed_match_priority=0)`` (a plain
expression counts too, not only LaTeX), falling back to the first match; ``precision=5``; the best of the
extracted predictions counts (``aggregation_function=max``). Where lighteval's own code decides (extraction
mode), its default of the versions we could read is used: any match. The comparison is math-verify's
``verify(gold, prediction, float_rounding=5)``, run in the time-limited ``MathVerifyPool`` workers: an item
over the limit scores 0.0, where lighteval would have timed it out too.
"""

from __future__ import annotations

import functools
import logging

from tinyzero_trl.rewards.format import completion_texts
from tinyzero_trl.rewards.math import DEFAULT_TIME_LIMIT, score_against_gold

PRECISION = 5


@functools.cache  # built in the worker on first use
def _configs():
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return [LatexExtractionConfig()], [ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)]


def score_lighteval(completion: str, gold: str) -> float | None:
    """extractive_match of one item in THIS process with no time limit (a pool worker runs it): 1.0 / 0.0, None
    for a gold nothing can be extracted from."""
    from math_verify import parse, verify

    gold_config, pred_config = _configs()
    gold_parsed = parse(gold, extraction_config=gold_config, fallback_mode="first_match",
                        extraction_mode="first_match", parsing_timeout=None)
    if not gold_parsed:
        return None
    pred = parse(completion, extraction_config=pred_config, fallback_mode="first_match", extraction_mode="any_match",
                 parsing_timeout=None)
    return 1.0 if verify(gold_parsed, pred, float_rounding=PRECISION, timeout_seconds=None) else 0.0


def lighteval_math_reward(completions, solution=None, **kwargs) -> list[float | None]:
    """1.0 when lighteval's MATH-500 extractive_match judges the completion right against ``solution``, else 0.0.

    ``None`` for a missing or unextractable gold (TRL and evaluate skip it). Never raises; each item has a hard
    time limit.
    """
    return score_against_gold(completion_texts(completions), solution, DEFAULT_TIME_LIMIT, scorer=score_lighteval,
                              numbers=False)
