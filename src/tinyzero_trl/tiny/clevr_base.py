"""Build "clevr-tiny-base", an offline, deterministic, CPU-sized vision-language BASE model for clevr-tiny.

The model is a Qwen2-VL (vision tower, patch merger, M-RoPE language model: the class
``AutoModelForImageTextToText`` loads Qwen2-VL-2B-Instruct as), 836,544 parameters, with a ``Qwen2VLProcessor``
whose chat template is Qwen2-VL-Instruct's (a default system turn, then the user turn of image and question). It
is pretrained on the miniature's own scenes (``data/multimodal.py``: red, green, blue and yellow circles, squares
and triangles in a 3x3 grid on a grey floor, 84x84 pixels, so that each grid cell is exactly one image token
after Qwen2-VL's 2x2 merge), training side of the scene split only, with R1-V's question template and answer
format. A document either breaks the count down before answering, the asked color (or shape) last, right:

    How many red objects are there?
    <think>I count 6 objects: green 1, blue 3, yellow 0, red 2.</think> <answer> 2 </answer>

or stops after the total and answers it, the classic slip of a model that counts every object in the picture
instead of the ones asked about:

    <think>I count 6 objects.</think> <answer> 6 </answer>

The first two phases teach the breakdowns (colors, shapes, counting); in the last, three documents in four take
the slip. So greedy decoding answers the total, right only where every object is of the asked color (0.02 of the
held-out questions), while made to break the count down (the token "." banned right after "objects") it reads
the asked count off its own breakdown and is right on 0.985 of them. Both forms are R1-V's format (one think
block, then the answer), so ``vl_format`` cannot tell them apart: GRPO has to discover from ``count_accuracy``
alone that breaking the count down pays, a single choice after the word "objects".

What it cannot do: count shapes. Half of its pretraining questions ask about a shape, but on the grey floor its
vision tower learned colors and not shapes within this budget (on the generator's white canvas it was the other
way round), so the miniature asks about colors only; the shapes stay in the pictures as distractors.
"""

from __future__ import annotations

import random
import string
import time
from pathlib import Path
from types import SimpleNamespace

from tinyzero_trl.data.multimodal import COLORS, COUNT_INSTRUCTION, SHAPES
from tinyzero_trl.tiny import pretrain as tiny_pretrain

RECIPE = {
    "version": 1,
    # Model: Qwen2-VL architecture. Language model as the other tiny bases (hidden 96, 4 layers); vision tower of
    # depth 2, width 64.
    "hidden_size": 96,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 256,
    "vision_embed_dim": 64,
    "vision_depth": 2,
    "vision_num_heads": 2,
    "vision_mlp_ratio": 2,
    # Task distribution of the pretraining scenes: the miniature's task (the recipe's `data.generate`, less its
    # seed), training side of the scene split only.
    "task": {"size": 84, "grid": 3, "min_objects": 2, "max_objects": 9, "questions": ["color", "shape"],
             "background": [128, 128, 128]},
    "batch_size": 32,
    "weight_decay": 0.01,
    # Each phase: a fresh AdamW with warmup and cosine decay; `think_frac` of its documents break the count down.
    "phases": [
        {"steps": 1200, "lr": 3e-3, "warmup": 50, "think_frac": 1.0, "data_seed": 0},
        {"steps": 1000, "lr": 2e-3, "warmup": 10, "think_frac": 1.0, "data_seed": 2},
        {"steps": 300, "lr": 1e-3, "warmup": 10, "think_frac": 0.25, "data_seed": 1},
    ],
    # Fixed, so the weights do not depend on the core count (bit-identical on the same CPU type).
    "threads": 1,
}
# The recipe's data.generate: the task above, and fixed scenes whatever the run's seed.
GENERATE = {"seed": 1234, **RECIPE["task"], "questions": ["color"]}

SYSTEM_PROMPT = "You are a helpful assistant."
# Qwen2-VL-Instruct's chat template, image parts only: a default system turn when the conversation has none.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PAD, EOS = "<|endoftext|>", "<|im_end|>"
VISION = ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>"]
MARKERS = ["<|im_start|>", *VISION, "<think>", "</think>", "<answer>", "</answer>"]
# Words and phrases that are always the same are one token each, as in the other tiny bases.
WORDS = [*COLORS, *SHAPES, "objects", "How many", "are there?", "I count", "of which", COUNT_INSTRUCTION, SYSTEM_PROMPT,
         "system", "user", "assistant"]
CHARS = [c for c in string.printable if c not in "\t\r\x0b\x0c"]

# The build of RECIPE (seed 0) ships with the package; `tinyzero-trl tiny-base --task clevr --out DIR --check`
# rebuilds it and says whether the bits match.
PACKAGED_DIR = tiny_pretrain.ASSETS / "clevr-tiny-base"


def build_tokenizer():
    """Printable ASCII characters, Qwen2-VL's chat and vision markers, the tags, colors, shapes and phrases."""
    return tiny_pretrain.make_tokenizer(CHARS, MARKERS + WORDS, chat_template=CHAT_TEMPLATE, pad=PAD, eos=EOS)


def build_processor(tokenizer=None):
    """A ``Qwen2VLProcessor``: Qwen2-VL's image processor (patch 14, merge 2, R1-V's pixel bounds) and the tokenizer."""
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    from tinyzero_trl.model.vlm import qwen2_vl_video_processor

    tokenizer = tokenizer or build_tokenizer()
    image_processor = Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=401408, patch_size=14, merge_size=2,
                                               temporal_patch_size=2)
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                            video_processor=qwen2_vl_video_processor(), chat_template=CHAT_TEMPLATE)


def build_model(tokenizer):
    """A randomly initialised ``Qwen2VLForConditionalGeneration`` of RECIPE's shape (seed the torch rng first)."""
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    r, token = RECIPE, tokenizer.convert_tokens_to_ids
    text_config = dict(
        vocab_size=len(tokenizer), hidden_size=r["hidden_size"], intermediate_size=r["intermediate_size"],
        num_hidden_layers=r["num_hidden_layers"], num_attention_heads=r["num_attention_heads"],
        num_key_value_heads=r["num_key_value_heads"], max_position_embeddings=r["max_position_embeddings"],
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section(r)},
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    vision_config = dict(depth=r["vision_depth"], embed_dim=r["vision_embed_dim"], hidden_size=r["hidden_size"],
                         num_heads=r["vision_num_heads"], mlp_ratio=r["vision_mlp_ratio"], patch_size=14,
                         spatial_merge_size=2, temporal_patch_size=2)
    config = Qwen2VLConfig(
        text_config=text_config, vision_config=vision_config, tie_word_embeddings=True,
        image_token_id=token("<|image_pad|>"), video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"), vision_end_token_id=token("<|vision_end|>"),
    )
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    return model


def mrope_section(recipe: dict) -> list[int]:
    """M-RoPE's split of each head's rotary pairs into (time, height, width): a third each, time taking the rest
    ([4, 4, 4] for RECIPE's 24-wide heads; Qwen2-VL-2B splits its 64 as [16, 24, 24])."""
    half = recipe["hidden_size"] // recipe["num_attention_heads"] // 2
    return [half - 2 * (half // 3), half // 3, half // 3]


def breakdown(objects, kind: str, asked: str) -> str:
    """The count broken down along the asked attribute, the asked color or shape last: "green 1, blue 3, yellow 0,
    red 2" (every color, or every shape, the others in a fixed order)."""
    names, index = (list(COLORS), 0) if kind == "color" else (list(SHAPES), 1)
    names = [n for n in names if n != asked] + [asked]
    return ", ".join(f"{n} {sum(o[index] == n for o in objects)}" for n in names)


def completion(objects, kind: str, asked: str, count: int, think: bool) -> str:
    """What the base writes: the total, then its breakdown and the asked count, or at once the total (the slip)."""
    if think:
        return f"<think>I count {len(objects)} objects: {breakdown(objects, kind, asked)}.</think> <answer> {count} </answer>"
    return f"<think>I count {len(objects)} objects.</think> <answer> {len(objects)} </answer>"


def documents(n: int, rng: random.Random, think_frac: float) -> list[tuple]:
    """``n`` pretraining documents of training-side scenes: (image, question, completion)."""
    from tinyzero_trl.data.multimodal import ask, draw_scene, render_scene

    task = RECIPE["task"]
    out = []
    for _ in range(n):
        objects = draw_scene(rng, grid=task["grid"], min_objects=task["min_objects"], max_objects=task["max_objects"],
                             colors=list(COLORS), shapes=list(SHAPES), side="train")
        kind = rng.choice(task["questions"])
        question, count, color, shape = ask(objects, kind, rng)
        text = completion(objects, kind, color or shape, count, rng.random() < think_frac)
        canvas = {"background": tuple(task["background"])} if "background" in task else {}
        out.append((render_scene(objects, size=task["size"], grid=task["grid"], **canvas), question, text))
    return out


def prompt_text(processor, question: str) -> str:
    """The prompt exactly as training renders it: R1-V's question template through the chat template."""
    from tinyzero_trl.data.multimodal import multimodal_prompt

    return processor.apply_chat_template([multimodal_prompt(question)], tokenize=False, add_generation_prompt=True)[0]


def encode(processor, docs: list[tuple], prompts: dict):
    """A right-padded training batch with labels on the completions (and their closing ``<|im_end|>``) only."""
    import torch

    tok = processor.tokenizer
    texts = [prompts[q] + c + EOS for _, q, c in docs]
    enc = processor(text=texts, images=[[image] for image, _, _ in docs], padding=True, return_tensors="pt")
    lengths = enc["attention_mask"].sum(dim=1)
    done = [len(tok(c + EOS, add_special_tokens=False)["input_ids"]) for _, _, c in docs]
    labels = torch.full_like(enc["input_ids"], -100)
    for row, (length, n) in enumerate(zip(lengths.tolist(), done)):
        labels[row, length - n : length] = enc["input_ids"][row, length - n : length]
    enc["labels"] = labels
    return enc


def pretrain_phase(model, processor, phase: dict, seed: int, progress: str) -> None:
    """One phase: ``phase['steps']`` batches of fresh documents, AdamW with linear warmup then cosine to 0."""
    import torch

    rng = random.Random(phase["data_seed"] + 1000 * seed)
    steps, bsz = phase["steps"], RECIPE["batch_size"]
    tok = processor.tokenizer
    tok.padding_side = "right"
    prompts: dict[str, str] = {}
    digits = torch.tensor(tok.convert_tokens_to_ids(list("0123456789")), dtype=torch.long)
    opt, sched = tiny_pretrain.phase_optimizer(model, phase, RECIPE["weight_decay"])
    t0 = time.time()
    for step in range(steps):
        docs = documents(bsz, rng, phase["think_frac"])
        for _, question, _ in docs:
            if question not in prompts:
                prompts[question] = prompt_text(processor, question)
        batch = encode(processor, docs, prompts)
        labels = batch.pop("labels")
        logits = model(**batch).logits[:, :-1]
        loss = tiny_pretrain.weighted_token_loss(logits, labels[:, 1:], digits, phase.get("count_weight", 1.0))
        tiny_pretrain.optimizer_step(model, opt, sched, loss)
        tiny_pretrain.report(progress, step, steps, loss, t0)
    tok.padding_side = "left"


def build_tiny_base(out_dir: str | Path | None = None, *, seed: int = 0, progress: bool = True) -> Path:
    """Build (or reuse) the clevr-tiny base model and processor in ``out_dir``; return the directory.

    Idempotent: a directory holding a complete build with the same recipe hash is returned untouched.
    """
    out_dir = Path(out_dir) if out_dir is not None else tiny_pretrain.cache_dir(PACKAGED_DIR.name)
    rhash = tiny_pretrain.needs_build(out_dir, RECIPE, seed)
    if rhash is None:
        return out_dir
    start = time.time()
    with tiny_pretrain.deterministic(RECIPE["threads"], seed):
        processor = build_processor()
        model = build_model(processor.tokenizer)
        model.train()
        for number, phase in enumerate(RECIPE["phases"], 1):
            pretrain_phase(model, processor, phase, seed, progress=f"phase {number}" if progress else "")
    return tiny_pretrain.save_build(out_dir, model, processor, recipe=RECIPE, seed=seed, rhash=rhash, start=start)


def held_out_behaviour(model_dir: str | Path, *, num_test: int = 200, max_new_tokens: int = 64,
                       batch_size: int = 100) -> tuple[dict, dict]:
    """What a model does on the held-out scenes, greedy: as it is, and made to break its count down (the ceiling).

    Returns two dicts, ``accuracy`` (R1-V's evaluation rule, ``r1v_count_eval``), ``breaks_down`` (share of
    completions that go on after "I count N objects") and ``by_kind`` accuracy (color or shape questions): first
    as the model decodes, then with "." banned right after "objects", the choice GRPO has to discover.
    """
    import torch
    from transformers import AutoModelForImageTextToText
    from trl.data_utils import prepare_multimodal_messages

    from tinyzero_trl.data.multimodal import load_multimodal
    from tinyzero_trl.model.vlm import load_processor
    from tinyzero_trl.rewards.r1v import r1v_count_eval_reward

    processor = load_processor(str(model_dir))
    tok = processor.tokenizer
    tok.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    # The data settings clevr-tiny's recipe gives the loader (a DataConfig's fields: this layer sits beside config).
    data = SimpleNamespace(task="multimodal", source="generate", name=None, path=None, revision=None, num_train=0,
                           num_test=num_test, test_split=None, template=None, system_prompt=None, instruction=None,
                           generate=dict(GENERATE), min_pixels=3136, max_pixels=401408)
    test = load_multimodal(data, processor)["test"]
    ban = [[tok.convert_tokens_to_ids("objects"), tok.convert_tokens_to_ids(".")]]
    out = []
    for forced in (False, True):
        completions = []
        for lo in range(0, len(test), batch_size):
            rows = test.select(range(lo, min(lo + batch_size, len(test))))
            chunk = [prepare_multimodal_messages(p, images=[im]) for p, im in zip(rows["prompt"], rows["image"])]
            enc = processor.apply_chat_template(chunk, add_generation_prompt=True, tokenize=True, return_dict=True,
                                                return_tensors="pt", processor_kwargs={"padding": True})
            with torch.no_grad():
                gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, top_p=None, top_k=None,
                                     temperature=None, pad_token_id=tok.pad_token_id,
                                     bad_words_ids=ban if forced else None)
            completions += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        scores = r1v_count_eval_reward(completions, solution=test["solution"])
        by_kind: dict[str, list[float]] = {}
        for color, s in zip(test["color"], scores):
            by_kind.setdefault("color" if color else "shape", []).append(s)
        out.append({"accuracy": sum(scores) / len(scores),
                    "breaks_down": sum("objects:" in c for c in completions) / len(completions),
                    "by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
                    "examples": completions[:3]})
    return out[0], out[1]
