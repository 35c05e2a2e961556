"""TEST ORACLES ONLY: the peers' countdown scorers as their code behaves, re-expressed with ``re`` and ``eval``.

Each function restates, in its own words, what the cited source does, so the rewards in src/ (which must
never eval) can be checked against the real Python semantics on a corpus of completions. They use ``eval``
on test-generated strings only, guarded so that no corpus string can make them hang. Never use them as a
reward.

Sources read (see notes/refs-findings.md):
- TinyZero: Jiayi-Pan/TinyZero ``verl/utils/reward_score/countdown.py`` (commit 95df88f), scoring the decoded
  prompt + response, which ends in the end-of-text token when the response finished.
- Mini-R1: philschmid/deep-learning-pytorch-huggingface ``training/scripts/run_r1_grpo.py`` (commit 59b3797).
"""

from __future__ import annotations

import re

_CHARS = re.compile(r"[\d+\-*/().\s]+")  # the characters both peers let through to eval
_DIGITS = re.compile(r"\d+")


def _safe_eval(expr: str):
    # Corpus strings are small and carry at most one '**' on small numbers, so eval ends at once.
    assert len(expr) < 4000 and expr.count("**") <= 1, expr[:80]
    return eval(expr, {"__builtins__": None}, {})  # noqa: S307 - the oracle's whole point


def _same_numbers(expr: str, nums) -> bool:
    try:
        return sorted(int(d) for d in _DIGITS.findall(expr)) == sorted(nums)
    except Exception:
        return False


def tinyzero_oracle(full_text: str, nums, target) -> float:
    """TinyZero's score of the string it saw: prompt + response (+ the end-of-text token if finished)."""
    for marker in ("Assistant:", "<|im_start|>assistant"):
        if marker in full_text:
            rest = full_text.split(marker, 1)[1]
            break
    else:
        return 0.0
    last_line = rest.split("\n")[-1]
    found = re.findall(r"<answer>(.*?)</answer>", last_line)
    if not found:
        return 0.0
    equation = found[-1].strip()
    if not _same_numbers(equation, nums) or not _CHARS.fullmatch(equation):
        return 0.1
    try:
        return 1.0 if abs(_safe_eval(equation) - target) < 1e-5 else 0.1
    except Exception:
        return 0.1


_MINI_R1_FORMAT = re.compile(r"<think>(?:(?!</?think>).)*</think>\n<answer>.*?</answer>\n?\Z", re.S)


def mini_r1_format_oracle(completion: str) -> float:
    """Mini-R1's format reward: the prefilled <think> + completion, matched from the start to the end."""
    return 1.0 if _MINI_R1_FORMAT.match("<think>" + completion) else 0.0


def mini_r1_equation_oracle(completion: str, nums, target) -> float:
    """Mini-R1's equation reward: the first answer on one line, its numbers, its characters, then eval."""
    found = re.search(r"<answer>([^\n]*?)</answer>", "<think>" + completion)
    if found is None:
        return 0.0
    equation = found.group(1).strip()
    if not _same_numbers(equation, nums) or not _CHARS.fullmatch(equation):
        return 0.0
    try:
        return 1.0 if abs(float(_safe_eval(equation)) - float(target)) < 1e-5 else 0.0
    except Exception:
        return 0.0
