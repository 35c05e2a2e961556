"""R1-V's SuperCLEVR-200 evaluation rule, for scoring held-out counts the way R1-V's published 48.0 / 82.5 were.

Source: Deep-Agent/R1-V ``src/eval/test_qwen2vl_counting_superclevr.py`` (9d576c7, unchanged at bbbbe3d):
``re.search(r'<answer>\\s*(\\d+)\\s*</answer>', output)``, the match's digits as ``int``, exact equality with the
integer ``ground_truth``; no match is wrong. So the FIRST ``<answer>`` whose whole content is one run of
digits (whitespace around it allowed) decides, and later blocks never count; a block holding anything else
(``3 objects``, ``+3``, ``3.0``) is passed over, not scored wrong. ``\\d`` and ``\\s`` are Unicode classes, so
``٣`` counts as 3 and non-breaking spaces are whitespace, as in the source.

``count_accuracy`` (our training reward) reads the LAST ``<answer>`` block instead, accepts a sign and only
ASCII digits, and scores a non-number in that block wrong. This module re-expresses R1-V's rule with ``str``
methods (linear on any input; ``str.isdecimal``/``str.isspace`` are exactly ``re``'s ``\\d``/``\\s``) and
treats a digit run too long for ``int()`` (over 4,300 digits, where R1-V's script would raise) as wrong.
"""

from __future__ import annotations

import re

from tinyzero_trl.rewards.format import ANSWER_CLOSE, ANSWER_OPEN, completion_texts
from tinyzero_trl.rewards.vision import score_counts

_INT_MAX_DIGITS = 4300  # CPython's default int() limit for decimal strings


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def first_count_answer(text: str) -> int | None:
    """The integer of the first ``<answer>`` that holds only digits and whitespace, as R1-V's ``re.search``.

    ``None`` when no block qualifies, or when the chosen one's digits are too many for ``int()``. Linear time:
    the scan after an ``<answer>`` stops at the first character that is neither whitespace nor a digit, so
    it never runs into the next ``<answer>``.
    """
    pos = 0
    while True:
        start = text.find(ANSWER_OPEN, pos)
        if start < 0:
            return None
        digits_at = _skip_space(text, start + len(ANSWER_OPEN))
        end = digits_at
        while end < len(text) and text[end].isdecimal():  # str.isdecimal is re's \d for str patterns
            end += 1
        if end > digits_at and text.startswith(ANSWER_CLOSE, _skip_space(text, end)):
            run = text[digits_at:end]
            return int(run) if len(run) <= _INT_MAX_DIGITS else None
        pos = start + 1


def r1v_count_eval_reward(completions, solution=None, answer=None, **kwargs) -> list[float | None]:
    """R1-V's SuperCLEVR evaluation: 1.0 when the first digits-only ``<answer>`` equals the gold count, else 0.0.

    The gold comes from ``solution`` (or ``answer``): an int, ``"3"`` or ``"<answer> 3 </answer>"``; an unusable
    gold gives ``None``. Other columns are ignored. Never raises.
    """
    return score_counts(completions, solution if solution is not None else answer, first_count_answer)


# R1-V's format reward as its published run had it (Deep-Agent/R1-V@9d576c7d:src/open-r1-multimodal/src/open_r1/
# grpo.py:96-101): re.match (anchored at the start only) and no re.DOTALL, so "." never crosses a newline. A think
# block written over several lines never matches, which is why R1-V's logged format reward stayed near 0 (its
# images/curves.png: at most 0.008); the later fullmatch + DOTALL form is vl_format's.
R1V_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>")


def r1v_format_reward(completions, **kwargs) -> list[float]:
    """1.0 when ``R1V_FORMAT`` matches at the start of the completion (anything may follow), else 0.0.

    Completions are at most ``max_completion_length`` tokens, so the lazy pattern's backtracking stays small.
    """
    return [1.0 if isinstance(t, str) and R1V_FORMAT.match(t) else 0.0 for t in completion_texts(completions)]
