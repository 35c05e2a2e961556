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


# Open-RS: knoveleng/open-rs ``src/open_r1/rewards.py`` (commit 2889c47), with the constants of
# ``src/open_r1/grpo.py`` and ``recipes/grpo.yaml``. math-verify runs here in-process with its own signal timeouts
# (main thread only), exactly as the source called it.


def open_rs_format_oracle(completion: str) -> float:
    """Open-RS's format reward: the closing think tag, newline-wrapped, occurs once (str.count's way)."""
    return 1.0 if completion.count("\n</think>\n") == 1 else 0.0


def open_rs_correct_oracle(completion: str, solution: str) -> bool | None:
    """Open-RS's math-verify verdict, arguments as the source passed them; None when the gold does not parse."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    gold = parse(solution, extraction_mode="first_match", extraction_config=[LatexExtractionConfig()])
    if not gold:
        return None
    norm = NormalizationConfig(nits=False, malformed_operators=False, basic_latex=True, equations=True,
                               boxed=True, units=True)
    answer = parse(completion, extraction_mode="first_match", extraction_config=[
        LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0, try_extract_without_anchor=False)])
    return bool(verify(answer, gold))


def open_rs_cosine_oracle(completion: str, solution: str, max_len: int = 1000) -> float:
    """Open-RS's cosine reward in closed form: right answers fall from 1.0 to 0.5 over max_len characters,
    wrong ones from 0.0 to -0.5, along (1 + cos(pi * length / max_len)) / 2, unclamped; bad gold: 1.0."""
    import math

    right = open_rs_correct_oracle(completion, solution)
    if right is None:
        return 1.0
    weight = (1 + math.cos(math.pi * len(completion) / max_len)) / 2
    return 0.5 + 0.5 * weight if right else -0.5 + 0.5 * weight


# R1-V: Deep-Agent/R1-V ``src/eval/test_qwen2vl_counting_superclevr.py`` (commit bbbbe3d): the SuperCLEVR-200 score.
_R1V_ANSWER = re.compile(r"<answer>\s*(\d+)\s*</answer>")


def r1v_count_oracle(output: str, ground_truth: int) -> float:
    """R1-V's evaluation: the first digits-only answer block, as an int, equal to the integer ground truth."""
    found = _R1V_ANSWER.search(output)
    return 1.0 if found is not None and int(found.group(1)) == ground_truth else 0.0
