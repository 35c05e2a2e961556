"""open_rs_format, cosine_accuracy(_3584) and open_rs_accuracy: Open-RS's rewards as its code computes them,
checked against oracles that restate the source (math-verify called in-process with the source's arguments)."""

from __future__ import annotations

import math
import time

import pytest

from tinyzero_trl.rewards import ACCURACY_OF, BOUNDS, REWARDS, accuracy_scorer
from tinyzero_trl.rewards.math import MathVerifyPool, get_pool
from tinyzero_trl.rewards.open_rs import (
    make_cosine_accuracy_reward,
    make_open_rs_accuracy_reward,
    score_open_rs,
)

from .oracles import open_rs_correct_oracle, open_rs_cosine_oracle, open_rs_format_oracle

# A linear pass over 1 MB takes milliseconds; a quadratic one takes hours. 5 s tells them apart with room for
# a loaded machine and for mutmut's instrumentation (which made 0.5 s fail on a linear pass).
LINEAR_BOUND = 5.0

MB = 1 << 20


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    get_pool().start()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>\nreasoning\n</think>\n<answer>\\boxed{3}</answer>", 1.0),
        ("reasoning\n</think>\n\nThe answer is 3.", 1.0),  # nothing after the tag is checked
        ("\n</think>\n", 1.0),
        ("reasoning</think>\n<answer>3</answer>", 0.0),  # the newline before the tag is required
        ("reasoning\n</think><answer>3</answer>", 0.0),  # and the one after
        ("a\n</think>\nb\n</think>\nc", 0.0),  # twice
        ("a\n</think>\n</think>\nc", 1.0),  # str.count does not overlap: the second shares the first's newline
        ("a\r\n</think>\r\nb", 0.0),
        ("a\n</THINK>\nb", 0.0),
        ("no tags at all", 0.0),
        ("", 0.0),
    ],
)
def test_format_matches_the_source(text, expected):
    assert REWARDS["open_rs_format"]([text]) == [expected]
    assert REWARDS["open_rs_format"]([[{"role": "assistant", "content": text}]], prompts=["p"]) == [expected]
    assert open_rs_format_oracle(text) == expected


# (completion, gold solution, correct by the source's math-verify call, or None: the gold does not parse)
CORRECTNESS = [
    ("so \\boxed{5}", "Thus $\\boxed{5}$.", True),
    ("so \\boxed{6}", "Thus $\\boxed{5}$.", False),
    ("\\boxed{\\frac{1}{2}}", "We get $\\boxed{0.5}$", True),
    ("\\boxed{x>2}", "$\\boxed{(2,\\infty)}$", True),  # verify(answer, gold): the other order says False
    ("\\boxed{(2,\\infty)}", "$\\boxed{x>2}$", False),
    ("final answer: $\\boxed{3}+1$", "\\boxed{4}", True),  # boxed=True normalizes no box: the $..$ is 3+1
    ("final answer: $\\boxed{3}+1$", "\\boxed{3}", False),  # boxed="all" would say True
    ("\\boxed{1 = 3}", "\\boxed{3}", False),  # our math_accuracy says 1.0
    ("\\boxed{1 = 2 = 3}", "\\boxed{3}", True),  # equations=True keeps the last side of a chain
    ("the answer is 5", "\\boxed{5}", False),  # no anchor-less guessing in the completion
    ("\\boxed{5}", "5", None),  # a bare gold: LatexExtractionConfig alone finds nothing
    ("\\boxed{2}", "x=2", None),
    ("\\boxed{1}", "", None),
]


@pytest.mark.parametrize(("completion", "gold", "correct"), CORRECTNESS)
def test_correctness_matches_the_source(completion, gold, correct):
    assert open_rs_correct_oracle(completion, gold) is correct
    expected = None if correct is None else float(correct)
    assert score_open_rs(completion, gold) == expected
    assert REWARDS["open_rs_accuracy"]([completion], solution=[gold]) == [expected]


def test_cosine_matches_the_oracle_and_its_constants():
    completions = [c for c, _, _ in CORRECTNESS]
    golds = [g for _, g, _ in CORRECTNESS]
    pad = "Let me think about this carefully. "  # 35 characters
    for n in (0, 10, 28, 43, 57, 100, 300):  # lengths 0 to ~10,500 characters: past max_len, and past 2 * max_len
        texts = [pad * n + c for c in completions]
        got = REWARDS["cosine_accuracy"](texts, solution=golds)
        assert got == pytest.approx([open_rs_cosine_oracle(t, g) for t, g in zip(texts, golds)], abs=1e-12)
        got = REWARDS["cosine_accuracy_3584"](texts, solution=golds)
        assert got == pytest.approx([open_rs_cosine_oracle(t, g, 3584) for t, g in zip(texts, golds)], abs=1e-12)
    right, wrong, bad_gold = "\\boxed{5}", "\\boxed{6}", "5"
    cases = [  # (completion, gold, max_len 1000 value, max_len 3584 value): the source's constants, by hand
        (right, "\\boxed{5}", 0.5 + 0.25 * (1 + math.cos(math.pi * 9 / 1000)), None),
        ("x" * 991 + right, "\\boxed{5}", 0.5, None),  # 1000 characters: the floor for right answers
        ("x" * 1491 + right, "\\boxed{5}", 0.75, None),  # 1500: not clamped, the cosine goes on ...
        ("x" * 1991 + right, "\\boxed{5}", 1.0, None),  # ... back up to the top at 2 * max_len
        ("x" * 3575 + right, "\\boxed{5}", None, 0.5),
        ("", "\\boxed{5}", 0.0, 0.0),  # an empty wrong answer: 0.0 (min_value_wrong)
        ("x" * 991 + wrong, "\\boxed{5}", -0.5, None),  # max_value_wrong at max_len: long wrong answers cost more
        ("x" * 3575 + wrong, "\\boxed{5}", None, -0.5),
        ("x" * 491 + wrong, "\\boxed{5}", -0.25, None),
        ("x" * 991 + right, bad_gold, 1.0, 1.0),  # an unparseable gold: 1.0 whatever the length
    ]
    for text, gold, exp2, exp3 in cases:
        if exp2 is not None:
            assert REWARDS["cosine_accuracy"]([text], solution=[gold]) == [pytest.approx(exp2, abs=1e-12)], text[-20:]
        if exp3 is not None:
            assert REWARDS["cosine_accuracy_3584"]([text], solution=[gold]) == [pytest.approx(exp3, abs=1e-12)]


def test_length_counts_characters_not_bytes():
    text = "数" * 500 + "\\boxed{5}"  # 509 characters, 1,509 UTF-8 bytes
    expected = 0.5 + 0.25 * (1 + math.cos(math.pi * 509 / 1000))
    assert REWARDS["cosine_accuracy"]([text], solution=["\\boxed{5}"]) == [pytest.approx(expected, abs=1e-12)]
    assert open_rs_cosine_oracle(text, "\\boxed{5}") == pytest.approx(expected, abs=1e-12)


def test_columns_and_odd_inputs():
    f = REWARDS["cosine_accuracy"]
    chat = [[{"role": "assistant", "content": "\\boxed{5}"}], [{"role": "assistant", "content": "\\boxed{4}"}]]
    out = f(chat, solution=["$\\boxed{5}$", 4], prompts=["p", "p"], problem=["q", "q"], completion_ids=[[1], [2]])
    # An int gold is read as its text, "4": bare, so the source's gold parse finds nothing and the item gets 1.0.
    assert out == [pytest.approx(0.5 + 0.25 * (1 + math.cos(math.pi * 9 / 1000))), 1.0]
    # No gold column (or a short one): None, which TRL skips. A completion without text: an empty wrong one.
    assert f(["\\boxed{5}", "\\boxed{5}"], solution=["$\\boxed{5}$"])[1] is None
    assert f(["\\boxed{5}"]) == [None]
    assert f([None, 12345, b"\\boxed{5}"], solution=["$\\boxed{5}$"] * 3) == [0.0, 0.0, 0.0]
    assert f([]) == [] and f(None) == []
    assert REWARDS["open_rs_accuracy"]([None, "\\boxed{5}"], solution=["$\\boxed{5}$", None]) == [0.0, None]


def test_hostile_inputs_are_bounded_and_exact():
    limit = 1.0
    pool = MathVerifyPool(workers=2)
    pool.start()
    f = make_cosine_accuracy_reward(time_limit=limit, pool=pool)

    def wrong(n):
        return -0.5 + 0.25 * (1 + math.cos(math.pi * n / 1000))

    cases = [  # (completion, gold, value)
        ("x" * MB, "\\boxed{5}", wrong(MB)),
        ("$" * MB, "\\boxed{5}", wrong(MB)),
        ("\\boxed{" * 100_000, "\\boxed{5}", wrong(700_000)),
        ("\\boxed{9^{9^{9^{9}}}}", "\\boxed{1}", wrong(21)),  # one C-level pow: only the kill stops it
        ("\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}", "\\boxed{1}", wrong(10_009)),
        ("\\boxed{5}", "y" * MB, 1.0),  # a 1 MB gold that does not parse
        ("\x00" * MB + "\\boxed{5}", "\\boxed{5}", 0.5 + 0.25 * (1 + math.cos(math.pi * (MB + 9) / 1000))),
    ]
    try:
        for completion, gold, value in cases:
            start = time.perf_counter()
            assert f([completion], solution=[gold]) == [pytest.approx(value, abs=1e-9)], completion[:30]
            assert time.perf_counter() - start < 3 * limit, completion[:30]
        assert f(["\\boxed{5}"], solution=["\\boxed{5}"])[0] > 0.99  # the pool still works
    finally:
        pool.close()
    start = time.perf_counter()
    assert REWARDS["open_rs_format"](["\n</think>\n" * 200_000, "x" * MB + "\n</think>\n", None]) == [0.0, 1.0, 0.0]
    assert time.perf_counter() - start < LINEAR_BOUND


def test_registry_bounds_and_accuracy():
    assert BOUNDS["cosine_accuracy"] == BOUNDS["cosine_accuracy_3584"] == (-0.5, 1.0)
    assert BOUNDS["open_rs_format"] == BOUNDS["open_rs_accuracy"] == (0.0, 1.0)
    assert accuracy_scorer({"open_rs_format": 1.0, "cosine_accuracy": 2.0}) == "open_rs_accuracy"
    assert ACCURACY_OF["cosine_accuracy_3584"] == "open_rs_accuracy"
    for name in ("open_rs_format", "cosine_accuracy", "cosine_accuracy_3584", "open_rs_accuracy"):
        assert REWARDS[name].__name__ == name and REWARDS[name].__doc__


class RecordingPool:
    """A MathVerifyPool stand-in: records what it is asked and answers 1.0, then None (an unparseable gold)."""

    def __init__(self):
        self.calls = []

    def score(self, items, time_limit, scorer=None):
        self.calls.append((items, time_limit, scorer))
        return [1.0, None][:len(items)]


def test_open_rs_accuracy_factory_checks_its_limit_and_uses_its_pool():
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match=rf"time_limit must be positive seconds, got {bad!r}"):
            make_open_rs_accuracy_reward(time_limit=bad)
    pool = RecordingPool()
    reward = make_open_rs_accuracy_reward(time_limit=0.5, pool=pool)
    out = reward(["\\boxed{5}", "\\boxed{6}", "\\boxed{7}"], solution=["$\\boxed{5}$", "\\frac{", None])
    assert out == [1.0, None, None]  # right; a gold math-verify cannot parse; no gold: neither is judged
    assert pool.calls == [([("\\boxed{5}", "$\\boxed{5}$"), ("\\boxed{6}", "\\frac{")], 0.5, score_open_rs)]
