"""What ``eval`` would make of an arithmetic answer, computed without ``eval``: the peers' scorers, re-expressed.

TinyZero's and Mini-R1's countdown scorers check the answer's digit runs against the given numbers, allow
only the characters ``0-9 + - * / ( ) .`` and whitespace, ``eval`` the text and compare the value with the
target within 1e-5. Scoring like them means accepting what Python's grammar accepts on those characters:
unary signs (``-3``, ``--3``), ``**`` (right-associative, binding tighter than a unary sign on its left),
``//``, decimal literals (``1.5``, ``1.``, ``.5``), and rejecting what it rejects (``07``, ``1 2``, ``()``).

:func:`python_value` tokenizes against that grammar and computes with Python's own ``int`` and ``float``
operators, so its values are the ones ``eval`` gives (``1/3*3 == 1.0``, ``1//.1 == 9.0``), with bounded work:
a power whose result would pass MAX_POWER_BITS, more than MAX_LITERALS numbers, a literal over
MAX_LITERAL_DIGITS digits, nesting deeper than CPython's 200 levels or more than MAX_SIGNS signs in a row
counts as "could not evaluate", where ``eval`` would compute a huge number, fail, or hang. No code is ever
executed.
"""

from __future__ import annotations

import math
import operator
import re

MAX_NESTING = 200  # CPython's tokenizer refuses a 201st open parenthesis ("too many nested parentheses")
MAX_SIGNS = 1000  # signs in a row; CPython compiles about 2000 and fails past ~3000 (RecursionError)
MAX_POWER_BITS = 4096  # a power result larger than this counts as "could not evaluate" (eval might hang)
MAX_LITERALS = 1000  # CPython compiles ~2000-term chains and fails past ~3000; products stay < 64k digits
MAX_LITERAL_DIGITS = 64

# ASCII only: eval rejects non-ASCII digits and whitespace that `\d` and `\s` let through the peers' filters.
_TOKEN = re.compile(r"[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+|\*\*|//|[-+*/()]|[ \t\f]+|[\r\n]+|.", re.S)
_DIGIT_RUN = re.compile(r"\d+")  # the peers' number check: unicode digit runs, as `re.findall(r"\d+")` finds them
_BINARY = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "**": 4}
_UNARY = 3  # above * / //, below ** (so -2**2 == -4 and 2**-1 == 0.5, as in Python)


class _Undefined(Exception):
    """The expression has no value eval would give (syntax error, division by zero, overflow, complex)."""


def _power(base, exp):
    big = type(base) is int and type(exp) is int and exp > 0 and abs(base) > 1
    if big and exp * math.log2(abs(base)) > MAX_POWER_BITS + 1:  # never compute what would be dropped
        raise _Undefined
    out = base**exp  # int ** negative int and anything with a float give a float, as in Python
    if big and out.bit_length() > MAX_POWER_BITS:
        raise _Undefined
    if isinstance(out, complex):  # a negative base to a fractional power: never within 1e-5 of a target
        raise _Undefined
    return out


_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "//": operator.floordiv, "**": _power}


def _apply(op: str, a, b):
    try:
        return _OPERATORS[op](a, b)
    except (ZeroDivisionError, OverflowError) as err:
        raise _Undefined from err


def _reduce(ops: list, vals: list) -> None:
    op = ops.pop()
    if op == "u-":
        vals[-1] = -vals[-1]
    elif op != "u+":
        b = vals.pop()
        vals[-1] = _apply(op, vals[-1], b)


def _prec(op: str) -> int:
    return _UNARY if op in ("u+", "u-") else _BINARY.get(op, 0)


def python_value(expr: str) -> int | float | None:
    """The value ``eval(expr.strip())`` would have, or ``None`` where it would raise (or is outside the bounds).

    Both peers strip the answer before ``eval``, so leading and trailing whitespace never reaches it. Never
    evaluates code and never raises: the text is tokenized against Python's arithmetic grammar and reduced
    with an operator stack (no recursion, so nesting cannot overflow the interpreter's stack).
    """
    if not isinstance(expr, str):
        return None
    expr = expr.strip()
    ops: list[str] = []
    vals: list = []
    depth, literals, signs, expect_operand = 0, 0, 0, True
    try:
        for match in _TOKEN.finditer(expr):
            tok = match.group()
            first = tok[0]
            if first in " \t\f":
                continue
            if first in "\r\n":
                if depth == 0:  # a line break ends the expression outside parentheses
                    raise _Undefined
                continue
            if expect_operand:
                if first in "0123456789.":
                    if len(tok) > MAX_LITERAL_DIGITS or tok == "." or literals == MAX_LITERALS:
                        raise _Undefined
                    if "." in tok:
                        vals.append(float(tok))
                    elif len(tok) > 1 and tok[0] == "0" and tok.strip("0"):
                        raise _Undefined  # "07": leading zeros in a decimal integer are a SyntaxError
                    else:
                        vals.append(int(tok))
                    literals += 1
                    expect_operand, signs = False, 0
                elif tok in ("+", "-"):
                    signs += 1
                    if signs > MAX_SIGNS:
                        raise _Undefined
                    ops.append("u" + tok)
                elif tok == "(":
                    depth += 1
                    if depth > MAX_NESTING:
                        raise _Undefined
                    ops.append("(")
                    signs = 0
                else:
                    raise _Undefined
                continue
            if tok == ")":
                if depth == 0:
                    raise _Undefined
                while ops[-1] != "(":
                    _reduce(ops, vals)
                ops.pop()
                depth -= 1
                continue
            prec = _BINARY.get(tok)
            if prec is None:  # a number, "(" or any other character right after an operand
                raise _Undefined
            # ** is right-associative and its left operand binds before a unary sign; the rest left-associative.
            while ops and ops[-1] != "(" and (_prec(ops[-1]) > prec or (_prec(ops[-1]) == prec and tok != "**")):
                _reduce(ops, vals)
            ops.append(tok)
            expect_operand = True
        if expect_operand or depth:
            raise _Undefined
        while ops:
            _reduce(ops, vals)
        return vals[0]
    except (_Undefined, IndexError, ValueError, TypeError):
        return None


def digit_runs_match(equation: str, nums: list[int]) -> bool:
    """The peers' number check: the digit runs, read as integers, are exactly the given numbers (a multiset)."""
    runs = []
    for match in _DIGIT_RUN.finditer(equation):  # stop at the first run too many: bounded on any input
        run = match.group()
        if len(runs) == len(nums) or len(run) > MAX_LITERAL_DIGITS:
            return False
        runs.append(int(run))  # int() reads unicode digits too, as the peers' int(n) does
    return sorted(runs) == sorted(nums)


def near_target(value, target: int) -> bool:
    """The peers' ``abs(value - target) < 1e-5``."""
    try:
        return abs(value - target) < 1e-5
    except (OverflowError, TypeError):
        return False
