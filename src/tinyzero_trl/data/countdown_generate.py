"""Solvable countdown tasks: TinyZero-like (target first, then numbers that reach it) or from a random tree.

A task is a list of numbers ``nums`` and a ``target``; a solution is an expression that uses every number
exactly once with binary + - * / and equals the target exactly.
"""

from __future__ import annotations

import random
from fractions import Fraction

import datasets

_OPS = ("+", "-", "*", "/")


def _combine(a: Fraction, b: Fraction, op: str) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


def _moves(a: int, b: int) -> set[int]:
    """Stream-of-Search's moves on two non-negative integers: sum, product, difference, exact quotient."""
    lo, hi = min(a, b), max(a, b)
    out = {a + b, a * b, hi - lo}
    if lo and hi % lo == 0:
        out.add(hi // lo)
    return out


def _partners(x: int, target: int) -> set[int]:
    """Every y with ``target in _moves(x, y)``, for a target >= 1."""
    out = {x + target}  # y - x = target
    if target >= x:
        out.add(target - x)  # x + y, or x - y the other way round
    if x >= target:
        out.add(x - target)
    if x:
        out.add(target * x)  # y / x = target
        if target % x == 0:
            out.add(target // x)  # x * y = target
    if x >= target and x % target == 0:
        out.add(x // target)  # x / y = target
    return out


def _reachable(nums: list[int], target: int) -> bool:
    """Whether ``target`` is reachable by combining two numbers at a time with :func:`_moves`: the search
    Stream-of-Search's generator runs. Values of every proper subset bottom-up, then one partner lookup per
    value of the last split instead of building the full set."""
    n = len(nums)
    values: dict[int, set[int]] = {1 << i: {v} for i, v in enumerate(nums)}
    full = (1 << n) - 1
    for mask in sorted(range(1, full + 1), key=int.bit_count):
        if mask in values and mask != full:
            continue
        left = (mask - 1) & mask
        found: set[int] = set()
        while left:
            right = mask ^ left
            if left < right:  # each split once
                if mask == full and target >= 1:
                    if any(values[right] & _partners(x, target) for x in values[left]):
                        return True
                else:
                    for x in values[left]:
                        for y in values[right]:
                            found |= _moves(x, y)
            left = (left - 1) & mask
        if mask == full:
            return target in found
        values[mask] = found
    return nums[0] == target if n == 1 else False


TRIES_PER_TARGET = 1000  # number draws for one target before drawing another (never reached at the defaults)


def _target_first(rng: random.Random, num_samples: int, **r) -> tuple[list[list[int]], list[int]]:
    rows_nums: list[list[int]] = []
    rows_target: list[int] = []
    attempts, max_attempts = 0, 2000 * max(num_samples, 1) + 20_000
    known: dict[tuple, bool] = {}  # narrow ranges repeat the same sets: search each once
    hopeless: set[tuple[int, int]] = set()  # (count, target) pairs that TRIES_PER_TARGET draws did not solve
    pairs = (r["max_numbers"] - r["min_numbers"] + 1) * (r["max_target"] - r["min_target"] + 1)
    while len(rows_nums) < num_samples:
        if attempts > max_attempts or len(hopeless) == pairs:
            raise ValueError(
                f"could not find solvable tasks with targets in [{r['min_target']}, {r['max_target']}] from "
                f"numbers in [{r['min_number']}, {r['max_number']}]; widen the target range"
            )
        count = rng.randint(r["min_numbers"], r["max_numbers"])
        target = rng.randint(r["min_target"], r["max_target"])
        attempts += 1
        if (count, target) in hopeless:
            continue
        for _ in range(TRIES_PER_TARGET):
            attempts += 1
            nums = [rng.randint(r["min_number"], r["max_number"]) for _ in range(count)]
            key = (tuple(sorted(nums)), target)
            if key not in known:
                if len(known) > 1 << 18:
                    known.clear()
                known[key] = _reachable(nums, target)
            if known[key]:
                rows_nums.append(nums)
                rows_target.append(target)
                break
        else:
            hopeless.add((count, target))
    return rows_nums, rows_target


def _tree(rng: random.Random, num_samples: int, ops: str, **r) -> tuple[list[list[int]], list[int]]:
    rows_nums: list[list[int]] = []
    rows_target: list[int] = []
    attempts, max_attempts = 0, 1000 * max(num_samples, 1) + 10_000
    while len(rows_nums) < num_samples:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"could not find solvable tasks with targets in [{r['min_target']}, {r['max_target']}] from "
                f"numbers in [{r['min_number']}, {r['max_number']}]; widen the target range"
            )
        count = rng.randint(r["min_numbers"], r["max_numbers"])
        nums = [rng.randint(r["min_number"], r["max_number"]) for _ in range(count)]
        pool = [Fraction(n) for n in nums]
        while len(pool) > 1:
            a = pool.pop(rng.randrange(len(pool)))
            b = pool.pop(rng.randrange(len(pool)))
            value = _combine(a, b, rng.choice(ops))
            if value is None:
                break
            pool.append(value)
        if len(pool) != 1 or pool[0].denominator != 1 or not r["min_target"] <= pool[0] <= r["max_target"]:
            continue
        rows_nums.append(nums)
        rows_target.append(int(pool[0]))
    return rows_nums, rows_target


METHODS = ("target-first", "tree")


def generate_countdown(
    num_samples: int,
    *,
    seed: int = 0,
    min_numbers: int = 3,
    max_numbers: int = 4,
    max_number: int = 99,
    min_target: int = 10,
    max_target: int = 100,
    min_number: int = 1,
    ops: str | None = None,
    method: str | None = None,
) -> datasets.Dataset:
    """Generate ``num_samples`` solvable countdown tasks, the same rows for the same arguments.

    ``method="target-first"`` (the default without ``ops``) follows Stream-of-Search's countdown generator
    (kanishkg/stream-of-search ``src/countdown_generate.py``): draw how many numbers (uniform in
    [min_numbers, max_numbers]), draw the target (uniform in [min_target, max_target]), then redraw the
    numbers (uniform in [min_number, max_number]) until a solution exists with non-negative integer
    intermediate results. So 3- and 4-number tasks come half and half, the targets stay uniform, and a
    4-number task has a median of 7 solution paths (3,000 tasks, seed 1): the figures issue 17 measured on
    TinyZero's Countdown-Tasks-3to4, whose own generator is not published. A target that TRIES_PER_TARGET
    draws cannot solve is replaced, which only happens for narrow ranges.

    ``method="tree"`` (the default when ``ops`` is given, so the countdown-tiny miniature and its packaged
    base model keep their data) folds random numbers into one random expression tree with the operators in
    ``ops`` and keeps the task when the value is an integer in range: easier tasks, with many solutions.
    """
    if not 2 <= min_numbers <= max_numbers:
        raise ValueError(f"need 2 <= min_numbers <= max_numbers, got {min_numbers} and {max_numbers}")
    if not 0 <= min_number <= max_number or min_target > max_target:
        raise ValueError("need 0 <= min_number <= max_number and min_target <= max_target")
    if method is None:
        method = "tree" if ops is not None else "target-first"
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if method == "target-first" and ops is not None:
        raise ValueError("ops limits the solution of method='tree' only; drop ops or set method='tree'")
    if ops is not None and (not ops or set(ops) - set(_OPS)):
        raise ValueError(f"ops must be a non-empty subset of '+-*/', got {ops!r}")
    ranges = dict(min_numbers=min_numbers, max_numbers=max_numbers, min_number=min_number, max_number=max_number,
                  min_target=min_target, max_target=max_target)
    rng = random.Random(seed)
    if method == "tree":
        rows_nums, rows_target = _tree(rng, num_samples, ops or "+-*/", **ranges)
    else:
        rows_nums, rows_target = _target_first(rng, num_samples, **ranges)
    return datasets.Dataset.from_dict({"nums": rows_nums, "target": rows_target})
