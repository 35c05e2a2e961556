"""lighteval's MATH-500 extractive_match: plain expressions count, boxed answers first, golds from the solution."""

from tinyzero_trl.rewards import REWARDS

SOLUTION = "We find $x = \\frac{1}{2}$, so the answer is $\\boxed{\\frac{1}{2}}$."


def test_boxed_and_plain_answers_against_a_full_solution():
    score = REWARDS["lighteval_math"]
    completions = ["Therefore, the final answer is: $\\boxed{0.5}$. I hope it is correct",
                   "Therefore, the final answer is: $\\boxed{\\frac{2}{4}}$. I hope it is correct",
                   "so the answer is 1/2",  # an expression without LaTeX: lighteval's ExprExtractionConfig reads it
                   "Therefore, the final answer is: $\\boxed{3}$.",
                   "no answer at all"]
    assert score(completions, solution=[SOLUTION] * 5) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_missing_or_hostile_input_never_raises():
    score = REWARDS["lighteval_math"]
    assert score(["\\boxed{1}"]) == [None]
    assert score([None, 7, "\\boxed{9^{9^{9^9}}}" * 1000], solution=[SOLUTION] * 3) == [0.0, 0.0, 0.0]
