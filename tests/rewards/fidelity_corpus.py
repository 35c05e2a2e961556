"""A fixed, seeded corpus of countdown completions for scoring our rewards against the peers' scorers.

Completions are synthesised the way models write them: a think block, a separator, an answer, then maybe
more (a trailing newline, a new ``User:`` turn, prose, a second answer). Answers are right or wrong, spelled
with the things scorers disagree on (signs, ``**``, ``//``, decimals, leading zeros, ``= target``, unicode
digits, line breaks inside the tags), and some completions break the format (no ``</think>``, a second
``<think>``, an empty or unclosed answer, nested tags).

    cd tests && python -m rewards.fidelity_corpus    # prints the agreement table
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

from tinyzero_trl.data.countdown import TINYZERO_BASE

EOS = "<|endoftext|>"  # what TinyZero's decode left at the end of a finished response (Qwen base)


@dataclass(frozen=True)
class Item:
    kind: str
    completion: str
    nums: tuple[int, ...]
    target: int
    finished: bool  # the model stopped by itself (TinyZero's decoded string then ends in EOS)

    def tinyzero_text(self) -> str:
        """The string TinyZero's scorer received: its base prompt, the response, the end-of-text token."""
        prompt = TINYZERO_BASE.format(numbers=list(self.nums), target=self.target)
        return prompt + self.completion + (EOS if self.finished else "")


def _expression(rng: random.Random, nums: list[int]) -> tuple[str, Fraction | None]:
    """A random binary expression over ``nums`` (each once), sometimes with a sign on an operand."""
    nodes = []
    for n in nums:
        r = rng.random()
        sign = "-" if r < 0.12 else "--" if r < 0.14 else "+" if r < 0.16 else ""
        value = Fraction(n) * (-1 if sign == "-" else 1)
        nodes.append((f"{sign}{n}", value))
    while len(nodes) > 1:
        a = nodes.pop(rng.randrange(len(nodes)))
        b = nodes.pop(rng.randrange(len(nodes)))
        op = rng.choices(["+", "-", "*", "/", "**", "//"], [30, 30, 25, 12, 4, 2])[0]
        if op == "**" and (b[1] is None or b[1].denominator != 1 or not 0 <= b[1] <= 3 or "**" in a[0] + b[0]):
            op = "*"
        value = None
        if a[1] is not None and b[1] is not None:
            if op in "/ //" and b[1] == 0:
                value = None
            elif op == "//":
                value = Fraction(a[1] // b[1])
            elif op == "**":
                value = a[1] ** int(b[1])
            else:
                value = {"+": a[1] + b[1], "-": a[1] - b[1], "*": a[1] * b[1], "/": a[1] / b[1] if b[1] else 0}[op]
        space = rng.choice(["", " ", " "])
        text = f"{a[0]}{space}{op}{space}{b[0]}"
        if len(nodes) > 0 or rng.random() < 0.2:
            text = f"({text})"
        nodes.append((text, value))
    return nodes[0]


def _respell(rng: random.Random, expr: str, nums: list[int], target: int) -> tuple[str, str, int]:
    """Spellings scorers disagree on; returns (kind, answer text, target)."""
    r = rng.random()
    digits = [i for i, c in enumerate(expr) if c.isdigit()]
    if r < 0.05:  # fuse two of the numbers into a decimal, "1.5 * 2" from 1, 5, 2 (the rest added on)
        a, b, *rest = nums
        value = Fraction(f"{a}.{b}") * (rest[0] if rest else 1) + sum(rest[1:])
        text = f"{a}.{b} * {rest[0]}" + "".join(f" + {x}" for x in rest[1:]) if rest else f"{a}.{b}"
        if value.denominator == 1 and rng.random() < 0.7:
            target = int(value)
        return "decimal", text, target
    if r < 0.10 and digits:  # a leading zero
        i = digits[0]
        return "leading-zero", expr[:i] + "0" + expr[i:], target
    if r < 0.15:
        return "equation", f"{expr} = {target}", target
    if r < 0.18 and digits:
        i = digits[0]
        return "unicode-digit", expr[:i] + chr(0x660 + int(expr[i])) + expr[i + 1:], target
    if r < 0.23:
        return "multiline", f"\n{expr}\n", target
    if r < 0.26:
        return "padded", " " * rng.choice([1, 40, 600]) + expr, target
    if r < 0.28:
        return "deep-parens", "(" * 40 + expr + ")" * 40, target
    if r < 0.30:
        return "times-sign", expr.replace("*", "×"), target
    return "plain", expr, target


SEPARATORS = ["\n", "\n", "\n", "\n\n", " ", "", "\n \n"]
SUFFIXES = ["", "", "", "", "\n", "\n\n", " ", "\nUser: Using the numbers [3, 4], create an equation that equals 7.",
            " So the answer is above.", "\n<answer>1 + 1</answer>", "<answer>1 + 1</answer>"]


def _completion(rng: random.Random, answer: str) -> tuple[str, str]:
    think = rng.choice([" Let me try a few. 3 + 4 = 7, no.", " First, 55 - 19 = 36.\nThen 36 + 36 = 72. Not it.",
                        " I draft <answer>1 + 2</answer> but check it first.", ""])
    broken = [  # (share, kind, completion): ways to break the format
        (0.04, "no-think-close", f"{think}<answer>{answer}</answer>"),
        (0.03, "think-reopened", f"{think}</think>\n<think>again</think>\n<answer>{answer}</answer>"),
        (0.02, "empty-answer", f"{think}</think>\n<answer></answer>"),
        (0.02, "unclosed", f"{think}</think>\n<answer>{answer}"),
        (0.02, "nested", f"{think}</think>\n<answer><answer>{answer}</answer></answer>"),
        (0.02, "no-answer", f"{think}</think>\nI could not solve it."),
    ]
    r = rng.random()
    for share, kind, text in broken:
        if r < share:
            return kind, text
        r -= share
    sep, suffix = rng.choice(SEPARATORS), rng.choice(SUFFIXES)
    return f"sep={sep!r},suffix={suffix[:8]!r}", f"{think}</think>{sep}<answer>{answer}</answer>{suffix}"


def build_corpus(n: int = 4000, seed: int = 0) -> list[Item]:
    """``n`` completions with their columns, the same for the same seed."""
    rng = random.Random(seed)
    items: list[Item] = []
    while len(items) < n:
        nums = [rng.randint(1, 99) for _ in range(rng.choice([3, 4]))]
        if rng.random() < 0.15:
            nums[-1] = rng.randint(1, 3)  # a small number, so that some answers use it as an exponent
        expr, value = _expression(rng, nums)
        if value is None or value.denominator != 1 or not 0 < value <= 10_000:
            continue
        target = int(value) + (0 if rng.random() < 0.6 else rng.choice([-2, -1, 1, 3]))  # 40%: a wrong answer
        if rng.random() < 0.05:
            expr = expr + f" + {nums[0]}"  # a number used twice
        kind, answer, target = _respell(rng, expr, nums, target)
        shape, completion = _completion(rng, answer)
        items.append(Item(f"{kind}|{shape}", completion, tuple(nums), target, finished=rng.random() < 0.9))
    return items


def score_table(items: list[Item]) -> dict[str, dict]:
    """For each (our reward, source) pair: how often they agree, and a few disagreements to look at."""
    from tinyzero_trl.rewards import REWARDS

    from .oracles import mini_r1_equation_oracle, mini_r1_format_oracle, tinyzero_oracle

    comps = [it.completion for it in items]
    cols = {"nums": [list(it.nums) for it in items], "target": [it.target for it in items]}
    ref = {
        "tinyzero": [tinyzero_oracle(it.tinyzero_text(), it.nums, it.target) for it in items],
        "mini_r1_format": [mini_r1_format_oracle(it.completion) for it in items],
        "mini_r1_equation": [mini_r1_equation_oracle(it.completion, it.nums, it.target) for it in items],
    }
    ref["tinyzero_correct"] = [1.0 if s == 1.0 else 0.0 for s in ref["tinyzero"]]
    pairs = [("tinyzero_countdown", "tinyzero"), ("countdown_equation", "tinyzero_correct"),
             ("mini_r1_format", "mini_r1_format"), ("countdown_format", "mini_r1_format"),
             ("mini_r1_equation", "mini_r1_equation"), ("countdown_equation", "mini_r1_equation")]
    table = {}
    for ours, source in pairs:
        if ours not in REWARDS:
            continue
        got = REWARDS[ours](comps, **cols)
        diffs = [i for i, (a, b) in enumerate(zip(got, ref[source], strict=True)) if a != b]
        table[f"{ours} vs {source}"] = {
            "agreement": 1 - len(diffs) / len(items),
            "disagreements": len(diffs),
            "examples": [(items[i].kind, items[i].completion[-90:], got[i], ref[source][i]) for i in diffs[:5]],
        }
    return table


def main() -> None:
    items = build_corpus()
    print(f"{len(items)} completions")
    for name, row in score_table(items).items():
        print(f"{name:42s} agreement {row['agreement']:.4f} ({row['disagreements']} differ)")
        for ex in row["examples"][:3]:
            print("    ", ex)


if __name__ == "__main__":
    main()
