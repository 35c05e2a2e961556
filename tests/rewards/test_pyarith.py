"""python_value: the value eval would give on the peers' character set, without eval, within bounds."""

from __future__ import annotations

import math
import time
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero_trl.rewards.pyarith import (
    MAX_NESTING,
    MAX_POWER_BITS,
    digit_runs_match,
    near_target,
    python_value,
)


def eval_value(text: str):
    """The oracle: eval on a stripped test string, as the peers call it; None where it raises or gives a
    non-number (e.g. a tuple)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # "2(3)": 'int' object is not callable
            out = eval(text.strip(), {"__builtins__": None}, {})  # noqa: S307 - test oracle on generated strings
    except Exception:
        return None
    return out if isinstance(out, (int, float)) and not isinstance(out, bool) else None


@pytest.mark.parametrize(
    "text",
    ["07", "00", "00+1", "1.", ".5", "1..2", "1.2.3", "(1+\r2)", "1+\r2", "1+\x0b2", "1+\x0c2", "(1+\n2)", "1+\n2",
     "--3", "+-3", "-+-3", "2**-1", "-2**2", "2**3**2", "2**-1*3", "2*-3**2", "7//2", "-7//2", "7.5//2", "1//.1",
     "()", "(1)(2)", "2(3)", "1 2", "4**0.5", "0**-1", "0**0", "1/0", "1 + ", "", "+", "3.0", "03.5", "1/3*3",
     "-(4 - 9)", "((((2))))", "2 ** 10 // 3 / 4 - -1", "(-8)**(1/3)", "٣+4", "３+4", "3\u2003+4", "\x00"],
)
def test_agrees_with_eval(text):
    want, got = eval_value(text), python_value(text)
    assert type(got) is type(want) and (got == want or (isinstance(got, float) and math.isnan(got))), (text, got)


def test_bounds_where_eval_would_compute_huge_numbers_or_refuse():
    assert python_value("9**9**9**9") is None  # eval would not finish
    assert python_value("2**4096") is None and python_value("2**4095") == 2**4095  # 4097 and 4096 bits
    assert python_value("3**(12*12*(12+3))") == 3**2160  # 3424 bits: the bound is on the result, exactly
    assert python_value("1**99999999999") == 1 and python_value("(-1)**99999999999") == -1
    assert python_value("(" * MAX_NESTING + "1" + ")" * MAX_NESTING) == 1
    assert python_value("(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1)) is None
    assert python_value("+".join(["1"] * 1001)) is None and python_value("+".join(["1"] * 1000)) == 1000
    assert python_value("-" * 1001 + "1") is None and python_value("-" * 1000 + "1") == 1
    assert python_value("1" * 65) is None
    assert MAX_POWER_BITS == 4096


TOKENS = ["0", "1", "2", "3", "07", "00", "12", "3.5", ".5", "1.", "+", "-", "*", "/", "//", "**", "(", ")", " ",
          "\t", "\n"]


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14).map("".join))
def test_random_token_strings_agree_with_eval(text):
    if text.count("**") > 2:  # keep the oracle's own eval quick
        return
    want, got = eval_value(text), python_value(text)
    if isinstance(want, int) and want.bit_length() > MAX_POWER_BITS:
        assert got is None
    elif isinstance(want, float) and math.isnan(want):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert type(got) is type(want) and got == want, (text, got, want)


def test_digit_runs_and_tolerance():
    assert digit_runs_match("1.5 * 2", [1, 5, 2]) and digit_runs_match("٣ + 4", [3, 4])  # unicode digits count
    assert not digit_runs_match("15 - 5", [1, 5, 5]) and not digit_runs_match("1 + 1", [1])
    assert not digit_runs_match("9" * 10**6, [9]) and not digit_runs_match("1 " * 10**6, [1])  # bounded
    assert digit_runs_match("007 + 1", [7, 1])  # as int("007") reads it; eval then refuses the literal
    assert near_target(7 + 1 / 1000000, 7) and not near_target(7.0001, 7)
    assert not near_target(float("nan"), 7) and not near_target(None, 7)


def test_power_bound_at_its_edges():
    assert python_value("3**2584") == 3**2584  # 4095.5 * log2: a 4096-bit result, inside the bound
    assert python_value("(2**4000*2**4000)**1") is None  # a power's result is bounded even with exponent 1
    assert python_value("(2**4000*2**4000)**0") == 1
    start = time.perf_counter()
    assert python_value("9" * 64 + "**300000") is None  # refused before computing: eval would take seconds
    assert time.perf_counter() - start < 5


def test_literal_and_sign_bounds_at_their_edges():
    assert python_value("9" * 64) == int("9" * 64) and python_value("9" * 63 + ".") == float("9" * 63)
    assert python_value("1+" + "-" * 1000 + "1") == 2  # the sign count restarts after every operand
    assert python_value("1+" + "-" * 1001 + "1") is None
    assert python_value("(" + "-" * 1000 + "1)") == 1 and python_value("(" + "-" * 1001 + "1)") is None


def test_unary_plus_binds_like_unary_minus():
    assert python_value("2*+3-1") == 5 and python_value("2*-3-1") == -7


def test_what_eval_refuses_is_none_never_an_exception():
    for text in ("2*(3", "(1+2", "1X+2", "(1 X+ 2)", "1+"):
        assert python_value(text) is None, text


def test_digit_runs_and_tolerance_at_their_edges():
    assert digit_runs_match("9" * 64, [int("9" * 64)]) and not digit_runs_match("9" * 65, [int("9" * 65)])
    assert not near_target(1e-5, 0)  # strictly within 1e-5, as the peers' `<`
    assert python_value("1/100000") == 1e-5
