"""Benchmark the rewards against the naive scorers they replace, side by side in one run.

    python benchmarks/bench_rewards.py [--quick] [--json OUT]

Countdown: completions/s of ``countdown_equation_reward`` vs a regex + ``eval`` scorer (what earlier scorers
did) on the same ~2000 benign completions, plus our worst latency over a hostile set. Math: the parallel,
time-limited scorer vs plain sequential math-verify on the main thread on 64 realistic completions (fresh
answers every repeat, so math-verify's parse caches do not flatter either side), and the batch latency with
a few hostile items mixed in. Each timing is the best (min) of a few repeats; CPU accounting shows how much
of a low speed-up is other load on a shared machine rather than pool overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from fractions import Fraction

from tinyzero_trl.rewards.countdown import countdown_equation_reward

# ----------------------------------------------------------------------------------------------- countdown


def naive_countdown_score(completion: str, nums, target) -> float:
    """The kind of scorer earlier recipes used: regex extraction, a character whitelist, then eval."""
    matches = re.findall(r"<answer>(.*?)</answer>", completion, re.S)
    if not matches:
        return 0.0
    expr = matches[-1].strip()
    if not re.fullmatch(r"[\d+\-*/().\s]+", expr):
        return 0.0
    if sorted(int(n) for n in re.findall(r"\d+", expr)) != sorted(nums):
        return 0.0
    try:
        value = eval(expr, {"__builtins__": None}, {})  # the point of the comparison; never do this in a reward
    except Exception:
        return 0.0
    return 1.0 if abs(value - target) < 1e-5 else 0.0


def _random_expression(rng: random.Random, nums: list[int]) -> tuple[str, Fraction | None]:
    nodes = [(str(n), Fraction(n)) for n in nums]
    while len(nodes) > 1:
        a = nodes.pop(rng.randrange(len(nodes)))
        b = nodes.pop(rng.randrange(len(nodes)))
        op = rng.choice("+-*/")
        if a[1] is None or b[1] is None or (op == "/" and b[1] == 0):
            value = None
        else:
            value = {"+": a[1] + b[1], "-": a[1] - b[1], "*": a[1] * b[1], "/": a[1] / b[1] if b[1] else 0}[op]
        nodes.append((f"({a[0]} {op} {b[0]})", value))
    return nodes[0]


def countdown_batch(n: int, seed: int = 0):
    """``n`` realistic completions (a think block, then an answer right about half the time) and columns."""
    rng = random.Random(seed)
    completions, nums_col, targets = [], [], []
    while len(completions) < n:
        nums = [rng.randint(1, 99) for _ in range(rng.randint(3, 4))]
        expr, value = _random_expression(rng, nums)
        if value is None or value.denominator != 1:
            continue
        steps = " ".join(f"Try {rng.choice(nums)} {rng.choice('+-*')} {rng.choice(nums)}, no." for _ in range(8))
        if rng.random() < 0.5:
            wrong = expr.replace("+", "-", 1) if "+" in expr else expr.replace("*", "+", 1)
            expr = wrong if wrong != expr else expr + " + 1"
        completions.append(f" Let me think. {steps}\nSo the equation works.</think>\n<answer> {expr[1:-1]} </answer>")
        nums_col.append(nums)
        targets.append(int(value))
    return completions, nums_col, targets


HOSTILE_COUNTDOWN = [
    "<answer>9**9**9**9</answer>", "<answer>" + "9" * 10**6 + "</answer>",
    "<answer>" + "(" * 100_000 + "1" + ")" * 100_000 + "</answer>", "<answer>" * 200_000 + "1+2</answer>",
    "<think>" + "x" * (1 << 20) + "</think><answer>1+2</answer>", "<answer>1+2" * 100_000, "</answer>" * 200_000,
    "<answer>" + "+".join(["1"] * 255) + "</answer>", "<answer>" + "/".join(["7"] * 200) + "</answer>",
]


def _best(func, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def bench_countdown(quick: bool) -> dict:
    completions, nums, targets = countdown_batch(2000)
    repeats = 3 if quick else 7
    ours = countdown_equation_reward(completions, nums=nums, target=targets)
    naive = [naive_countdown_score(c, n, t) for c, n, t in zip(completions, nums, targets)]
    t_ours = _best(lambda: countdown_equation_reward(completions, nums=nums, target=targets), repeats)
    t_naive = _best(lambda: [naive_countdown_score(c, n, t) for c, n, t in zip(completions, nums, targets)], repeats)
    worst = 0.0
    for text in HOSTILE_COUNTDOWN:
        worst = max(worst, _best(lambda t=text: countdown_equation_reward([t], nums=[[1, 2]], target=[3]), 1))
    return {
        "countdown_batch": len(completions),
        "countdown_correct_fraction": sum(ours) / len(ours),
        "countdown_agreement_with_naive": sum(a == b for a, b in zip(ours, naive)) / len(ours),
        "countdown_ours_per_s": len(completions) / t_ours,
        "countdown_naive_per_s": len(completions) / t_naive,
        "countdown_ours_us_per_completion": 1e6 * t_ours / len(completions),
        "countdown_ratio_ours_over_naive": t_naive / t_ours,
        "countdown_hostile_worst_latency_s": worst,
    }


# ---------------------------------------------------------------------------------------------------- math

FILLER = ("We are asked to find the value. Let $f(x) = x^2 + {a}x - {b}$. Then $f'(x) = 2x + {a}$, and setting "
          "$2x + {a} = 0$ gives $x = -\\frac{{{a}}}{{2}}$. Substituting back, "
          "$f\\left(-\\frac{{{a}}}{{2}}\\right) = \\frac{{{a}^2}}{{4}} - \\frac{{{a}^2}}{{2}} - {b}$. ")


def _math_item(rng: random.Random) -> tuple[str, str]:
    """A MATH-500-like gold answer and a completion whose last box is right about half the time."""
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    kind = rng.randrange(6)
    if kind == 0:
        gold, right, wrong = f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{2 * a}}}{{{2 * b}}}", f"\\frac{{{a + 1}}}{{{b}}}"
    elif kind == 1:
        gold, right, wrong = f"{a}\\sqrt{{{b}}}", f"{a} \\sqrt{{{b}}}", f"{a + 1}\\sqrt{{{b}}}"
    elif kind == 2:
        gold, right, wrong = f"\\left( {a}, \\frac{{\\pi}}{{{b}}} \\right)", f"({a}, \\pi/{b})", f"({b}, \\pi/{a})"
    elif kind == 3:
        gold, right, wrong = f"{a} - {b}i", f"{a}-{b}i", f"{a} + {b}i"
    elif kind == 4:
        gold, right, wrong = f"x^2 + {a}x + {b}", f"x^{{2}}+{a}x+{b}", f"x^2 + {b}x + {a}"
    else:
        gold, right, wrong = str(a * b), f"{a * b}", f"{a * b + 1}"
    body = "".join(FILLER.format(a=rng.randint(2, 99), b=rng.randint(2, 99)) for _ in range(rng.randint(3, 8)))
    final = right if rng.random() < 0.5 else wrong
    return f"<think>{body}</think>\nTherefore the answer is $\\boxed{{{final}}}$.", gold


HOSTILE_MATH = [
    ("\\boxed{9^{9^{9^{9}}}}", "1"),
    ("\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}", "1"),
    ("\\boxed{" + "+".join(["x"] * 20000) + "}", "1"),
]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of processes, from /proc (0.0 where that is unavailable)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return total


def sequential_math(items) -> list[float]:
    """Plain math-verify on the main thread (its own signal timeouts), the same parse + verify per item."""
    from math_verify import parse, verify

    from tinyzero_trl.rewards.math import _completion_config

    out = []
    for completion, gold in items:
        gold_parsed = parse(f"${gold}$", extraction_mode="first_match")
        answer = parse(completion, extraction_config=_completion_config(), extraction_mode="first_match")
        out.append(1.0 if verify(gold_parsed, answer) else 0.0)
    return out


def bench_math(quick: bool, n: int = 64, hostile_limit: float = 2.0) -> dict:
    from tinyzero_trl.rewards.math import MathVerifyPool, make_math_accuracy_reward

    rng = random.Random(1)
    repeats = 3 if quick else 6
    batches = [[_math_item(rng) for _ in range(n)] for _ in range(repeats + 1)]
    pool = MathVerifyPool()
    start = time.perf_counter()
    pool.start()
    startup = time.perf_counter() - start
    reward = make_math_accuracy_reward(pool=pool)

    def parallel(items):
        return reward([c for c, _ in items], solution=[g for _, g in items])

    # Warm both sides alike (lazy imports, the LaTeX parser's prediction caches) on one untimed batch.
    parallel(batches[-1])
    sequential_math(batches[-1])
    t_par, t_seq, agree = [], [], True
    cpu_par = cpu_seq = 0.0
    for i in range(repeats):  # a fresh batch per repeat, timed on both sides, in alternating order
        for side in ("par", "seq") if i % 2 == 0 else ("seq", "par"):
            pids = [w.proc.pid for w in pool._workers]
            begin, cpu_workers, cpu_self = time.perf_counter(), _cpu_seconds(pids), time.process_time()
            if side == "par":
                par = parallel(batches[i])
                t_par.append(time.perf_counter() - begin)
                cpu_par += _cpu_seconds(pids) - cpu_workers
            else:
                seq = sequential_math(batches[i])
                t_seq.append(time.perf_counter() - begin)
                cpu_seq += time.process_time() - cpu_self
        agree = agree and par == seq and 0 < sum(par) < n
    mixed = batches[0][: n - len(HOSTILE_MATH)] + HOSTILE_MATH
    hostile_reward = make_math_accuracy_reward(time_limit=hostile_limit, pool=pool)
    begin = time.perf_counter()
    mixed_scores = hostile_reward([c for c, _ in mixed], solution=[g for _, g in mixed])
    t_mixed = time.perf_counter() - begin
    pool.close()
    return {
        "math_batch": n,
        "math_workers": pool.size,
        "math_pool_startup_s": startup,
        "math_parallel_s": min(t_par),
        "math_sequential_s": min(t_seq),
        "math_ratio_sequential_over_parallel": min(t_seq) / min(t_par),
        "math_parallel_agrees_with_sequential": agree,
        # Contention check: CPU the workers (together) and the sequential scorer got per second of wall time
        # (2.0 and 1.0 on two free cores), and worker CPU over sequential CPU for the same items (the pool's
        # own overhead; 1.0 = none).
        "math_parallel_cores_used": cpu_par / sum(t_par),
        "math_sequential_cores_used": cpu_seq / sum(t_seq),
        "math_cpu_workers_over_sequential": cpu_par / cpu_seq,
        "math_correct_fraction": sum(par) / len(par),
        "math_hostile_items": len(HOSTILE_MATH),
        "math_hostile_time_limit_s": hostile_limit,
        "math_hostile_batch_s": t_mixed,
        "math_hostile_scored_zero": all(s == 0.0 for s in mixed_scores[-len(HOSTILE_MATH):]),
    }


def run(quick: bool = False) -> dict:
    """Run both benchmarks and return the figures as a flat dict (with the machine's load around them)."""
    load_before = os.getloadavg()[0]
    figures = {**bench_countdown(quick), **bench_math(quick)}
    return {**figures, "cpus": len(os.sched_getaffinity(0)), "loadavg_1min_before": load_before,
            "loadavg_1min_after": os.getloadavg()[0]}


def _table(figures: dict) -> str:
    width = max(map(len, figures))
    rows = []
    for key, value in figures.items():
        shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
        rows.append(f"{key:<{width}}  {shown}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    args = parser.parse_args(argv)
    figures = run(quick=args.quick)
    print(_table(figures))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":  # the math pool's workers import __main__: keep the entry point guarded
    sys.exit(main())
