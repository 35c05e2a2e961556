"""Hostile inputs: each must get its exact score AND return fast (0.5 s is a bound against hangs, not a speed
target: normal calls take microseconds). Math rewards must keep their hard limit off the main thread."""

from __future__ import annotations

import threading
import time

import pytest

from tinyzero_trl.rewards.countdown import countdown_equation_reward
from tinyzero_trl.rewards.format import countdown_format_reward, think_format_reward
from tinyzero_trl.rewards.math import MathVerifyPool, make_math_accuracy_reward
from tinyzero_trl.rewards.mini_r1 import mini_r1_equation_reward, mini_r1_format_reward
from tinyzero_trl.rewards.tinyzero import tinyzero_countdown_score

BOUND = 0.5
MB = 1 << 20
THINK = "<think>" + "Let me try 12 * 4 = 48, too small; maybe (7 + 5) * 4. " * (MB // 54) + "</think>\n"


def ans(expr: str) -> str:
    return f"<answer>{expr}</answer>"


# (id, completion, nums, target, countdown_equation score, tinyzero_countdown score). TinyZero's score follows
# its source: eval's arithmetic (2**3, 7//2, 1.5*2 and signs count), only the last line, finditer's pairing.
COUNTDOWN = [
    ("power-tower", ans("9**9**9**9"), [9, 9, 9, 9], 9, 0.0, 0.1),  # eval would not finish: "no value"
    ("power", ans("2**3"), [2, 3], 8, 0.0, 1.0),
    ("floor-div", ans("7//2"), [7, 2], 3, 0.0, 1.0),
    ("literal-1e6-digits", ans("9" * 10**6), [9], 9, 0.0, 0.1),
    ("literal-13-digits", ans("1" * 13), [int("1" * 13)], int("1" * 13), 0.0, 1.0),
    ("literal-12-digits-ok", ans("999999999999 + 1"), [999999999999, 1], 10**12, 1.0, 1.0),
    ("parens-100k", ans("(" * 100_000 + "1" + ")" * 100_000), [1], 1, 0.0, 0.1),
    ("parens-33-deep", ans("(" * 33 + "1" + ")" * 33), [1], 1, 0.0, 1.0),  # Python nests up to 200
    ("parens-201-deep", ans("(" * 201 + "1" + ")" * 201), [1], 1, 0.0, 0.1),
    ("open-parens-500", ans("(" * 500), [1], 1, 0.0, 0.1),
    ("operators-500", ans("+" * 500), [1], 1, 0.0, 0.1),
    ("255-ones-at-cap", ans("+".join(["1"] * 255)), [1] * 255, 255, 1.0, 1.0),
    ("growth-at-cap", ans("*".join(["999999999999"] * 39)), [999999999999] * 39, 999999999999**39, 1.0, 1.0),
    ("division-chain", ans("/".join(["7"] * 200)), [7] * 200, 1, 0.0, 0.1),
    ("div-by-zero", ans("5 / (3 - 3)"), [5, 3, 3], 0, 0.0, 0.1),
    ("spaces-1MB", ans(" " * MB + "1"), [1], 1, 0.0, 1.0),  # TinyZero strips first
    ("nul-1MB", "\x00" * MB + ans("1"), [1], 1, 1.0, 1.0),
    ("think-1MB-correct", THINK + ans("(7 + 5) * 4"), [7, 5, 4], 48, 1.0, 1.0),
    ("think-1MB-wrong", THINK + ans("7 + 5 * 4"), [7, 5, 4], 48, 0.0, 0.1),
    ("user-turn-after-answer", THINK + ans("(7 + 5) * 4") + "\nUser: " + "more " * (MB // 5), [7, 5, 4], 48,
     1.0, 0.0),  # issue 17: TinyZero reads the last line only
    ("answer-tags-200k", "<answer>" * 200_000 + "1+2</answer>", [1, 2], 3, 1.0, 0.1),
    ("answers-100k-last-right", ans("1*2") * 100_000 + ans("1+2"), [1, 2], 3, 1.0, 1.0),
    ("answers-100k-last-wrong", ans("1+2") * 100_000 + ans("1*2"), [1, 2], 3, 0.0, 0.1),
    ("unclosed-100k", "<answer>1+2" * 100_000, [1, 2], 3, 0.0, 0.0),
    ("closes-200k", "</answer>" * 200_000, [1, 2], 3, 0.0, 0.0),
    ("newlines-200k", ans("1+2") + "\n" * 200_000, [1, 2], 3, 1.0, 0.0),
    ("injection-in-think", "<think>" + ans("1+2") + "</think>" + ans("1*2"), [1, 2], 3, 0.0, 0.1),
    ("fullwidth-digits", ans("１+２"), [1, 2], 3, 0.0, 0.1),
    ("arabic-digits", ans("١+٢"), [1, 2], 3, 0.0, 0.1),
    ("superscript", ans("2³"), [2, 3], 8, 0.0, 0.1),
    ("decimal-fusion", ans("1.5*2"), [1, 5, 2], 3, 0.0, 1.0),
    ("concatenation", ans("15-5"), [1, 5, 5], 10, 0.0, 0.1),
    ("python-call", ans("__import__('os').getpid()"), [1], 1, 0.0, 0.1),
    ("nested-tags", ans("<answer>1+2</answer>"), [1, 2], 3, 1.0, 0.1),
    ("sign-leading", ans("-19 + 36 + 55 - 7"), [19, 36, 55, 7], 65, 1.0, 1.0),
    ("sign-double", ans("--1"), [1], 1, 0.0, 1.0),
    ("signs-1MB", ans("-" * MB + "1"), [1], 1, 0.0, 0.1),  # Python fails to compile it (MemoryError)
    ("signs-and-parens-1MB", ans("-(" * (MB // 4) + "1" + ")" * (MB // 4)), [1], 1, 0.0, 0.1),
    ("null", None, [1], 1, 0.0, 0.0),
    ("int", 12345, [1], 1, 0.0, 0.0),
    ("bytes", b"<answer>1</answer>", [1], 1, 0.0, 0.0),
]


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


@pytest.mark.parametrize(("case", "completion", "nums", "target", "equation", "tinyzero"), COUNTDOWN,
                         ids=[c[0] for c in COUNTDOWN])
def test_countdown_hostile(case, completion, nums, target, equation, tinyzero):
    out, took = timed(countdown_equation_reward, [completion], nums=[nums], target=[target])
    assert out == [equation] and took < BOUND, (case, took)
    out, took = timed(tinyzero_countdown_score, [completion], nums=[nums], target=[target])
    assert out == [tinyzero] and took < BOUND, (case, took)


FORMAT = [
    # (id, completion, countdown_format score, think_format score)
    ("think-open-200k", "<think>" * 200_000, 0.0, 0.0),
    ("think-close-200k", "</think>" * 200_000 + ans("1"), 0.0, 0.0),
    ("big-think-countdown", THINK + ans("1"), 0.0, 1.0),  # countdown: the prompt opened <think> already
    ("big-think-prefilled", THINK[len("<think>"):] + ans("1"), 1.0, 0.0),
    ("big-think-r1", THINK + "The answer is 4.", 0.0, 1.0),
    ("big-answer", "r</think>" + ans("x" * MB), 1.0, 0.0),
    ("answer-tags-200k", "r</think>" + "<answer>" * 200_000 + "</answer>", 0.0, 0.0),
    ("whitespace-1MB", " " * MB, 0.0, 0.0),
    ("null", None, 0.0, 0.0),
]


@pytest.mark.parametrize(("case", "completion", "countdown", "think"), FORMAT, ids=[c[0] for c in FORMAT])
def test_format_hostile(case, completion, countdown, think):
    out, took = timed(countdown_format_reward, [completion])
    assert out == [countdown] and took < BOUND, (case, took)
    out, took = timed(think_format_reward, [completion])
    assert out == [think] and took < BOUND, (case, took)
    out, took = timed(mini_r1_format_reward, [completion])
    assert out in ([0.0], [1.0]) and took < BOUND, (case, took)


@pytest.mark.parametrize(("case", "completion", "nums", "target", "equation", "tinyzero"), COUNTDOWN,
                         ids=[c[0] for c in COUNTDOWN])
def test_mini_r1_hostile_is_bounded(case, completion, nums, target, equation, tinyzero):
    for func in (mini_r1_equation_reward, mini_r1_format_reward):
        out, took = timed(func, [completion], nums=[nums], target=[target])
        assert out in ([0.0], [1.0]) and took < BOUND, (case, func.__name__, took)


def test_math_hostile_from_a_thread():
    """Hard per-item limits hold off the main thread, where math-verify's signal timeouts cannot work."""
    limit = 2.0
    # One worker per hostile item, so that the bound does not depend on the machine's core count (with W
    # workers, N hostile items take ceil(N / W) rounds of the limit). Start-up is excluded from the bound.
    pool = MathVerifyPool(workers=3)
    pool.start()
    reward = make_math_accuracy_reward(time_limit=limit, pool=pool)
    completions = [
        "\\boxed{9^{9^{9^{9}}}}",  # one C-level big-int pow: only a kill stops it
        "\\boxed{100000!}",
        "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",  # hangs the LaTeX parser
        "Adding the two gives $\\boxed{\\frac{7}{2}}$.",
        "\\boxed{12}",
        "so $x = \\boxed{-3}$",
        "\\boxed{\\sqrt{2}}",
    ]
    golds = ["1", "1", "1", "\\frac{7}{2}", "12", "-3", "\\sqrt{2}"]
    box: dict = {}

    def run():
        box["out"], box["took"] = timed(reward, completions, solution=golds)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10 * limit)
    assert not thread.is_alive(), "math_accuracy_reward hung"
    pool.close()
    assert box["out"] == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert box["took"] < 3 * limit, box["took"]
