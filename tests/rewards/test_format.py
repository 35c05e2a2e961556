"""Format rewards and the shared completion-text helpers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero_trl.rewards.format import (
    completion_text,
    completion_texts,
    countdown_format_reward,
    last_answer,
    think_close_format_reward,
    think_format_reward,
)


def test_completion_text_shapes():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text({"role": "assistant", "content": "single"}) == "single"
    parts = [{"type": "text", "text": "x"}, {"type": "image"}, {"type": "text", "text": "y"}, "z"]
    assert completion_text([{"role": "assistant", "content": parts}]) == "xyz"
    turns = [{"role": "assistant", "content": "first"}, {"role": "user", "content": "u"},
             {"role": "assistant", "content": "last"}, {"role": "tool", "content": "t"}]
    assert completion_text(turns) == "last"  # the last ASSISTANT message
    for bad in [None, 1, b"bytes", [], [{"role": "user", "content": "u"}], [{"content": "no role"}],
                [{"role": "assistant", "content": None}], object()]:
        assert completion_text(bad) is None
    assert completion_texts(("a", None)) == ["a", None]
    assert completion_texts(x for x in ["g"]) == ["g"]
    assert completion_texts(None) == [] and completion_texts("a string is not a batch") == []


def test_last_answer():
    assert last_answer("<answer>1</answer> <answer> 2 </answer>") == " 2 "
    assert last_answer("<answer>1</answer> <answer>2") is None
    assert last_answer("no tags") is None
    assert last_answer("<answer></answer>") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" reasoning </think>\n<answer>1 + 2</answer>", 1.0),
        ("r</think><answer>x</answer>", 1.0),
        ("r\n</think>\n\n<answer>\n1 + 2\n</answer>\n  ", 1.0),
        ("r <answer>draft</answer> </think><answer>1</answer>", 1.0),  # tags inside think are thinking
        ("r</think><answer>1</answer> trailing text", 0.0),
        ("r</think>text before<answer>1</answer>", 0.0),
        ("r</think><answer>1</answer><answer>2</answer>", 0.0),  # two answers after think
        ("r</think><answer>1<answer>2</answer>", 0.0),
        ("r</think><answer>   </answer>", 0.0),  # an empty answer earns no format reward
        ("r</think>", 0.0),
        ("<answer>1</answer>", 0.0),  # think never closed
        ("r</think></think><answer>1</answer>", 0.0),
        ("<think>r</think><answer>1</answer>", 0.0),  # the prompt already opened <think>
        ("r</think><think>s</think><answer>1</answer>", 0.0),
        ("r</think><answer>1</answer", 0.0),
        ("r</think><answer>1 + 2 = 3 and more", 0.0),  # an answer never closed
        ("", 0.0),
    ],
)
def test_countdown_format(text, expected):
    assert countdown_format_reward([text]) == [expected]
    assert countdown_format_reward([[{"role": "assistant", "content": text}]], prompts=["p"], nums=[[1]]) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>reason</think>The answer is $\\boxed{2}$.", 1.0),
        ("\n  <think>\nreason\n</think>\n\n42", 1.0),
        ("<think></think>42", 1.0),
        ("<think>reason</think>", 0.0),  # no answer
        ("<think>reason</think>   \n", 0.0),
        ("reason</think>42", 0.0),  # does not open with <think>
        ("Sure! <think>reason</think>42", 0.0),
        ("<think>a</think><think>b</think>42", 0.0),
        ("<think>a<think>b</think>42", 0.0),
        ("<think>a</think>42</think>", 0.0),
        ("<think>never closed 42", 0.0),
        ("", 0.0),
    ],
)
def test_think_format(text, expected):
    assert think_format_reward([text]) == [expected]
    assert think_format_reward(completions=[[{"role": "assistant", "content": text}]], solution=["x"]) == [expected]


def test_weird_inputs():
    weird = [None, 5, [{"role": "user", "content": "<think>a</think>b"}], {"role": "assistant"}]
    assert countdown_format_reward(weird) == [0.0] * 4
    assert think_format_reward(weird) == [0.0] * 4


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.one_of(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x"]),
                          st.text(max_size=5)), max_size=30).map("".join))
def test_format_fuzz_never_raises(text):
    assert countdown_format_reward([text])[0] in (0.0, 1.0)
    assert think_format_reward([text])[0] in (0.0, 1.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\nreason\n</think>\nThe answer is $\\boxed{2}$.", 1.0),  # the template prefilled <think>
        ("reason</think>", 0.0),  # no answer
        ("<think>reason</think>42", 0.0),  # a second think block opened
        ("a</think>b</think>42", 0.0),
        ("no think block at all", 0.0),
    ],
)
def test_think_close_format(text, expected):
    assert think_close_format_reward([text]) == [expected]
    assert think_close_format_reward([[{"role": "assistant", "content": text}]], solution=["x"]) == [expected]
