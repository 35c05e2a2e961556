"""Rewards of the multimodal recipes: exact object counts (R1-V's CLEVR accuracy) and R1-V's think/answer format.

Both take TRL's completions (strings or message lists) plus dataset columns, return one float per completion
and never raise: a malformed completion or gold scores 0.0 (a gold that is not a count gives ``None``, which
TRL skips, as ``math_accuracy`` does). Only ``str`` methods are used, so scoring is linear in the text.
"""

from __future__ import annotations

from tinyzero_trl.rewards.format import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    completion_texts,
    last_answer,
)

_MAX_DIGITS = 12  # a count longer than this is not a count; also keeps int() far from its 4300-digit limit


def parse_count(text) -> int | None:
    """An integer written plainly (optional sign, digits, surrounding whitespace), else ``None``.

    ``"3"``, ``" 3 "``, ``"+3"`` and ``"03"`` are 3; ``"3.0"``, ``"three"``, ``"3 objects"`` are not counts, the
    same exactness R1-V's string match had on its ``<answer> N </answer>`` golds.
    """
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text
    if not isinstance(text, str):
        return None
    body = text.strip()
    digits = body[1:] if body.startswith(("+", "-")) else body
    if not digits or len(digits) > _MAX_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return int(body)


def gold_count(gold) -> int | None:
    """The gold count from an int, a bare number or R1-V's ``<answer> N </answer>`` solution text."""
    if isinstance(gold, str) and ANSWER_OPEN in gold:
        gold = last_answer(gold)
    return parse_count(gold)


def count_accuracy_reward(completions, solution=None, answer=None, **kwargs) -> list[float | None]:
    """1.0 when the completion's last ``<answer>...</answer>`` is an integer equal to the gold count, else 0.0.

    The gold comes from ``solution`` (or ``answer`` when there is no ``solution`` column): an int, ``"3"`` or
    ``"<answer> 3 </answer>"``. An unusable gold gives ``None`` for that item. Other columns are ignored.
    """
    return score_counts(completions, solution if solution is not None else answer,
                        lambda text: parse_count(last_answer(text)))


def score_counts(completions, golds, predict) -> list[float | None]:
    """1.0 where ``predict(text)`` (an int or ``None``) equals the item's gold count, else 0.0; ``None`` where
    the gold is unusable. ``predict`` sees only strings; a completion without text scores 0.0."""
    scores: list[float | None] = []
    for i, text in enumerate(completion_texts(completions)):
        try:
            gold = gold_count(golds[i])
        except Exception:  # a missing or odd gold column: nothing to compare with
            gold = None
        if gold is None:
            scores.append(None)
            continue
        predicted = predict(text) if isinstance(text, str) else None
        scores.append(1.0 if predicted is not None and predicted == gold else 0.0)
    return scores


def _vl_format_ok(text: str) -> bool:
    body = text.strip()
    if not (body.startswith(THINK_OPEN) and body.endswith(ANSWER_CLOSE)):
        return False
    # Exactly one of each tag keeps answers from hiding inside the think block or after a second answer.
    if any(body.count(tag) != 1 for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)):
        return False
    close = body.find(THINK_CLOSE)
    tail = body[close + len(THINK_CLOSE):].lstrip()
    if not tail.startswith(ANSWER_OPEN):
        return False
    # A non-empty answer: an empty block would be free format reward.
    return bool(tail[len(ANSWER_OPEN):-len(ANSWER_CLOSE)].strip())


def vl_format_reward(completions, **kwargs) -> list[float]:
    """R1-V's format reward: 1.0 iff the completion is ``<think>...</think>`` then ``<answer>...</answer>``.

    As R1-V's ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>")``: nothing before ``<think>`` or
    after ``</answer>`` (surrounding whitespace aside) and only whitespace between the blocks. Stricter in two
    ways: each tag appears exactly once, and the answer is not empty. Extra keyword arguments are ignored.
    """
    return [1.0 if isinstance(t, str) and _vl_format_ok(t) else 0.0 for t in completion_texts(completions)]
