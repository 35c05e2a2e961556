"""mini_r1_format and mini_r1_equation: Mini-R1's rewards as its code computes them, checked against oracles
that restate the source with re and eval."""

from __future__ import annotations

import time

import pytest

from tinyzero_trl.rewards import REWARDS
from tinyzero_trl.rewards.mini_r1 import first_line_answer

from .oracles import mini_r1_equation_oracle, mini_r1_format_oracle

# A linear pass over 1 MB takes milliseconds; a quadratic one takes hours. 5 s tells them apart with room for
# a loaded machine and for mutmut's instrumentation (which made 0.5 s fail on a linear pass).
LINEAR_BOUND = 5.0

MB = 1 << 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" reasoning </think>\n<answer>1 + 2</answer>", 1.0),
        (" reasoning </think>\n<answer>1 + 2</answer>\n", 1.0),  # `$` allows one final newline
        (" reasoning </think>\n<answer>1 + 2</answer>\n\n", 0.0),
        (" reasoning </think>\n\n<answer>1 + 2</answer>", 0.0),  # issue 17: our countdown_format accepts this
        (" reasoning </think><answer>1 + 2</answer>", 0.0),
        (" reasoning </think> \n<answer>1 + 2</answer>", 0.0),
        (" reasoning </think>\n<answer></answer>", 1.0),  # an empty answer passes
        (" r </think>\n<answer>1</answer> text <answer>2</answer>", 1.0),  # the lazy group spans both
        (" r </think>\n<answer>1</answer> trailing", 0.0),
        (" r </think>\n<answer>1</answer></think>", 0.0),
        (" r <answer>draft</answer> </think>\n<answer>1</answer>", 1.0),
        ("<think> r </think>\n<answer>1</answer>", 0.0),  # a second <think> before the first </think>
        (" r </think>\n<answer>1</think><think></answer>", 1.0),  # after </think> anything goes
        (" r <thinking> </think>\n<answer>1</answer>", 1.0),  # only <think> and </think> are tags
        ("</think>\n<answer>1</answer>", 1.0),
        (" r </think>\n<answer>1</answe", 0.0),
        ("", 0.0),
    ],
)
def test_format_matches_the_source(text, expected):
    assert REWARDS["mini_r1_format"]([text]) == [expected]
    assert REWARDS["mini_r1_format"]([[{"role": "assistant", "content": text}]], prompts=["p"]) == [expected]
    assert mini_r1_format_oracle(text) == expected
    if expected == 0.0 and "\n\n<answer>" in text:
        assert REWARDS["countdown_format"]([text]) == [1.0]  # the deviation issue 17 names


@pytest.mark.parametrize(
    ("text", "nums", "target", "expected"),
    [
        ("</think>\n<answer>55 + 36 - 7 - 19</answer>", [19, 36, 55, 7], 65, 1.0),
        ("</think>\n<answer>-19 + 36 + 55 - 7</answer>", [19, 36, 55, 7], 65, 1.0),
        ("draft <answer>1 * 2</answer></think>\n<answer>1 + 2</answer>", [1, 2], 3, 0.0),  # the FIRST answer
        ("<answer>\n1 * 2\n</answer> then <answer>1 + 2</answer>", [1, 2], 3, 1.0),  # first on one line
        ("</think>\n<answer>1 + 2</answer>\nUser: more", [1, 2], 3, 1.0),  # no last-line rule here
        ("<answer>2**3</answer>", [2, 3], 8, 1.0),
        ("<answer>1.5 * 2</answer>", [1, 5, 2], 3, 1.0),
        ("<answer>07 + 1</answer>", [7, 1], 8, 0.0),
        ("<answer>3 + 4 = 7</answer>", [3, 4], 7, 0.0),
        ("<answer>1 + 2", [1, 2], 3, 0.0),
        ("<answer>(1 +\n2)</answer>\ndone", [1, 2], 3, 0.0),  # closes on a later line
        ("no answer", [1, 2], 3, 0.0),
    ],
)
def test_equation_matches_the_source(text, nums, target, expected):
    assert REWARDS["mini_r1_equation"]([text], nums=[nums], target=[target]) == [expected]
    assert mini_r1_equation_oracle(text, nums, target) == expected


def test_hostile_inputs_are_fast_and_exact():
    cases = [
        ("r</think>\n<answer>" + "x" * MB + "</answer>", 1.0),
        ("<think>" * 200_000, 0.0),
        ("r" * MB + "</think>\n<answer>1</answer>", 1.0),
        ("<" * MB + "</think>\n<answer>1</answer>", 1.0),  # every '<' tested against </?think> once
        ("r</think>\n<answer>" + "</answer>x" * 100_000, 0.0),
        ("r</think>\n<answer>" + "\n" * MB, 0.0),
    ]
    for text, expected in cases:
        start = time.perf_counter()
        assert REWARDS["mini_r1_format"]([text]) == [expected]
        assert time.perf_counter() - start < LINEAR_BOUND
    hostile = ["<answer>" * 200_000 + "\n</answer>", ("<answer>1\n" * 100_000) + "</answer>",
               "<answer>" + "9" * MB + "</answer>", "<answer>" + "1+" * (MB // 2) + "1</answer>"]
    for text in hostile:
        start = time.perf_counter()
        assert REWARDS["mini_r1_equation"]([text], nums=[[1]], target=[1]) == [0.0]
        assert time.perf_counter() - start < LINEAR_BOUND
    assert first_line_answer("<answer>\n" * 100_000 + "<answer>7</answer>") == "7"
