"""Vision rewards: exact counts (count_accuracy) and R1-V's think/answer format (vl_format)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero_trl.rewards import REWARDS, get_reward_funcs
from tinyzero_trl.rewards.vision import count_accuracy_reward, gold_count, parse_count, vl_format_reward


def msg(text):
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("completion, gold, score", [
    ("<think>three cubes</think><answer>3</answer>", "3", 1.0),
    ("<think>x</think>\n<answer>  3 \n</answer>", "<answer> 3 </answer>", 1.0),   # R1-V's gold form
    ("<answer>+3</answer>", 3, 1.0),
    ("<answer>03</answer>", "3", 1.0),
    ("<answer>0</answer>", "0", 1.0),
    ("<answer>4</answer>", "3", 0.0),
    ("<answer>3.0</answer>", "3", 0.0),            # not an integer as written
    ("<answer>3 objects</answer>", "3", 0.0),
    ("<answer>three</answer>", "3", 0.0),
    ("<answer>٣</answer>", "3", 0.0),              # non-ASCII digits are not counts
    ("The answer is 3.", "3", 0.0),                # no answer block
    ("<answer>3", "3", 0.0),                       # never closed
    ("<answer>3</answer> <answer>5</answer>", "3", 0.0),   # only the last block counts
    ("<answer>5</answer> then <answer>3</answer>", "3", 1.0),
    ("<think><answer>3</answer></think><answer>2</answer>", "3", 0.0),
    ("<answer>-3</answer>", "3", 0.0),
])
def test_count_accuracy(completion, gold, score):
    assert count_accuracy_reward([completion], solution=[gold]) == [score]
    assert count_accuracy_reward([msg(completion)], solution=[gold]) == [score]


def test_count_accuracy_gold_column_and_unusable_golds():
    assert count_accuracy_reward(["<answer>2</answer>"], answer=["2"]) == [1.0]
    assert count_accuracy_reward(["<answer>2</answer>"] * 4, solution=["two", None, "", "1" * 40]) == [None] * 4
    assert count_accuracy_reward(["<answer>2</answer>"], solution=None) == [None]
    assert count_accuracy_reward(["<answer>2</answer>", "<answer>2</answer>"], solution=["2"]) == [1.0, None]
    assert count_accuracy_reward(["<answer>1</answer>"], solution=[True]) == [None]  # a bool is not a count


def test_count_accuracy_survives_garbage():
    completions = [None, 3, b"<answer>3</answer>", {"role": "user", "content": "x"}, [{"content": None}],
                   "<answer>" + "9" * 100_000 + "</answer>", "<answer>" * 10_000, msg(["<answer>3</answer>"])]
    scores = count_accuracy_reward(completions, solution=["3"] * len(completions))
    assert scores == [0.0] * (len(completions) - 1) + [1.0]
    assert count_accuracy_reward(None, solution=["3"]) == []
    assert count_accuracy_reward("<answer>3</answer>", solution=["3"]) == []


def test_parse_and_gold_count():
    assert parse_count(" 12 ") == 12 and parse_count(7) == 7
    assert parse_count("1e3") is None and parse_count("") is None and parse_count("+") is None
    assert parse_count(None) is None and parse_count(3.0) is None and parse_count(False) is None
    assert gold_count("<answer> 10 </answer>") == 10 and gold_count("<answer>") is None
    assert parse_count("-3") == -3 and parse_count("+3") == 3 and parse_count(" 03 ") == 3
    assert parse_count("9" * 12) == 999_999_999_999 and parse_count("9" * 13) is None  # at most 12 digits


@pytest.mark.parametrize("completion, score", [
    ("<think>I see 3.</think><answer>3</answer>", 1.0),
    ("<think>a\nb</think>\n\n<answer>3</answer>", 1.0),
    ("  <think>a</think> <answer>3</answer>\n", 1.0),
    ("<answer>3</answer>", 0.0),
    ("<think>a</think>", 0.0),
    ("<think>a</think> so <answer>3</answer>", 0.0),       # text between the blocks
    ("x<think>a</think><answer>3</answer>", 0.0),           # text before
    ("<think>a</think><answer>3</answer>x", 0.0),           # text after
    ("<think>a</think><answer> </answer>", 0.0),            # empty answer
    ("<think>a</think><answer> 3</answer>", 1.0),           # spaces around the answer are fine
    ("<think>a</think><answer>1</answer><answer>2</answer>", 0.0),
    ("<think><think>a</think><answer>3</answer>", 0.0),
    ("<answer>3</answer><think>a</think>", 0.0),
    ("", 0.0),
])
def test_vl_format(completion, score):
    assert vl_format_reward([completion]) == [score]
    assert vl_format_reward([msg(completion)]) == [score]


R1V_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
TAGS = ["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "3", "x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TAGS), max_size=12))
def test_vl_format_never_rewards_what_r1v_would_reject(pieces):
    text = "".join(pieces)
    if vl_format_reward([text]) == [1.0]:
        assert R1V_FORMAT.fullmatch(text.strip())


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.none(), st.integers(), st.lists(st.text(max_size=5), max_size=3)),
       st.one_of(st.text(max_size=20), st.integers(), st.none()))
def test_rewards_never_raise(completion, gold):
    assert count_accuracy_reward([completion], solution=[gold])[0] in (0.0, 1.0, None)
    assert vl_format_reward([completion]) in ([0.0], [1.0])


def test_registered_under_their_names():
    funcs, weights = get_reward_funcs({"count_accuracy": 1.0, "vl_format": 0.5})
    assert [f.__name__ for f in funcs] == ["count_accuracy", "vl_format"] and weights == [1.0, 0.5]
    assert REWARDS["count_accuracy"](["<answer>1</answer>"], solution=["1"], image=[object()]) == [1.0]
