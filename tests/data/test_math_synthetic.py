"""math-tiny's generated problems: disjoint splits, hub-shaped gold answers, and answers that need math-verify."""

from fractions import Fraction

import pytest

from tinyzero_trl.config import DataConfig
from tinyzero_trl.data import load_task_data
from tinyzero_trl.data.math import BOXED_INSTRUCTION, load_math
from tinyzero_trl.data.math_synthetic import (
    FAMILIES,
    Problem,
    all_problems,
    generate_math,
    is_heldout,
    latex,
    split_problems,
    worked_solution,
)
from tinyzero_trl.data.sources import DataError
from tinyzero_trl.rewards.math import parse_gold, score_math


def held_out() -> list:
    return [p for _, held in split_problems().values() for p in held]


def test_the_space_is_split_by_problem_and_nothing_is_on_both_sides():
    split = split_problems()
    assert list(split) == list(FAMILIES)
    assert len({p.text for p in all_problems()}) == len(all_problems())  # one statement, one problem
    for family, (train_side, held_side) in split.items():
        assert {p.text for p in train_side}.isdisjoint(p.text for p in held_side)
        assert 0.07 < len(held_side) / (len(train_side) + len(held_side)) < 0.13, family
        assert {p.family for p in train_side + held_side} == {family}


def test_generated_rows_never_put_a_held_out_problem_in_training():
    train, test = generate_math(20_000, 300, seed=3)
    assert set(train["problem"]).isdisjoint(test["problem"])
    assert len(set(test["problem"])) == 300  # held-out problems are distinct
    assert all(is_heldout(t) for t in test["problem"]) and not any(is_heldout(t) for t in train["problem"])
    # A third of the rows per family, whatever the family's size (linear has a tenth of the problems).
    linear = sum(t.startswith("Solve for $x$: $") and "\\frac" not in t.split("=")[0] for t in test["problem"])
    products = sum(t.startswith("Compute") for t in test["problem"])
    assert linear == products == 100


def test_same_arguments_same_rows_and_the_seed_changes_them():
    assert generate_math(50, 20, seed=1)[1]["problem"] == generate_math(50, 20, seed=1)[1]["problem"]
    assert generate_math(50, 20, seed=1)[1]["problem"] != generate_math(50, 20, seed=2)[1]["problem"]


def test_gold_is_given_as_the_hub_datasets_give_it():
    train, test = generate_math(300, 100, seed=0)
    assert train.column_names == ["problem", "solution"]  # NuminaMath-TIR: a worked solution with \boxed{}
    assert test.column_names == ["problem", "answer"]  # MATH-500's answer column: bare LaTeX
    for solution in train["solution"]:
        assert "\\boxed{" in solution and solution.endswith("$.")
    for answer in test["answer"]:
        assert "\\boxed" not in answer and "$" not in answer and parse_gold(answer)


@pytest.mark.parametrize(("value", "text"), [(Fraction(2), "2"), (Fraction(-3), "-3"), (Fraction(0), "0"),
                                             (Fraction(6, 4), "\\frac{3}{2}"), (Fraction(-10, 6), "-\\frac{5}{3}")])
def test_gold_is_in_lowest_terms(value, text):
    assert latex(value) == text


def test_worked_solutions_and_bare_answers_agree_with_the_exact_value():
    problems = all_problems()[::97]
    for p in problems:
        # Each gold form, judged by math-verify against the exact value written plainly.
        plain = f"$\\boxed{{{p.value.numerator}/{p.value.denominator}}}$"
        assert score_math(plain, worked_solution(p)) == 1.0, p
        assert score_math(plain, latex(p.value)) == 1.0, p
    assert Problem("linear", 3, 5, 11, op="+").value == 2 and Problem("linear", 3, 5, 11, op="-").value == Fraction(16, 3)
    assert Problem("product", 2, 3, 3, 4).value == Fraction(1, 2)
    assert Problem("equation", 2, 3, 5, 6).value == Fraction(5, 4)  # (2/3) x = 5/6


def test_unreduced_answers_are_right_only_by_equivalence():
    # A worked answer before it is reduced (6/4, -10/6, 6/3) is right, and mostly not the gold string: a reward
    # that compared strings would call it wrong. One more in the numerator is wrong, whatever the form.
    held = held_out()[::5]
    differ = []
    for p in held:
        num, den = {"linear": (p.rhs, p.a), "equation": (p.c * p.b, p.d * p.a), "product": (p.a * p.c, p.b * p.d)}[
            p.family]
        if f"\\frac{{{num}}}{{{den}}}" != latex(p.value):
            differ.append((num, den, latex(p.value)))
    assert len(differ) > 0.5 * len(held)
    for num, den, gold in differ:
        assert score_math(f"The answer is $\\boxed{{\\frac{{{num}}}{{{den}}}}}$.", gold) == 1.0, (num, den, gold)
        assert score_math(f"The answer is $\\boxed{{{num}/{den}}}$.", gold) == 1.0, (num, den, gold)
        assert score_math(f"The answer is $\\boxed{{{num + 1}/{den}}}$.", gold) == 0.0, (num, den, gold)


def test_load_math_generate_gives_the_reward_a_solution_on_both_splits():
    splits = load_math("generate", num_train=40, num_test=10, generate={"seed": 5})
    assert len(splits["train"]) == 40 and len(splits["test"]) == 10
    assert splits["test"]["solution"] == splits["test"]["answer"]  # MATH-500's answer serves as the gold
    formatted = load_task_data(DataConfig(task="math", source="generate", num_train=4, num_test=2,
                                          instruction=BOXED_INSTRUCTION, generate={"seed": 5}))
    assert formatted["test"][0]["prompt"] == [{"role": "user", "content": splits["test"][0]["problem"] +
                                               BOXED_INSTRUCTION}]


def test_bad_generate_options_are_named():
    with pytest.raises(DataError, match="unknown key"):
        load_math("generate", generate={"sead": 1})
    with pytest.raises(DataError, match="families"):
        load_math("generate", generate={"families": ["geometry"]})
    with pytest.raises(DataError, match="held-out linear problems exist"):
        load_math("generate", num_test=400)
