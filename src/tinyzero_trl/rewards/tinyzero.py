"""TinyZero's countdown score, re-expressed without ``eval``.

The source (Jiayi-Pan/TinyZero, ``verl/utils/reward_score/countdown.py``) scores prompt + response as one
string: it keeps the text after the first ``Assistant:`` (or ``<|im_start|>assistant``), keeps only the LAST
LINE of that, and takes the last non-overlapping ``<answer>(.*?)</answer>`` match on that line. No match: 0.
A match whose digit runs are not exactly the given numbers, or that ``eval`` cannot turn into a value within
1e-5 of the target: 0.1. Otherwise 1.0. So an answer followed by more text on a new line (``\\nUser: ...``,
a trailing newline) scores 0, and Python's arithmetic decides the rest (``2**3``, ``7//2``, ``-3 + 5``,
``1.5*2`` from the numbers 1, 5, 2 all count as correct when they reach the target; ``07`` does not).

Here the response is the completion alone. Both of TinyZero's prompt templates end their last line with
``<think>``, which cannot take part in an ``<answer>`` match, so the completion's last line decides exactly
as the joined string's would; the decoded end-of-text token TinyZero's string also carried is text after the
answer on the same line, and changes nothing. A prompt without the ``Assistant:`` marker scores 0 in TinyZero
whatever the answer; here the marker is not required, so templates of our own (``tiny``) can use the score.
"""

from __future__ import annotations

from tinyzero_trl.rewards.countdown import CORRECT_SCORE, FORMAT_SCORE, _as_int, _as_sorted_ints, _column
from tinyzero_trl.rewards.format import ANSWER_CLOSE, ANSWER_OPEN, completion_texts
from tinyzero_trl.rewards.pyarith import digit_runs_match, near_target, python_value


def last_line_answer(text: str) -> str | None:
    """The content of the last ``<answer>...</answer>`` pair on the last line, as ``re.finditer`` pairs them.

    Pairs are matched left to right, each ``<answer>`` with the first ``</answer>`` after it, so in
    ``<answer>a<answer>b</answer>`` the content is ``a<answer>b``. Linear time: ``str.find`` only.
    """
    line = text[text.rfind("\n") + 1:]
    found, pos = None, 0
    while True:
        start = line.find(ANSWER_OPEN, pos)
        if start < 0:
            return found
        end = line.find(ANSWER_CLOSE, start + len(ANSWER_OPEN))
        if end < 0:
            return found
        found, pos = line[start + len(ANSWER_OPEN):end], end + len(ANSWER_CLOSE)


def eval_equation_correct(equation: str, nums, target) -> bool:
    """The peers' test: digit runs are exactly ``nums`` and the value ``eval`` would give is within 1e-5 of target."""
    want, goal = _as_sorted_ints(nums), _as_int(target)
    if want is None or goal is None or not digit_runs_match(equation, want):
        return False
    value = python_value(equation)
    return value is not None and near_target(value, goal)


def tinyzero_countdown_score(completions, nums=None, target=None, **kwargs) -> list[float]:
    """TinyZero's countdown score: 0.0 no answer on the last line, 0.1 an answer that is wrong, 1.0 right.

    ``nums`` and ``target`` are the dataset columns; extra keyword arguments are ignored. Never raises.
    """
    out = []
    for i, text in enumerate(completion_texts(completions)):
        answer = last_line_answer(text) if isinstance(text, str) else None
        if answer is None:
            out.append(0.0)
        elif eval_equation_correct(answer.strip(), _column(nums, i), _column(target, i)):
            out.append(CORRECT_SCORE)
        else:
            out.append(FORMAT_SCORE)
    return out


def tinyzero_correct(completions, nums=None, target=None, **kwargs) -> list[float]:
    """1.0 where TinyZero's score is 1.0 (a right answer), else 0.0: the share of right answers oat-zero reports
    as its test accuracy ("reward > 0.5"). An evaluation scorer for runs trained on ``tinyzero_countdown``."""
    return [1.0 if s == CORRECT_SCORE else 0.0 for s in tinyzero_countdown_score(completions, nums, target)]
