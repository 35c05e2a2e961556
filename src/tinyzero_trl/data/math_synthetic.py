"""Synthetic competition-style math for the math-tiny miniature: small equations and products of fractions.

Three families: ``linear`` (``3x + 5 = 11``), ``equation`` (``\\frac{2}{3}x = \\frac{5}{6}``) and ``product``
(``\\frac{2}{3} \\cdot \\frac{3}{4}``). Every answer is an exact rational number, and the gold answer is written
in lowest terms (``\\frac{3}{2}``, ``-\\frac{5}{3}``, ``2``), while a correct worked answer is often not:
``\\frac{6}{4}``, ``-10/6``, ``\\frac{6}{3}``.
So a reward has to judge equivalence (math-verify), not compare strings. The gold is given the way the hub
datasets give it: training rows as AI-MO/NuminaMath-TIR gives them (``problem`` and ``solution``, a worked
solution ending in ``\\boxed{}``), held-out rows as HuggingFaceH4/MATH-500's ``answer`` column (``problem`` and
``answer``, bare LaTeX), which ``load_math`` turns into the ``solution`` the reward reads, as it does for the hub.

The problem space is small (about 11,500 problems), so train and held-out problems are split by a stable hash
of the problem itself (``is_heldout``), as countdown's generator does: no held-out problem is ever trained on.
Rows cycle through the families, so each has a third of the rows whatever its size.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from fractions import Fraction

import datasets

from tinyzero_trl.data.sources import DataError

FAMILIES = ("linear", "equation", "product")
# Parameter ranges. linear: a x + b = c, a x - b = c and a x = c; equation: (a/b) x = c/d; product: (a/b) * (c/d).
COEF = range(2, 10)  # a in linear; the denominators b, d of the fractions
SHIFT = range(1, 7)  # b in linear
RHS = range(1, 13)  # c in linear
NUMER = range(1, 10)  # the numerators a, c of the fractions
HELDOUT_FRACTION = 0.1


@dataclass(frozen=True)
class Problem:
    """One problem: ``family`` and its integers. linear: ``a x op b = c`` (``op`` "+", "-" or "" for a x = c);
    equation: ``(a/b) x = c/d``; product: ``(a/b) * (c/d)``."""

    family: str
    a: int
    b: int
    c: int
    d: int = 0
    op: str = ""

    @property
    def text(self) -> str:
        """The problem as a MATH-style statement with inline LaTeX."""
        if self.family == "linear":
            lhs = f"{self.a}x" + (f" {self.op} {self.b}" if self.op else "")
            return f"Solve for $x$: ${lhs} = {self.c}$."
        if self.family == "equation":
            return f"Solve for $x$: $\\frac{{{self.a}}}{{{self.b}}}x = \\frac{{{self.c}}}{{{self.d}}}$."
        return f"Compute $\\frac{{{self.a}}}{{{self.b}}} \\cdot \\frac{{{self.c}}}{{{self.d}}}$."

    @property
    def value(self) -> Fraction:
        """The exact answer."""
        if self.family == "linear":
            return Fraction(self.rhs, self.a)
        if self.family == "equation":
            return Fraction(self.c * self.b, self.d * self.a)
        return Fraction(self.a * self.c, self.b * self.d)

    @property
    def rhs(self) -> int:
        """linear: what ``a x`` equals once ``b`` is moved across (c - b, c + b, or c)."""
        return self.c - self.b if self.op == "+" else self.c + self.b if self.op == "-" else self.c


def latex(value: Fraction) -> str:
    """A rational in lowest terms as MATH writes it: ``2``, ``-3``, ``\\frac{3}{2}``, ``-\\frac{5}{3}``."""
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def worked_solution(p: Problem) -> str:
    """A worked solution ending in ``\\boxed{}``, the form of NuminaMath-TIR's ``solution`` column."""
    answer = f"\\boxed{{{latex(p.value)}}}"
    if p.family == "linear":
        steps = []
        if p.op == "+":
            steps.append(f"Subtract ${p.b}$ from both sides: ${p.a}x = {p.rhs}$.")
        elif p.op == "-":
            steps.append(f"Add ${p.b}$ to both sides: ${p.a}x = {p.rhs}$.")
        steps.append(f"Divide both sides by ${p.a}$: $x = {answer}$.")
        return " ".join(steps)
    if p.family == "equation":
        (m, n), (u, v), lead = (p.c, p.b), (p.d, p.a), f"Multiply both sides by $\\frac{{{p.b}}}{{{p.a}}}$: $x = "
    else:
        (m, n), (u, v), lead = (p.a, p.c), (p.b, p.d), "Multiply the numerators and the denominators: $"
    product = f"\\frac{{{m * n}}}{{{u * v}}}"
    steps = [f"\\frac{{{m} \\cdot {n}}}{{{u} \\cdot {v}}}"]
    if latex(p.value) != product:  # not yet in lowest terms: show the product, then reduce it
        steps.append(product)
    return lead + " = ".join(steps + [answer]) + "$."


def all_problems(families: tuple[str, ...] = FAMILIES) -> list[Problem]:
    """Every problem of the space, in a fixed order."""
    unknown = set(families) - set(FAMILIES)
    if unknown or not families:
        raise DataError(f"data.generate.families={list(families)}: choose from {list(FAMILIES)}")
    out = []
    if "linear" in families:
        out += [Problem("linear", a, b, c, op=op) for a in COEF for op in "+-" for b in SHIFT for c in RHS]
        out += [Problem("linear", a, 0, c) for a in COEF for c in RHS]
    for family in ("equation", "product"):
        if family in families:
            out += [Problem(family, a, b, c, d) for a in NUMER for b in COEF for c in NUMER for d in COEF]
    return out


def is_heldout(problem: Problem | str) -> bool:
    """Whether a problem belongs to the held-out split: a stable hash of its statement."""
    text = problem if isinstance(problem, str) else problem.text
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") < HELDOUT_FRACTION * 2**32


def split_problems(families: tuple[str, ...] = FAMILIES) -> dict[str, tuple[list[Problem], list[Problem]]]:
    """The space split by ``is_heldout``, per family: ``{family: (train side, held-out side)}``, in fixed order."""
    out = {}
    for family in families:
        problems = all_problems((family,))
        out[family] = ([p for p in problems if not is_heldout(p)], [p for p in problems if is_heldout(p)])
    return out


def draw(sides: dict[str, list[Problem]], count: int, rng: random.Random, *, distinct: bool) -> list[Problem]:
    """``count`` problems, the families in turn (a third each); ``distinct``: no repeats.

    The first ``n`` rows are the same whatever ``count`` is, so a smaller test set is a prefix of a larger one.
    """
    families = sorted(sides)
    if not distinct:
        return [rng.choice(sides[families[k % len(families)]]) for k in range(count)]
    pools = {f: rng.sample(sides[f], len(sides[f])) for f in families}
    for k, f in enumerate(families):
        need = (count - k + len(families) - 1) // len(families)
        if need > len(pools[f]):
            raise DataError(f"data.num_test={count}: only {len(pools[f])} held-out {f} problems exist, "
                            f"and each family gets a third of the test set")
    return [pools[families[k % len(families)]][k // len(families)] for k in range(count)]


def generate_math(num_train: int = 10_000, num_test: int = 200, *, seed: int = 0,
                  families: list[str] | tuple[str, ...] = FAMILIES, **unknown) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Train rows (``problem``, ``solution``) and distinct held-out rows (``problem``, ``answer``) for ``seed``.

    Training rows are drawn with replacement from the train side (the space is small; a long run sees a problem
    more than once); held-out rows are distinct. The same arguments give the same rows.
    """
    if unknown:
        raise DataError(f"data.generate: unknown key(s) {sorted(unknown)}; math accepts seed and families")
    split = split_problems(tuple(families))
    rng = random.Random(seed)
    test = draw({f: held for f, (_, held) in split.items()}, num_test, rng, distinct=True)
    train = draw({f: side for f, (side, _) in split.items()}, num_train, rng, distinct=False)
    return (
        datasets.Dataset.from_dict({"problem": [p.text for p in train],
                                    "solution": [worked_solution(p) for p in train]}),
        datasets.Dataset.from_dict({"problem": [p.text for p in test], "answer": [latex(p.value) for p in test]}),
    )
