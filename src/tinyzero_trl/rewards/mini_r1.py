"""Mini-R1's two countdown rewards (philschmid, "Mini-R1"), re-expressed without regex backtracking or ``eval``.

The source (philschmid/deep-learning-pytorch-huggingface, ``training/scripts/run_r1_grpo.py``) prepends the
``<think>`` its prompt prefilled to each completion, then:

- format: the text must match ``^<think>(no <think> or </think>)</think>\\n<answer>(anything)</answer>$``:
  the first ``</think>`` is followed by exactly one newline and ``<answer>``, and the text ends with
  ``</answer>`` (``$`` also allows one final newline). So ``</think>\\n\\n<answer>`` and ``</think><answer>``
  score 0, while an empty answer, or several answer blocks with text between them, score 1.
- equation: the FIRST ``<answer>(.*?)</answer>`` that opens and closes on one line, stripped; its digit runs
  must be exactly the given numbers, and ``eval`` must give a value within 1e-5 of the target. The format is
  not checked. As in TinyZero, Python's arithmetic decides (``-3 + 5``, ``2**3``, ``1.5*2`` can count).

Our ``countdown_format`` and ``countdown_equation`` are stricter in other ways (see their docstrings); these
two are for the reproductions that claim Mini-R1's curve.
"""

from __future__ import annotations

from tinyzero_trl.rewards.countdown import _column
from tinyzero_trl.rewards.format import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, completion_texts
from tinyzero_trl.rewards.tinyzero import eval_equation_correct

_AFTER_THINK = "\n" + ANSWER_OPEN


def _mini_r1_format_ok(completion: str) -> bool:
    text = THINK_OPEN + completion
    close = text.find(THINK_CLOSE)
    if close < 0 or text.find(THINK_OPEN, len(THINK_OPEN), close) >= 0:
        return False
    body = close + len(THINK_CLOSE)
    if not text.startswith(_AFTER_THINK, body):
        return False
    body += len(_AFTER_THINK)
    for end in (len(text), len(text) - 1):  # `$` matches at the end, or before one final newline
        if (end == len(text) or text[end] == "\n") and end - len(ANSWER_CLOSE) >= body \
                and text.startswith(ANSWER_CLOSE, end - len(ANSWER_CLOSE)):
            return True
    return False


def mini_r1_format_reward(completions, **kwargs) -> list[float]:
    """Mini-R1's format reward: 1.0 for ``...</think>\\n<answer>...</answer>`` (prompt ends in ``<think>``), else 0.0."""
    return [1.0 if isinstance(t, str) and _mini_r1_format_ok(t) else 0.0 for t in completion_texts(completions)]


def first_line_answer(text: str) -> str | None:
    """The content of the first ``<answer>...</answer>`` that closes before a newline, as ``re.search`` finds it.

    Linear time: the next ``</answer>`` and the next newline are only searched again once the candidate
    ``<answer>`` has moved past them.
    """
    close = newline = -1
    pos = 0
    while True:
        start = text.find(ANSWER_OPEN, pos)
        if start < 0:
            return None
        body = start + len(ANSWER_OPEN)
        if close < body:
            close = text.find(ANSWER_CLOSE, body)
            if close < 0:
                return None
        if newline < body:
            newline = text.find("\n", body)
            if newline < 0:
                newline = len(text)
        if close < newline:
            return text[body:close]
        pos = start + 1


def mini_r1_equation_reward(completions, nums=None, target=None, **kwargs) -> list[float]:
    """Mini-R1's equation reward: 1.0 when the first one-line answer is a correct equation as ``eval`` reads it.

    ``nums`` and ``target`` are the dataset columns; extra keyword arguments are ignored. Never raises.
    """
    out = []
    for i, text in enumerate(completion_texts(completions)):
        answer = first_line_answer(text) if isinstance(text, str) else None
        ok = answer is not None and eval_equation_correct(answer.strip(), _column(nums, i), _column(target, i))
        out.append(1.0 if ok else 0.0)
    return out
