"""The clevr-tiny base model: its pretraining documents, tokenizer, processor and chat template, and what the
packaged build can and cannot do (the reason RL has something to fix)."""

import random

import pytest

from tinyzero_trl.config.compose import compose
from tinyzero_trl.data.multimodal import COLORS, COUNT_INSTRUCTION, SHAPES, ask, draw_scene
from tinyzero_trl.rewards.r1v import r1v_count_eval_reward
from tinyzero_trl.rewards.vision import count_accuracy_reward, vl_format_reward
from tinyzero_trl.tiny import clevr_base as base


def scenes(n, seed=0, side="train"):
    rng = random.Random(seed)
    task = base.RECIPE["task"]
    for _ in range(n):
        objects = draw_scene(rng, grid=task["grid"], min_objects=task["min_objects"], max_objects=task["max_objects"],
                             colors=list(COLORS), shapes=list(SHAPES), side=side)
        kind = rng.choice(task["questions"])
        question, count, color, shape = ask(objects, kind, rng)
        yield objects, kind, color or shape, question, count


def test_a_breakdown_answers_the_asked_count_and_the_slip_the_total():
    for objects, kind, asked, question, count in scenes(200):
        think = base.completion(objects, kind, asked, count, think=True)
        slip = base.completion(objects, kind, asked, count, think=False)
        # The breakdown covers every object, names the asked color or shape last, and the answer is its count.
        names = [part.split()[0] for part in think.split(": ", 1)[1].split(".</think>")[0].split(", ")]
        values = [int(part.split()[1]) for part in think.split(": ", 1)[1].split(".</think>")[0].split(", ")]
        assert names[-1] == asked and sorted(names) == sorted(COLORS if kind == "color" else SHAPES)
        assert sum(values) == len(objects) and values[-1] == count
        assert asked in question
        # Both are R1-V's format, so vl_format cannot tell them apart; only the count reward can.
        assert vl_format_reward([think, slip]) == [1.0, 1.0]
        assert count_accuracy_reward([think, slip], solution=[str(count)] * 2) == [1.0, float(count == len(objects))]
        assert r1v_count_eval_reward([think], solution=[str(count)]) == [1.0]
        assert think.startswith(f"<think>I count {len(objects)} objects:")
        assert slip == f"<think>I count {len(objects)} objects.</think> <answer> {len(objects)} </answer>"


def test_prompt_is_r1v_template_in_qwen2_vl_instruct_chat_format():
    processor = base.build_processor()
    text = base.prompt_text(processor, "How many red objects are there?")
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>How many red objects are there?" + COUNT_INSTRUCTION
                    + "<|im_end|>\n<|im_start|>assistant\n")
    tok = processor.tokenizer
    for piece in ("red", "triangle", "<think>", "</answer>", "<|image_pad|>", COUNT_INSTRUCTION, "I count"):
        assert len(tok(piece, add_special_tokens=False)["input_ids"]) == 1, piece
    objects, kind, asked, question, count = next(scenes(1))
    doc = text + base.completion(objects, kind, asked, count, think=True) + tok.eos_token
    assert tok.decode(tok(doc, add_special_tokens=False)["input_ids"]) == doc


def test_an_image_is_one_token_per_grid_cell():
    from tinyzero_trl.data.multimodal import render_scene

    processor = base.build_processor()
    task = base.RECIPE["task"]
    image = render_scene([("red", "circle", 0)], size=task["size"], grid=task["grid"])
    enc = processor(text=[base.prompt_text(processor, "How many red objects are there?")], images=[[image]],
                    return_tensors="pt")
    assert enc["image_grid_thw"].tolist() == [[1, 6, 6]]  # 6x6 patches of 14 pixels, merged 2x2: 3x3 tokens
    assert (enc["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum() == 9


def test_the_recipe_generates_the_scenes_the_base_was_pretrained_on():
    cfg = compose(["+multimodal=grpo-tiny-clevr", f"model.name_or_path={base.PACKAGED_DIR}"])
    assert cfg["data"]["generate"] == base.GENERATE == {"seed": 1234, **base.RECIPE["task"], "questions": ["color"]}


@pytest.mark.slow
def test_packaged_base_counts_every_object_but_is_right_when_made_to_break_the_count_down():
    # The reason RL has something to fix, on held-out scenes: greedy, the base answers the total number of
    # objects; with "." banned after "objects" it breaks the count down and answers the asked count, mostly right.
    from transformers import AutoModelForImageTextToText, Qwen2VLForConditionalGeneration

    model = AutoModelForImageTextToText.from_pretrained(base.PACKAGED_DIR)
    assert type(model) is Qwen2VLForConditionalGeneration
    greedy, forced = base.held_out_behaviour(base.PACKAGED_DIR, num_test=100)
    assert greedy["breaks_down"] < 0.1 and greedy["accuracy"] < 0.2
    assert forced["breaks_down"] == 1.0 and forced["accuracy"] > 0.75
