"""Open-RS's two training rewards (knoveleng/open-rs, "format" and "cosine"), for the math-1.5b reproduction.

Source: ``src/open_r1/rewards.py`` at 2889c47 (``format_reward``, ``get_cosine_scaled_reward``), the
constants of ``src/open_r1/grpo.py`` (``GRPOScriptArguments``) and ``recipes/grpo.yaml`` (``reward_funcs:
[format, cosine]``, ``reward_weights: [1.0, 2.0]``; Experiment 3 adds ``--cosine_max_len 3584``).

- format: 1.0 when the completion holds ``"\\n</think>\\n"`` exactly once, else 0.0. Nothing else is checked
  (the ``<think>`` opening comes from the prompt; no ``<answer>`` is required).
- cosine: math-verify decides whether the completion is right, then its length in characters ``L`` sets
  ``r = lo + (hi - lo) * (1 + cos(pi * L / max_len)) / 2`` with ``(lo, hi) = (0.5, 1.0)`` when right and
  ``(-0.5, 0.0)`` when wrong: a right answer earns 1.0 at length 0 and 0.5 at ``max_len``; a wrong one 0.0 at
  length 0 and -0.5 at ``max_len`` (the script's defaults ``min_value_wrong=0.0, max_value_wrong=-0.5`` make
  longer wrong answers cost MORE, the opposite of the function's docstring). ``L / max_len`` is not clamped:
  past ``max_len`` the reward follows the cosine back up, with period ``2 * max_len`` characters. A gold that
  math-verify cannot parse scores 1.0 ("skip"), as in the source.
- correctness, as the source parses it: the gold (the dataset's full ``solution``) with
  ``LatexExtractionConfig()`` alone, first match; the completion with LaTeX extraction only, ``\\boxed{}``
  first (priority 0), no anchor-less guessing, and normalization ``nits=False, malformed_operators=False,
  basic_latex=True, equations=True, units=True`` and ``boxed=True``; then ``verify(answer, gold)`` in that
  order (math-verify's ``verify`` is not symmetric: an answer ``x > 2`` matches a gold ``(2, \\infty)`` only
  this way round).

Differences that are ours: the check runs in ``MathVerifyPool`` workers with a hard time limit (an item over
it is wrong, where the source's signal timeouts would have let a slow gold count as unparseable), on the
pinned math-verify 0.9.0 (Open-RS pinned 0.5.2), and a completion without text scores as an empty wrong one.
"""

from __future__ import annotations

import functools
import logging
import math

from tinyzero_trl.rewards.format import completion_texts
from tinyzero_trl.rewards.math import DEFAULT_TIME_LIMIT, MathVerifyPool, score_against_gold

THINK_END = "\n</think>\n"

# GRPOScriptArguments defaults in src/open_r1/grpo.py (the recipe sets none of them).
MIN_VALUE_WRONG = 0.0
MAX_VALUE_WRONG = -0.5
MIN_VALUE_CORRECT = 0.5
MAX_VALUE_CORRECT = 1.0
MAX_LEN = 1000  # characters; Experiment 2 (recipes/grpo.yaml as is)
EXP3_MAX_LEN = 3584  # README: "For Experiment 3, add the cosine_max_len parameter ... 3584"
UNPARSEABLE_GOLD = 1.0  # the source's "Skip unparseable examples"


def open_rs_format_reward(completions, **kwargs) -> list[float]:
    """Open-RS's format reward: 1.0 when ``"\\n</think>\\n"`` occurs exactly once in the completion, else 0.0."""
    return [1.0 if isinstance(t, str) and t.count(THINK_END) == 1 else 0.0 for t in completion_texts(completions)]


@functools.cache  # built in the worker on first use
def _configs():
    from math_verify import LatexExtractionConfig, LatexNormalizationConfig

    for name in ("math_verify", "latex2sympy2_extended"):  # "equations is deprecated", once per parse
        logging.getLogger(name).setLevel(logging.ERROR)
    # The source writes boxed=True; both math-verify 0.5.2's and 0.9.0's normalize_latex act only on "all" or
    # "last", so True means what "none" says (a \boxed{} match is still unwrapped: the parser forces "last").
    norm = LatexNormalizationConfig(nits=False, malformed_operators=False, basic_latex=True, equations=True,
                                    boxed="none", units=True)
    answer = [LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0,
                                    try_extract_without_anchor=False)]
    return [LatexExtractionConfig()], answer


def score_open_rs(completion: str, gold: str) -> float | None:
    """Open-RS's correctness of one completion, in THIS process with no time limit (what a pool worker runs).

    1.0 right, 0.0 wrong, ``None`` when the gold does not parse.
    """
    from math_verify import parse, verify

    gold_config, answer_config = _configs()
    gold_parsed = parse(gold, extraction_config=gold_config, extraction_mode="first_match", parsing_timeout=None)
    if not gold_parsed:
        return None
    answer = parse(completion, extraction_config=answer_config, extraction_mode="first_match", parsing_timeout=None)
    return 1.0 if verify(answer, gold_parsed, timeout_seconds=None) else 0.0


def cosine_scale(length: int, correct: bool, *, max_len: int = MAX_LEN, min_value_wrong: float = MIN_VALUE_WRONG,
                 max_value_wrong: float = MAX_VALUE_WRONG, min_value_correct: float = MIN_VALUE_CORRECT,
                 max_value_correct: float = MAX_VALUE_CORRECT) -> float:
    """The source's length scaling: ``lo + (hi - lo) * (1 + cos(pi * length / max_len)) / 2``.

    ``(lo, hi)`` is ``(min_value_correct, max_value_correct)`` when right and, swapped as in the source,
    ``(max_value_wrong, min_value_wrong)`` when wrong.
    """
    lo, hi = (min_value_correct, max_value_correct) if correct else (max_value_wrong, min_value_wrong)
    return float(lo + 0.5 * (hi - lo) * (1.0 + math.cos(length / max_len * math.pi)))


def _correctness(texts, solution, time_limit: float, pool: MathVerifyPool | None) -> list:
    """Per completion: 1.0 / 0.0 (right / wrong), ``None`` for an unparseable gold, ``"no-gold"`` for none."""
    return score_against_gold(texts, solution, time_limit, pool=pool, scorer=score_open_rs, no_gold="no-gold")


def make_cosine_accuracy_reward(max_len: int = MAX_LEN, *, min_value_wrong: float = MIN_VALUE_WRONG,
                                max_value_wrong: float = MAX_VALUE_WRONG, min_value_correct: float = MIN_VALUE_CORRECT,
                                max_value_correct: float = MAX_VALUE_CORRECT, time_limit: float = DEFAULT_TIME_LIMIT,
                                pool: MathVerifyPool | None = None):
    """Build Open-RS's cosine-scaled accuracy reward with the given constants (defaults: the source's)."""
    if not max_len > 0 or not time_limit > 0:
        raise ValueError(f"max_len and time_limit must be positive, got {max_len!r} and {time_limit!r}")
    values = {"max_len": max_len, "min_value_wrong": min_value_wrong, "max_value_wrong": max_value_wrong,
              "min_value_correct": min_value_correct, "max_value_correct": max_value_correct}

    def cosine_accuracy_reward(completions, solution=None, **kwargs) -> list[float | None]:
        """Open-RS's cosine reward: Open-RS's math-verify correctness, scaled by the completion's length in
        characters (right: 1.0 at length 0 down to 0.5 at ``max_len``; wrong: 0.0 down to -0.5).

        ``solution`` is the gold (a full solution with ``\\boxed{}``); one math-verify cannot parse gives 1.0,
        as in the source, and a missing one ``None`` (TRL skips it). Never raises; each item has a hard time
        limit, past which it counts as wrong.
        """
        texts = completion_texts(completions)
        out: list[float | None] = []
        for text, correct in zip(texts, _correctness(texts, solution, time_limit, pool), strict=True):
            if correct == "no-gold":
                out.append(None)
            elif correct is None:
                out.append(UNPARSEABLE_GOLD)
            else:
                out.append(cosine_scale(len(text) if isinstance(text, str) else 0, correct == 1.0, **values))
        return out

    return cosine_accuracy_reward


def make_open_rs_accuracy_reward(time_limit: float = DEFAULT_TIME_LIMIT, pool: MathVerifyPool | None = None):
    """Build the 0/1 correctness behind the cosine reward, for evaluation (``ACCURACY_OF``)."""
    if not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")

    def open_rs_accuracy_reward(completions, solution=None, **kwargs) -> list[float | None]:
        """1.0 when Open-RS's cosine reward would judge the completion right, else 0.0; ``None`` for a gold
        math-verify cannot parse, or none (an item that cannot be judged)."""
        texts = completion_texts(completions)
        return [None if c in (None, "no-gold") else c for c in _correctness(texts, solution, time_limit, pool)]

    return open_rs_accuracy_reward


cosine_accuracy_reward = make_cosine_accuracy_reward()
cosine_accuracy_exp3_reward = make_cosine_accuracy_reward(max_len=EXP3_MAX_LEN)
open_rs_accuracy_reward = make_open_rs_accuracy_reward()
COSINE_BOUNDS = (min(MIN_VALUE_WRONG, MAX_VALUE_WRONG, MIN_VALUE_CORRECT, MAX_VALUE_CORRECT, UNPARSEABLE_GOLD),
                 max(MIN_VALUE_WRONG, MAX_VALUE_WRONG, MIN_VALUE_CORRECT, MAX_VALUE_CORRECT, UNPARSEABLE_GOLD))
