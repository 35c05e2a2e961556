"""r1v_count_eval: R1-V's SuperCLEVR-200 scoring rule, against an oracle that runs the source's regex, and how
it differs from count_accuracy (our training reward) on a synthetic corpus of counting outputs."""

from __future__ import annotations

import random
import time

import pytest

from tinyzero_trl.rewards import ACCURACY_OF, BOUNDS, REWARDS
from tinyzero_trl.rewards.r1v import first_count_answer

from .oracles import r1v_count_oracle

# A linear pass over 1 MB takes milliseconds; a quadratic one takes hours. 5 s tells them apart with room for
# a loaded machine and for mutmut's instrumentation (which made 0.5 s fail on a linear pass).
LINEAR_BOUND = 5.0

MB = 1 << 20


def corpus(seed: int = 0, size: int = 600) -> list[tuple[str, str, int]]:
    """(category, completion, gold) triples in the forms counting outputs take (R1-V's logs: a think block and one
    answer block, whitespace and newlines inside it), plus the forms where the two rules part."""
    rng = random.Random(seed)
    forms = {
        "one-block": lambda n: f"<think>\nI see {n} objects.\n</think>\n<answer>{n}</answer>",
        "one-block-spaced": lambda n: f"<think>\n    count them\n    </think>\n<answer>\n    {n}\n    </answer>",
        "answer-only": lambda n: f"<answer>{n}</answer>",
        "no-block": lambda n: f"There are {n} objects.",
        "unclosed": lambda n: f"<think>x</think><answer>{n}",
        "words-in-block": lambda n: f"<answer>{n} objects</answer>",
        "leading-zero": lambda n: f"<answer>0{n}</answer>",
        "two-blocks-same": lambda n: f"<answer>{n}</answer> so <answer>{n}</answer>",
        "two-blocks-first-differs": lambda n: f"<think><answer>{n + 1}</answer></think><answer>{n}</answer>",
        "two-blocks-last-differs": lambda n: f"<answer>{n}</answer> or maybe <answer>{n + 2}</answer>",
        "words-then-number": lambda n: f"<answer>some</answer><answer>{n}</answer>",
        "number-then-words": lambda n: f"<answer>{n}</answer><answer>unsure</answer>",
        "signed": lambda n: f"<answer>+{n}</answer>",
        "arabic-indic": lambda n: "<answer>" + "".join(chr(0x660 + int(d)) for d in str(n)) + "</answer>",
        "nbsp": lambda n: f"<answer>\u00a0{n}\u00a0</answer>",
        "decimal": lambda n: f"<answer>{n}.0</answer>",
    }
    names = sorted(forms)
    out = []
    for _ in range(size):
        name, gold = rng.choice(names), rng.randint(3, 10)  # SuperCLEVR-200's golds run from 3 to 10
        shown = gold if rng.random() < 0.6 else gold + rng.choice((-1, 1))  # some outputs are wrong counts
        out.append((name, forms[name](shown), gold))
    return out


# Where count_accuracy (last block, optional sign, ASCII digits) and R1-V's rule (first digits-only block,
# Unicode digits) must agree on every item, and where they must part on every item whose counts matter.
AGREE = {"one-block", "one-block-spaced", "answer-only", "no-block", "unclosed", "words-in-block", "leading-zero",
         "two-blocks-same", "decimal", "words-then-number", "nbsp"}
PART = {"two-blocks-first-differs", "two-blocks-last-differs", "number-then-words", "signed", "arabic-indic"}


def test_r1v_count_eval_is_the_source_rule_and_where_count_accuracy_differs():
    items = corpus()
    texts, golds = [t for _, t, _ in items], [g for _, _, g in items]
    ours = REWARDS["r1v_count_eval"](texts, solution=[str(g) for g in golds])
    assert ours == [r1v_count_oracle(t, g) for t, g in zip(texts, golds)]
    assert REWARDS["r1v_count_eval"](texts, solution=golds) == ours  # an int gold, as in R1-V's jsonl
    count = REWARDS["count_accuracy"](texts, solution=[str(g) for g in golds])
    by_form: dict[str, list[bool]] = {}
    for (form, _, _), a, b in zip(items, ours, count):
        by_form.setdefault(form, []).append(a == b)
    assert set(by_form) == AGREE | PART
    for form in AGREE:
        assert all(by_form[form]), form
    for form in PART:
        assert not all(by_form[form]), form


@pytest.mark.parametrize(("text", "value"), [
    ("<answer>4</answer>", 4),
    ("<answer>\n    4\n    </answer>", 4),
    ("<answer>three</answer><answer>3</answer>", 3),  # a non-number block is passed over, as re.search does
    ("<answer>3</answer><answer>5</answer>", 3),  # the first qualifying block decides
    ("<answer>3 4</answer>", None),
    ("<answer></answer>", None),
    ("<answer>-3</answer>", None),
    ("<answer>007</answer>", 7),
    ("<answer><answer>6</answer>", 6),
    ("<answer>٣</answer>", 3),
    ("<answer>²</answer>", None),  # a superscript is a digit to str.isdigit, not to re's \d
    ("<answer>1\u20032</answer>", None),
    ("<answer>" + "0" * 4299 + "8</answer>", 8),
    ("<answer>" + "9" * 4301 + "</answer>", None),  # int() would raise in R1-V's script
])
def test_first_count_answer(text, value):
    assert first_count_answer(text) == value
    if value is not None and len(text) < 1000:
        assert r1v_count_oracle(text, value) == 1.0


def test_hostile_inputs_are_linear_and_safe():
    cases = ["<answer>" * 200_000, "<answer>" + " " * MB + "</answer", "<answer>" + "1" * MB + "</answer>",
             ("<answer> 1 " * 100_000), "<answer>" + "\u0661" * MB, "x" * MB + "<answer>3</answer>"]
    for text in cases:
        start = time.perf_counter()
        out = REWARDS["r1v_count_eval"]([text], solution=["3"])
        assert out in ([0.0], [1.0]) and time.perf_counter() - start < LINEAR_BOUND
    assert REWARDS["r1v_count_eval"](["x" * MB + "<answer>3</answer>"], solution=["3"]) == [1.0]
    assert REWARDS["r1v_count_eval"]([None, 3, b"<answer>3</answer>", "<answer>3</answer>"],
                                     solution=["3", "3", "3", "three"]) == [0.0, 0.0, 0.0, None]
    assert REWARDS["r1v_count_eval"](["<answer>3</answer>"]) == [None]
    assert REWARDS["r1v_count_eval"]([[{"role": "assistant", "content": "<answer> 3 </answer>"}]],
                                     solution=["<answer> 3 </answer>"]) == [1.0]


def test_registered_for_evaluation():
    assert BOUNDS["r1v_count_eval"] == (0.0, 1.0) and ACCURACY_OF["r1v_count_eval"] == "r1v_count_eval"
    assert REWARDS["r1v_count_eval"].__name__ == "r1v_count_eval" and REWARDS["r1v_count_eval"].__doc__


def test_r1v_format_is_the_published_runs_regex_which_a_multiline_think_never_meets():
    """R1-V@9d576c7 grpo.py:96-101: re.match, no DOTALL. Its logged format reward stayed near 0 for this reason."""
    r1v, ours = REWARDS["r1v_format"], REWARDS["vl_format"]
    one_line = "<think>I count 3 objects.</think>\n<answer>3</answer>"
    multi_line = "<think>\nI count 3 objects.\n</think>\n<answer>3</answer>"
    assert r1v([one_line, multi_line]) == [1.0, 0.0]
    assert ours([one_line, multi_line]) == [1.0, 1.0]  # the later fullmatch + DOTALL form takes both
    assert r1v([one_line + " trailing words", " " + one_line, "<answer>3</answer>"]) == [1.0, 0.0, 0.0]
    assert r1v([[{"role": "assistant", "content": one_line}]]) == [1.0]  # conversational completions, as TRL's
    assert r1v([None, 3]) == [0.0, 0.0] and BOUNDS["r1v_format"] == (0.0, 1.0)


def test_r1v_count_eval_reads_the_answer_column_when_there_is_no_solution():
    r1v = REWARDS["r1v_count_eval"]
    assert r1v(["<answer>3</answer>", "<answer>4</answer>"], answer=[3, 3]) == [1.0, 0.0]
    assert r1v(["<answer>3</answer>"], solution=["<answer> 3 </answer>"], answer=[4]) == [1.0]  # solution first
