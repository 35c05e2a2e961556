"""Countdown rewards on a small exact parser: no eval, no floats, bounded work on any input.

An answer is the text inside the LAST ``<answer>...</answer>`` block. It is accepted only when it is an
expression in the grammar

    expr := term (("+" | "-") term)*      term := atom (("*" | "/") atom)*
    atom := ["+" | "-"] (INT | "(" expr ")")

with ASCII integer literals, ASCII whitespace anywhere between tokens, every given number used exactly once,
and a value exactly equal to the target. Everything else (``**``, ``//``, decimals, a second sign in a row
such as ``--3`` or ``+-3``, unicode digits, any other character, division by zero, empty parentheses) is
rejected, because each is a way earlier eval-based scorers were gamed or hung.

One sign per operand (``-19 + 36 + 55 - 7``, ``2 * -3``, ``-(4 - 9)``) is accepted: it opens no hack. With
non-negative numbers, each used once, every value an expression with signs reaches is +v or -v for a value v
that binary + - * / reach on the same numbers, and when -v is positive so is some binary expression's value
(negate the subtree that made it negative: -(a+b) = (-a)-b, -(a-b) = b-a, -(a*b) = (-a)*b, ...). So signs
add no solvable task and no target; they only allow another spelling of a solution.

Arithmetic is on (numerator, denominator) int pairs without reduction: an answer is at most
MAX_ANSWER_CHARS long with literals of at most MAX_DIGITS digits, so the pairs stay a few hundred digits at
worst and no gcd is needed; equality with the target is a cross-multiplication.
"""

from __future__ import annotations

import re

from tinyzero_trl.rewards.format import completion_texts, last_answer

MAX_ANSWER_CHARS = 512  # longer answers are rejected before tokenizing
MAX_DEPTH = 32  # deepest parenthesis nesting accepted
MAX_DIGITS = 12  # longest integer literal accepted

FORMAT_SCORE = 0.1  # TinyZero: an answer is present but wrong
CORRECT_SCORE = 1.0

# ASCII only: "[0-9]" not "\d" (which matches unicode digits) and explicit whitespace, not "\s".
_ALLOWED = re.compile(r"[0-9+\-*/() \t\n\r\f\v]*")
_TOKEN = re.compile(r"[0-9]+|[-+*/()]")
_NUMBER = re.compile(r"[0-9]+")
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_SEPARATORS = re.compile(r"[\s,\[\]()]+")
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _evaluate_tokens(tokens: list[str]) -> tuple[int, int] | None:
    """Exact value of a token list from ``_TOKEN`` as ``(numerator, denominator)``, or ``None`` if invalid.

    Iterative shunting-yard (no recursion) that tracks whether an operand or an operator comes next, so a
    second sign in a row, ``**``, ``//``, ``()``, juxtaposed numbers and stray parentheses are all grammar
    errors. A sign binds to its operand alone: a negated number is pushed negated, a negated "(" is pushed as
    "(-" and negates its value when it closes. The whole expression is implicitly parenthesized: a final
    ")" reduces everything and checks the balance.
    """
    if tokens.count("(") > MAX_DEPTH:  # only then can nesting exceed the cap: check before any arithmetic
        depth = 0
        for tok in tokens:
            depth += (tok == "(") - (tok == ")")
            if depth > MAX_DEPTH:
                return None
    ops = ["("]
    nums: list[int] = []  # numerators and denominators as parallel stacks: no tuple or Fraction churn
    dens: list[int] = []
    expect_operand, sign = True, ""
    for tok in tokens + [")"]:
        if expect_operand:
            if tok in ("+", "-") and not sign:
                sign = tok
            elif tok == "(":
                ops.append("(-" if sign == "-" else "(")
                sign = ""
            elif tok[0] in "0123456789" and len(tok) <= MAX_DIGITS:
                nums.append(-int(tok) if sign == "-" else int(tok))
                dens.append(1)
                expect_operand, sign = False, ""
            else:
                return None  # a second sign, "*", "/" or ")" where a number or "(" must come
            continue
        if tok == ")":
            prec = 0  # reduce down to the matching "("
        else:
            prec = _PREC.get(tok)
            if prec is None:
                return None  # a number or "(" right after an operand (no implicit multiplication)
        while ops and ops[-1][0] != "(" and _PREC[ops[-1]] >= prec:  # >=: left-associative
            op = ops.pop()
            bn, bd = nums.pop(), dens.pop()
            an, ad = nums[-1], dens[-1]
            if op == "+":
                nums[-1], dens[-1] = an * bd + bn * ad, ad * bd
            elif op == "-":
                nums[-1], dens[-1] = an * bd - bn * ad, ad * bd
            elif op == "*":
                nums[-1], dens[-1] = an * bn, ad * bd
            elif bn:
                nums[-1], dens[-1] = an * bd, ad * bn
            else:
                return None  # division by zero
        if prec:
            ops.append(tok)
            expect_operand = True
        elif ops:
            if ops.pop() == "(-":
                nums[-1] = -nums[-1]
        else:
            return None  # a ")" without its "(" (a stray one closed the implicit "(" early)
    if ops:
        return None  # an unclosed "("
    return nums[0], dens[0]


def evaluate_expression(expr: str) -> tuple[int, int] | None:
    """Exact value of a countdown expression as ``(numerator, denominator)``, or ``None`` if invalid.

    Applies the same bounds as the reward (length, characters, literal length, nesting) before arithmetic.
    """
    if not isinstance(expr, str) or len(expr) > MAX_ANSWER_CHARS or not _ALLOWED.fullmatch(expr):
        return None
    return _evaluate_tokens(_TOKEN.findall(expr))


def _as_int(value) -> int | None:
    """An integer-like value as ``int`` (int, numpy integer, integral float, integer string), else ``None``."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, bytes)):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        if len(text) > 64 or not _INT_TEXT.fullmatch(text):
            return None
        return int(text)
    try:
        if hasattr(value, "is_integer"):  # float, numpy float, Fraction, Decimal
            return int(value) if value.is_integer() else None
        return int(value.__index__())  # numpy and other integer types
    except Exception:
        return None


def _as_sorted_ints(nums) -> list[int] | None:
    """The given numbers as a sorted int list (the multiset to match), or ``None`` if any is not an integer."""
    if type(nums) is list and set(map(type, nums)) <= {int}:  # the common case, at C speed
        return sorted(nums)
    if isinstance(nums, (str, bytes)):
        text = nums.decode("ascii", "replace") if isinstance(nums, bytes) else nums
        if len(text) > 4096:
            return None
        nums = [p for p in _SEPARATORS.split(text) if p]
    try:
        out = [_as_int(x) for x in nums]
    except Exception:  # not iterable
        return None
    if any(x is None for x in out):
        return None
    return sorted(out)


def answer_is_correct(answer: str, nums, target) -> bool:
    """True iff ``answer`` uses each of ``nums`` exactly once and equals ``target`` exactly."""
    try:
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS or not _ALLOWED.fullmatch(answer):
            return False
        want = _as_sorted_ints(nums)
        goal = _as_int(target)
        if want is None or goal is None:
            return False
        literals = _NUMBER.findall(answer)
        # Cheap multiset check first: most wrong answers fail here without any arithmetic.
        if len(literals) != len(want) or max(map(len, literals), default=0) > MAX_DIGITS:
            return False
        if sorted(map(int, literals)) != want:
            return False
        value = _evaluate_tokens(_TOKEN.findall(answer))
        if value is None:
            return False
        num, den = value
        return num == goal * den
    except Exception:  # belt and braces: a reward must never take the trainer down
        return False


def _column(values, i):
    try:
        return values[i]
    except Exception:
        return None


def countdown_equation_reward(completions, nums=None, target=None, **kwargs) -> list[float]:
    """1.0 when the last ``<answer>`` block is an exact, valid countdown solution, else 0.0.

    ``nums`` and ``target`` are the dataset columns (one entry per completion); extra keyword arguments are
    ignored. Never raises: malformed completions or columns score 0.0.
    """
    out = []
    for i, text in enumerate(completion_texts(completions)):
        answer = last_answer(text) if text is not None else None
        ok = answer is not None and answer_is_correct(answer, _column(nums, i), _column(target, i))
        out.append(1.0 if ok else 0.0)
    return out
