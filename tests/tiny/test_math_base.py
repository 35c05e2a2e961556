"""The math-tiny base model: its pretraining documents, tokenizer and chat template, deterministic build, and
what the packaged build can and cannot do (the reason RL has something to fix)."""

import random

from tinyzero_trl.data.math import BOXED_INSTRUCTION, format_math
from tinyzero_trl.data.math_synthetic import latex, split_problems
from tinyzero_trl.rewards.format import think_close_format_reward
from tinyzero_trl.rewards.math import score_math
from tinyzero_trl.tiny import math_base as base


def shortcut_is_right(p) -> bool:
    """Where the base's slip happens not to matter: no b to ignore, a coefficient a/b = 1, c = d."""
    return {"linear": not p.op, "equation": p.a == p.b, "product": p.c == p.d}[p.family]


def test_worked_documents_are_right_and_shortcuts_right_only_where_the_slip_does_not_matter():
    rng = random.Random(0)
    for train_side, _ in split_problems().values():
        for p in rng.sample(train_side, 60) + [q for q in train_side if shortcut_is_right(q)][:10]:
            gold = latex(p.value)
            worked, shortcut = base.completion(p, think=True), base.completion(p, think=False)
            assert score_math(worked, gold) == 1.0, worked
            assert score_math(shortcut, gold) == float(shortcut_is_right(p)), (p, shortcut)
            # Both close the prefilled think block and answer: the format reward cannot tell them apart.
            assert think_close_format_reward([worked, shortcut]) == [1.0, 1.0]
            assert len(worked) > len(shortcut)


def test_chat_template_prefills_think_like_r1_distill():
    tok = base.build_tokenizer()
    messages = format_math({"problem": "Solve for $x$: $3x + 5 = 11$."}, None, BOXED_INSTRUCTION)["prompt"]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|User|>Solve for $x$: $3x + 5 = 11$." + BOXED_INSTRUCTION + "<|Assistant|><think>\n"
    with_system = [{"role": "system", "content": "Be brief."}, *messages]
    assert tok.apply_chat_template(with_system, tokenize=False, add_generation_prompt=True).startswith("Be brief.<|User|>")


def test_tokenizer_round_trips_documents_with_numbers_and_phrases_as_single_tokens():
    tok = base.build_tokenizer()
    for p in [p for side, _ in split_problems().values() for p in side[::300]]:
        text = base.prompt_text(p, tok) + base.completion(p, think=True) + tok.eos_token
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    for piece in ("99", "24", "</think>", "\\frac{", "\\boxed{", BOXED_INSTRUCTION):
        assert len(tok(piece, add_special_tokens=False)["input_ids"]) == 1, piece


def test_packaged_base_answers_at_once_but_is_right_when_made_to_think():
    # The reason RL has something to fix, on held-out problems: greedy, the base closes its think block at
    # once and boxes a shortcut; with </think> banned as its first token it works the problem out, mostly right.
    problems = [p for _, held in split_problems().values() for p in held[::12]]
    greedy, forced = base.held_out_behaviour(base.PACKAGED_DIR, problems)
    assert greedy["thinks"] < 0.1 and greedy["accuracy"] < 0.15
    assert forced["thinks"] == 1.0 and forced["accuracy"] > 0.8
