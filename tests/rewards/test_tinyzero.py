"""tinyzero_countdown: TinyZero's score as its code computes it (last-line rule, eval semantics), checked
against a test oracle that restates the source with re and eval on the string TinyZero saw."""

from __future__ import annotations

import pytest

from tinyzero_trl.rewards import REWARDS
from tinyzero_trl.rewards.tinyzero import last_line_answer

from .fidelity_corpus import Item
from .oracles import tinyzero_oracle

score = REWARDS["tinyzero_countdown"]  # through the registry: the name the recipes use
THINK = "<think> 19 + 36 = 55, 55 + 55 = 110, too big. Try 55 + 36 - 19 - 7.</think>\n"


def one(completion: str, nums, target) -> float:
    return score([completion], nums=[nums], target=[target])[0]


def test_issue_17_answer_then_a_new_user_turn_scores_zero():
    text = THINK + "<answer>55 + 36 - 19 - 7</answer>\nUser: Using the numbers [1, 2], make 3."
    assert one(text, [19, 36, 55, 7], 65) == 0.0  # TinyZero reads only the last line
    assert one(THINK + "<answer>55 + 36 - 19 - 7</answer>", [19, 36, 55, 7], 65) == 1.0
    assert tinyzero_oracle(Item("", text, (19, 36, 55, 7), 65, True).tinyzero_text(), [19, 36, 55, 7], 65) == 0.0


@pytest.mark.parametrize(
    ("completion", "nums", "target", "expected"),
    [
        (THINK + "<answer>1 + 2</answer>\n", [1, 2], 3, 0.0),  # a trailing newline leaves an empty last line
        (THINK + "<answer>1 + 2</answer> and that is it.", [1, 2], 3, 1.0),  # text on the same line is fine
        (THINK + "<answer>\n1 + 2\n</answer>", [1, 2], 3, 0.0),  # an answer over several lines is never found
        ("<answer>1 * 2</answer> <answer>1 + 2</answer>", [1, 2], 3, 1.0),  # the last pair on the line
        ("<answer>1 + 2</answer> <answer>1 * 2</answer>", [1, 2], 3, 0.1),
        ("<answer>a<answer>1 + 2</answer>", [1, 2], 3, 0.1),  # pairs as finditer pairs them: "a<answer>1 + 2"
        ("<answer>1 + 2</answer><answer>3", [1, 2], 3, 1.0),  # an unclosed tag after it changes nothing
        ("<answer></answer>", [1, 2], 3, 0.1),  # an empty answer is an answer
        ("<answer>2**3</answer>", [2, 3], 8, 1.0),  # Python's arithmetic decides
        ("<answer>7//2</answer>", [7, 2], 3, 1.0),
        ("<answer>-19 + 36 + 55 - 7</answer>", [19, 36, 55, 7], 65, 1.0),
        ("<answer>--3 + 5</answer>", [3, 5], 8, 1.0),
        ("<answer>1.5 * 2</answer>", [1, 5, 2], 3, 1.0),  # two numbers fused into a decimal count as both
        ("<answer>7 + 1/1000000</answer>", [7, 1, 1000000], 7, 1.0),  # within 1e-5
        ("<answer>07 + 1</answer>", [7, 1], 8, 0.1),  # a SyntaxError in Python 3
        ("<answer>00 + 8</answer>", [0, 8], 8, 1.0),
        ("<answer>15 - 5</answer>", [1, 5, 5], 10, 0.1),
        ("<answer>3 + 4 = 7</answer>", [3, 4], 7, 0.1),
        ("<answer>٣ + 4</answer>", [3, 4], 7, 0.1),  # passes the number check, then eval refuses it
        ("<answer>(-8)**(1/3) + 8</answer>", [8, 1, 3, 8], 10, 0.1),  # complex
        ("<answer>" + " " * 5000 + "1 + 2</answer>", [1, 2], 3, 1.0),  # stripped first, no length cap
        ("no answer at all", [1, 2], 3, 0.0),
    ],
)
def test_score_levels_match_the_source(completion, nums, target, expected):
    assert one(completion, nums, target) == expected
    assert tinyzero_oracle(Item("", completion, tuple(nums), target, True).tinyzero_text(), nums, target) == expected


def test_last_line_answer_is_linear_on_hostile_lines():
    assert last_line_answer("x\n" + "<answer>1</answer>" * 100_000) == "1"
    assert last_line_answer("<answer>" * 200_000) is None
    assert last_line_answer("<answer>1</answer>\n") is None


def test_unusable_columns_score_as_a_wrong_answer_never_raise():
    completion = THINK + "<answer>19 + 36 + 55 - 7 - 38</answer>"
    assert one(completion, ["x"], 65) == 0.1  # a nums entry that is not a number
    assert one(completion, [19, 36, 55, 7, 38], None) == 0.1


def test_a_value_exactly_1e5_from_the_target_is_wrong():
    # 1/100000 is the float 1e-05 exactly: TinyZero's `abs(value - target) < 1e-5` is False on it.
    assert one("<answer>1/100000</answer>", [1, 100000], 0) == 0.1
    assert tinyzero_oracle(Item("", "<answer>1/100000</answer>", (1, 100000), 0, True).tinyzero_text(),
                           [1, 100000], 0) == 0.1


def test_tinyzero_correct_counts_only_right_answers():
    correct = REWARDS["tinyzero_correct"]
    completions = [THINK + "<answer>55 + 36 - 7 - 19</answer>", THINK + "<answer>55 + 36 - 7 + 19</answer>", THINK]
    assert correct(completions, nums=[[19, 36, 55, 7]] * 3, target=[65] * 3) == [1.0, 0.0, 0.0]
    assert score(completions, nums=[[19, 36, 55, 7]] * 3, target=[65] * 3) == [1.0, 0.1, 0.0]
