"""Countdown rewards: exact scoring, known hacks of earlier scorers, and property tests against a Fraction oracle."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero_trl.rewards.countdown import (
    MAX_ANSWER_CHARS,
    MAX_DEPTH,
    countdown_equation_reward,
    evaluate_expression,
)
from tinyzero_trl.rewards.mini_r1 import mini_r1_equation_reward, mini_r1_format_reward
from tinyzero_trl.rewards.tinyzero import tinyzero_countdown_score

FUZZ = settings(max_examples=200, deadline=None, database=None)


def score(answer: str, nums, target) -> float:
    return countdown_equation_reward([f"<think>working</think>\n<answer>{answer}</answer>"], nums=[nums], target=[target])[0]


@pytest.mark.parametrize(
    ("answer", "nums", "target"),
    [
        ("(1 + 2) / 3", [1, 2, 3], 1),
        ("3/(2-1)", [1, 2, 3], 3),
        ("2 + 3 * 4", [2, 3, 4], 14),  # precedence
        ("8 - 4 - 2", [8, 4, 2], 2),  # left-associative: (8-4)-2, not 8-(4-2)=6
        ("8 / 4 / 2", [8, 4, 2], 1),
        ("((((7))))", [7], 7),
        ("\n 95 -\n(44 - 21)\t", [95, 44, 21], 72),  # whitespace incl. newlines
        ("0 * 5 + 9", [0, 5, 9], 9),
        ("1 - 5", [1, 5], -4),  # a negative target is reachable without unary minus
        ("4/(1-2/3)", [1, 2, 3, 4], 12),  # intermediate 1/3, exact 12 (float gives 11.999999999999996)
        ("(1/2 + 3) * 4", [1, 2, 3, 4], 14),
        ("6/4*2", [6, 4, 2], 3),  # 6/4 = 3/2 is not an integer: exact arithmetic, no truncation
        ("-19 + 36 + 55 - 7", [19, 36, 55, 7], 65),  # issue 17: one sign per operand is accepted
        ("-3 + 5", [3, 5], 2),
        ("+3 + 5", [3, 5], 8),
        ("5 - (-3)", [5, 3], 8),
        ("5 - -3", [5, 3], 8),
        ("2 * -3 + 10", [2, 3, 10], 4),  # a sign binds to its operand only
        ("-(4 - 9)", [4, 9], 5),
        ("-(1 + 2) * -3", [1, 2, 3], 9),
        ("10 / -(3 - 5)", [10, 3, 5], 5),
        ("-(-3) + 5", [3, 5], 8),  # a sign before "(" and one inside it: one per operand
    ],
)
def test_correct_answers_score_one(answer, nums, target):
    assert score(answer, nums, target) == 1.0
    assert score(answer, list(reversed(nums)), target) == 1.0  # the multiset, not the order, matters


@pytest.mark.parametrize(
    ("answer", "nums", "target"),
    [
        ("2**3", [2, 3], 8),  # exponent
        ("2 * * 3", [2, 3], 8),
        ("7//2", [7, 2], 3),  # floor division
        ("1.5 * 2", [1, 5, 2], 3),  # fusing two numbers into a decimal
        ("15 - 5", [1, 5, 5], 10),  # concatenating 1 and 5
        ("3 + 3", [3, 4], 6),  # reusing a number
        ("3*3+2", [2, 2, 3], 11),  # the right numbers as a set, not as a multiset: 3 twice, 2 once
        ("10 - 4", [10, 4, 2], 6),  # omitting a number
        ("--3 + 5", [3, 5], 8),  # a second sign in a row
        ("+-3 + 11", [3, 11], 8),
        ("- -3 + 5", [3, 5], 8),
        ("5 - - -3", [5, 3], 2),
        ("3 -", [3], 3),  # a dangling sign
        ("-", [], 0),
        ("1/0 + 2", [1, 0, 2], 2),  # division by zero
        ("4 / (2 - 2) * 0 + 3", [4, 2, 2, 0, 3], 3),
        ("() + 3", [3], 3),  # empty parentheses
        ("(3", [3], 3),
        ("3)", [3], 3),
        ("3 4", [3, 4], 34),  # juxtaposition is not concatenation
        ("2(3)", [2, 3], 6),  # nor multiplication
        ("1_0 - 4", [10, 4], 6),  # Python's digit separator
        ("0x10", [0, 10], 16),
        ("1e1", [1, 1], 10),
        ("３ + ４", [3, 4], 7),  # fullwidth digits
        ("٣ + ٤", [3, 4], 7),  # Arabic-Indic digits
        ("3 + 4 = 7", [3, 4], 7),  # the equation, not the expression
        ("3 × 4", [3, 4], 12),
        ("abs(3 - 4)", [3, 4], 1),
        ("", [3], 3),
        ("   ", [3], 3),
        ("3 +", [3], 3),
        ("7 + 1/1000000", [7, 1, 1000000], 7),  # equal to the target only up to a float tolerance
        ("1000000000000 + 1 - 1000000000000", [1000000000000, 1, 1000000000000], 1),  # 13-digit literal
    ],
)
def test_known_hacks_score_zero(answer, nums, target):
    assert score(answer, nums, target) == 0.0


def test_float_tolerance_trap_is_rejected_but_exact_fraction_accepted():
    # A tolerance-based scorer accepts 7 + 1/1000000 for target 7; exact arithmetic must not.
    assert abs(eval("7 + 1/1000000") - 7) < 1e-5
    assert score("7 + 1/1000000", [7, 1, 1000000], 7) == 0.0
    # And the converse: 4/(1-2/3) is exactly 12 although floating point says 11.999999999999996.
    assert eval("4/(1-2/3)") != 12
    assert score("4/(1-2/3)", [1, 2, 3, 4], 12) == 1.0


def test_only_the_last_answer_tag_counts():
    good, bad = "<answer>1 + 2</answer>", "<answer>1 * 2</answer>"
    kw = {"nums": [[1, 2]], "target": [3]}
    assert countdown_equation_reward([f"<think>{bad}</think>{good}"], **kw) == [1.0]
    assert countdown_equation_reward([f"<think>{good}</think>{bad}"], **kw) == [0.0]  # correct one inside think
    assert countdown_equation_reward([f"{good}\n{bad}"], **kw) == [0.0]
    assert countdown_equation_reward([f"{good} <answer>1 + 2"], **kw) == [0.0]  # last tag never closed
    assert countdown_equation_reward(["<answer><answer>1 + 2</answer>"], **kw) == [1.0]


def test_depth_cap():
    assert score("(" * MAX_DEPTH + "1 + 2" + ")" * MAX_DEPTH, [1, 2], 3) == 1.0
    assert score("(" * (MAX_DEPTH + 1) + "1 + 2" + ")" * (MAX_DEPTH + 1), [1, 2], 3) == 0.0


def test_conversational_and_extra_kwargs():
    msgs = [
        [{"role": "assistant", "content": "<answer>3*4</answer>"}],
        [{"role": "user", "content": "<answer>3*4</answer>"}, {"role": "assistant", "content": "no answer"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "<answer>3"}, {"type": "text", "text": "*4</answer>"}]}],
    ]
    kw = {"nums": [[3, 4]] * 3, "target": [12] * 3, "prompts": ["p"] * 3, "completion_ids": [[1]] * 3,
          "trainer_state": object(), "other_column": [None] * 3}
    assert countdown_equation_reward(completions=msgs, **kw) == [1.0, 0.0, 1.0]
    assert tinyzero_countdown_score(completions=msgs, **kw) == [1.0, 0.0, 1.0]


def test_tolerant_column_types():
    c = ["<answer>10 - 4</answer>"]
    for nums, target in [
        (np.array([10, 4]), np.int64(6)), ((4, 10), 6.0), (["10", " 4"], "6"), ("[10, 4]", " 6 "),
        ([np.int32(10), 4.0], np.float32(6)),
    ]:
        assert countdown_equation_reward(c, nums=[nums], target=[target]) == [1.0], (nums, target)
    for nums, target in [([10, 4], 6.5), ([10, 4], "six"), ([10, 4], None), ([10, 4], True), ([10.5, 4], 6),
                         (None, 6), (42, 6), ([10, 4], [6]), ([10, 4], math.nan), ([10, 4], math.inf)]:
        assert countdown_equation_reward(c, nums=[nums], target=[target]) == [0.0], (nums, target)
    assert countdown_equation_reward(c * 2, nums=[[10, 4]], target=[6]) == [1.0, 0.0]  # short columns
    assert countdown_equation_reward(c) == [0.0]  # no columns at all


def test_tinyzero_score_levels():
    nums, target = [[2, 5, 7]] * 5, [17] * 5
    completions = [
        "<think>ok</think><answer>2 * 5 + 7</answer>",  # right
        "<think>ok</think><answer>2 * 5 - 7</answer>",  # well-formed, wrong value
        "<think>ok</think><answer>2 ** 5</answer>",  # invalid expression
        "<think>no answer</think>",
        "<answer>2 * 5 + 7",  # never closed
    ]
    assert tinyzero_countdown_score(completions, nums=nums, target=target) == [1.0, 0.1, 0.1, 0.0, 0.0]


def test_benign_completion_is_fast():
    comps = [f"<think>{'let me try 3 + 4 = 7, no. ' * 20}</think>\n<answer>(25 - 3) * 4 + {i}</answer>" for i in range(1000)]
    nums, target = [[25, 3, 4, i] for i in range(1000)], [88 + i for i in range(1000)]
    start = time.perf_counter()
    out = countdown_equation_reward(comps, nums=nums, target=target)
    per_item = (time.perf_counter() - start) / len(comps)
    assert out == [1.0] * 1000
    assert per_item < 1e-3, f"{per_item * 1e6:.0f} us per completion"


# ---------------------------------------------------------------------------------- property-based tests

PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
ATOM = 3


def combine(a, b, op):
    if a is None or b is None:
        return None
    if op == "/":
        return None if b == 0 else a / b
    return a + b if op == "+" else a - b if op == "-" else a * b


@st.composite
def expressions(draw, max_leaves=6, signed=False):
    """A random expression tree rendered with minimal (plus some extra) parentheses: (text, Fraction|None, leaves).

    ``signed``: some operands, numbers or parenthesized groups, carry one sign.
    """
    leaves = draw(st.lists(st.integers(0, 999), min_size=1, max_size=max_leaves))
    ws = st.sampled_from(["", " ", "  ", "\n", "\t"])
    signs = st.sampled_from(["", "", "", "-", "+"] if signed else [""])
    nodes = []
    for v in leaves:
        sign = draw(signs)
        nodes.append((f"{sign}{draw(ws) if sign else ''}{v}", Fraction(-v if sign == "-" else v), ATOM))
    while len(nodes) > 1:
        a = nodes.pop(draw(st.integers(0, len(nodes) - 1)))
        b = nodes.pop(draw(st.integers(0, len(nodes) - 1)))
        op = draw(st.sampled_from("+-*/"))
        p = PREC[op]
        left = a[0] if a[2] >= p else f"({a[0]})"
        right = b[0] if b[2] > p or (b[2] == p and op in "+*") else f"({b[0]})"
        text, prec = f"{left}{draw(ws)}{op}{draw(ws)}{right}", p
        value = combine(a[1], b[1], op)
        if draw(st.booleans()) and draw(st.booleans()):
            sign = draw(signs)
            text, prec = f"{sign}({draw(ws)}{text}{draw(ws)})", ATOM
            value = -value if sign == "-" and value is not None else value
        nodes.append((text, value, prec))
    return nodes[0][0], nodes[0][1], leaves


@FUZZ
@given(expressions(), st.randoms())
def test_random_expressions_agree_with_fraction_oracle(expr, rnd):
    text, value, leaves = expr
    nums = leaves[:]
    rnd.shuffle(nums)
    got = evaluate_expression(text)
    if value is None:
        assert got is None
        assert score(text, nums, 0) == 0.0
        return
    assert got is not None and Fraction(*got) == value
    if value.denominator == 1:
        assert score(text, nums, int(value)) == 1.0
        assert score(text, nums, int(value) + 1) == 0.0
        assert score(text, nums + [1], int(value)) == 0.0  # a number left unused
    else:
        assert score(text, nums, math.floor(value)) == 0.0
        assert score(text, nums, math.ceil(value)) == 0.0


@FUZZ
@given(expressions(signed=True), st.randoms())
def test_signed_expressions_agree_with_fraction_oracle(expr, rnd):
    text, value, leaves = expr
    got = evaluate_expression(text)
    assert (got is None) if value is None else (got is not None and Fraction(*got) == value), (text, got, value)
    if value is not None and value.denominator == 1:
        nums = leaves[:]
        rnd.shuffle(nums)
        assert score(text, nums, int(value)) == 1.0 and score(text, nums, int(value) + 1) == 0.0


def _values(items: tuple, signed: bool) -> set:
    """Every value of every expression over ``items`` (each once), optionally with a sign on any operand."""
    if len(items) == 1:
        return {items[0], -items[0]} if signed else {items[0]}
    out = set()
    for mask in range(1, 2 ** len(items) - 1):
        left = tuple(x for i, x in enumerate(items) if mask >> i & 1)
        right = tuple(x for i, x in enumerate(items) if not mask >> i & 1)
        for a in _values(left, signed):
            for b in _values(right, signed):
                out |= {a + b, a - b, a * b} | ({a / b} if b else set())
    return out | {-v for v in out} if signed else out


def test_signs_reach_no_positive_target_that_binary_operators_cannot():
    """Why accepting a sign opens no hack: on non-negative numbers, signs add no positive value (exhaustive)."""
    rng = __import__("random").Random(0)
    new_negatives = 0
    for _ in range(40):
        items = tuple(Fraction(rng.randint(0, 9)) for _ in range(rng.choice([2, 3, 3, 4])))
        signed, plain = _values(items, True), _values(items, False)
        assert {v for v in signed if v > 0} == {v for v in plain if v > 0}, items
        new_negatives += bool({v for v in signed if v < 0} - plain)
    assert new_negatives  # the check has teeth: signs do reach values binary operators cannot (negative ones)


def _mutations(text: str) -> list[str]:
    """Ways to break a valid expression that earlier scorers let through or that must never parse."""
    start = next(i for i, ch in enumerate(text) if ch.isdigit())  # the first number
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    out = [
        text[:start] + "--" + text[start:],  # two signs in a row
        text[:start] + "+-" + text[start:],
        text[:end] + ".5" + text[end:],  # decimal point
        text[:start] + "٣" + text[start + 1:],  # unicode digit
        "()" + text,
        text + " + " + text[start:end],  # a number used twice
        text + "=",
        text[:end] + "_0" + text[end:],
    ]
    for op in "+-*/":
        i = text.find(op)
        if i >= 0:
            out += [text[:i] + "**" + text[i + 1:], text[:i] + "//" + text[i + 1:]]
    return out


@FUZZ
@given(expressions())
def test_invalid_mutations_score_zero(expr):
    text, value, leaves = expr
    target = int(value) if value is not None and value.denominator == 1 else 0
    for mutated in _mutations(text):
        assert score(mutated, leaves, target) == 0.0, mutated


PIECES = ["<answer>", "</answer>", "<think>", "</think>", "1", "23", "+", "-", "*", "/", "(", ")", " ", "\n",
          "**", "//", ".", "٣", "x", "=", "\x00"]


@FUZZ
@given(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=40).map("".join),
    st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.integers(-5, 30), max_size=5),
              st.lists(st.one_of(st.text(max_size=3), st.floats(), st.none()), max_size=4)),
    st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=10), st.lists(st.integers(), max_size=2)),
)
def test_random_text_never_raises(text, nums, target):
    for func, allowed in [(countdown_equation_reward, {0.0, 1.0}), (tinyzero_countdown_score, {0.0, 0.1, 1.0}),
                          (mini_r1_equation_reward, {0.0, 1.0}), (mini_r1_format_reward, {0.0, 1.0})]:
        for completions in ([text], [[{"role": "assistant", "content": text}]]):
            out = func(completions, nums=[nums], target=[target])
            assert len(out) == 1 and out[0] in allowed


def test_weird_completion_objects_score_zero():
    weird = [None, 3, 2.5, b"<answer>1</answer>", {"content": "<answer>1</answer>"}, [[]], [None], object(),
             [{"role": "assistant", "content": None}], [{"role": "assistant", "content": 7}]]
    assert countdown_equation_reward(weird, nums=[[1]] * len(weird), target=[1] * len(weird)) == [0.0] * len(weird)
    assert tinyzero_countdown_score(weird, nums=[[1]] * len(weird), target=[1] * len(weird)) == [0.0] * len(weird)
    assert countdown_equation_reward(None) == [] and countdown_equation_reward(42) == []


# ------------------------------------------------------------------------- the bounds, exactly at their edges


def test_the_depth_cap_counts_nesting_not_parentheses():
    # 33 "(" in all but never deeper than MAX_DEPTH: a valid answer, however the parentheses are spread.
    deep = "(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH + " + (2)"
    assert score(deep, [1, 2], 3) == 1.0 and evaluate_expression(deep) == (3, 1)
    shallow = " + ".join(f"({n})" for n in range(1, MAX_DEPTH + 2))  # 33 groups of depth 1
    total = (MAX_DEPTH + 1) * (MAX_DEPTH + 2) // 2
    assert score(shallow, list(range(1, MAX_DEPTH + 2)), total) == 1.0


def test_the_answer_length_cap_is_inclusive():
    at_cap = "1 +" + " " * (MAX_ANSWER_CHARS - 4) + "2"
    assert len(at_cap) == MAX_ANSWER_CHARS and score(at_cap, [1, 2], 3) == 1.0
    assert evaluate_expression(at_cap) == (3, 1) and evaluate_expression(at_cap + " ") is None
    assert score(at_cap + " ", [1, 2], 3) == 0.0


def test_evaluate_expression_refuses_without_raising():
    assert evaluate_expression(None) is None and evaluate_expression(b"1+2") is None
    assert evaluate_expression("1 + 2x") is None  # a character outside the grammar, even one the tokenizer skips
    assert evaluate_expression("2 * * 3") is None and evaluate_expression("2 + )") is None


def test_byte_and_text_columns_are_read_as_ascii_integers():
    c = ["<answer>10 - 4</answer>"]
    assert countdown_equation_reward(c, nums=[b"[10, 4]"], target=[b" 6 "]) == [1.0]
    assert countdown_equation_reward(c, nums=[b"10 4"], target=[6]) == [1.0]
    # non-ASCII bytes are not numbers, and scoring them never raises
    assert countdown_equation_reward(c, nums=[b"10 4\xff"], target=[b"6\xff"]) == [0.0]
    assert tinyzero_countdown_score(c, nums=[b"10 4\xff"], target=[6]) == [0.1]
    assert tinyzero_countdown_score(c, nums=[[10, 4]], target=[b"6\xff"]) == [0.1]


def test_a_target_given_as_text_is_at_most_64_characters():
    c = ["<answer>10 - 4</answer>"]
    assert countdown_equation_reward(c, nums=[[10, 4]], target=["0" * 63 + "6"]) == [1.0]
    assert countdown_equation_reward(c, nums=[[10, 4]], target=["0" * 64 + "6"]) == [0.0]
    assert countdown_equation_reward(c, nums=[[10, 4]], target=["six"]) == [0.0]
    assert tinyzero_countdown_score(c, nums=[[10, 4]], target=["six"]) == [0.1]


def test_a_nums_text_is_at_most_4096_characters():
    c = ["<answer>10 - 4</answer>"]
    at_cap = "10, 4" + " " * (4096 - 5)
    assert countdown_equation_reward(c, nums=[at_cap], target=[6]) == [1.0]
    assert countdown_equation_reward(c, nums=[at_cap + " "], target=[6]) == [0.0]


def test_booleans_are_not_numbers_and_index_types_are():
    class Count:  # an integer type known only by __index__ (a 0-d integer tensor is one)
        def __index__(self):
            return 1

    c = ["<answer>4 - 3</answer>"]
    assert countdown_equation_reward(c, nums=[[4, 3]], target=[True]) == [0.0]
    assert countdown_equation_reward(c, nums=[[4, 3]], target=[Count()]) == [1.0]
    assert countdown_equation_reward(["<answer>1 * 1</answer>"], nums=[[True, 1]], target=[1]) == [0.0]
    assert tinyzero_countdown_score(c, nums=[5], target=[1]) == [0.1]  # a number where a list belongs


def test_a_scorer_error_scores_zero_not_one(monkeypatch):
    import tinyzero_trl.rewards.countdown as countdown

    def broken(tokens):
        raise RuntimeError("scorer bug")

    monkeypatch.setattr(countdown, "_evaluate_tokens", broken)
    assert countdown_equation_reward(["<answer>1 + 2</answer>"], nums=[[1, 2]], target=[3]) == [0.0]
