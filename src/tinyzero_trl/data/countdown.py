"""Countdown tasks: generate solvable ones, load TinyZero's set, and format them as prompts.

A task is a list of numbers ``nums`` and a ``target``; a solution is an expression that uses every number
exactly once with binary + - * / and equals the target exactly.
"""

from __future__ import annotations

import hashlib

import datasets

from tinyzero_trl.data.countdown_generate import generate_countdown
from tinyzero_trl.data.sources import DataError, check_columns, load_hub, load_local

HUB_DATASET = "Jiayi-Pan/Countdown-Tasks-3to4"
# TinyZero's split (examples/data_preprocess/countdown.py): the first 327,680 rows train, the next 1,024 test.
TINYZERO_TRAIN_SIZE = 327_680
TINYZERO_TEST_SIZE = 1_024

HELDOUT_FRACTION = 0.1


def is_heldout(nums: list[int], target: int) -> bool:
    """Whether a generated task belongs to the held-out split: a stable hash of its number multiset and target.

    Generated task spaces can be small (3 numbers in 1..6 make ~560 tasks), so drawing train and test rows
    from one stream would test on training tasks; splitting the task space itself keeps them disjoint.
    """
    key = ",".join(map(str, sorted(nums))) + f"={target}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") < HELDOUT_FRACTION * 2**32


def _generate_split(num_train: int, num_test: int, **opts) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Generated train and test rows whose tasks never overlap (``is_heldout`` decides the side)."""
    want = max(num_train / (1 - HELDOUT_FRACTION), num_test / HELDOUT_FRACTION)
    for scale in (1.3, 3, 10):
        rows = generate_countdown(int(want * scale) + 100, **opts)
        held = [is_heldout(n, t) for n, t in zip(rows["nums"], rows["target"], strict=True)]
        test_idx = [i for i, h in enumerate(held) if h][:num_test]
        train_idx = [i for i, h in enumerate(held) if not h][:num_train]
        if len(test_idx) == num_test and len(train_idx) == num_train:
            return rows.select(train_idx), rows.select(test_idx)
    raise DataError(
        f"data.generate: the task space is too small for {num_test} held-out tasks ({HELDOUT_FRACTION:.0%} of "
        "distinct tasks are held out); widen the number or target range"
    )


def load_countdown(
    source: str = "hub",
    *,
    path: str | None = None,
    name: str = HUB_DATASET,
    revision: str | None = None,
    num_train: int | None = None,
    num_test: int = TINYZERO_TEST_SIZE,
    seed: int = 0,
    generate: dict | None = None,
) -> datasets.DatasetDict:
    """Return ``{"train", "test"}`` countdown splits from the hub, a local file, or the generator.

    Hub and local data are split as TinyZero did: the first rows train, the following ``num_test`` test.
    Generated data is split by task (``is_heldout``), so no test task is also a training task.
    """
    if source == "generate":
        opts = {"seed": seed, **(generate or {})}  # data.generate.seed pins the tasks whatever the run's seed
        train, test = _generate_split(num_train if num_train is not None else 10_000, num_test, **opts)
        return datasets.DatasetDict(train=train, test=test)
    if source == "hub":
        full = load_hub(name, split="train", revision=revision)
        if num_train is None:
            num_train = TINYZERO_TRAIN_SIZE
        n_train = num_train
    elif source == "local":
        if not path:
            raise DataError("data.source=local needs data.path=FILE (a .jsonl/.json/.parquet with nums and target)")
        full = load_local(path, ["nums", "target"])
        n_train = num_train if num_train is not None else max(len(full) - num_test, 0)
    else:
        raise DataError(f"data.source={source!r} is not one of hub, local, generate")
    check_columns(full, ["nums", "target"], where=path or name)
    if n_train + num_test > len(full):
        # Small local files: keep the requested test size and train on the rest.
        num_test = min(num_test, len(full) // 2)
        n_train = len(full) - num_test
    if n_train <= 0:
        raise DataError(f"{path or name}: {len(full)} rows leave none to train on")
    return datasets.DatasetDict(
        train=full.select(range(n_train)),
        test=full.select(range(n_train, n_train + num_test)),
    )


# ---------------------------------------------------------------------------------------------------------
# Prompt templates. "r1-chat" is the original TinyZero-TRL README's prompt; "tinyzero-base" is the plain-text
# prompt TinyZero used for base models; "tiny" is the compact prompt of the countdown-tiny miniature, whose
# model is too small to spend its context on instructions.

R1_SYSTEM = (
    "You are a helpful assistant. You first thinks about the reasoning process in the mind and then provides "
    "the user with the answer."
)
R1_USER = (
    "Using the numbers {numbers}, create an equation that equals {target}. You can use basic arithmetic "
    "operations (+, -, *, /) one or multiple times but each number can only be used once. Show your work in "
    "<think> </think> tags. And return the final equation in <answer> </answer> tags, for example "
    "<answer> (1 + 2) / 3 </answer>. Think step by step inside <think> tags."
)
ASSISTANT_PREFILL = "Let me solve this step by step.\n<think>"
TINYZERO_BASE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer."
    "\nUser: Using the numbers {numbers}, create an equation that equals {target}. You can use basic arithmetic "
    "operations (+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. "
    "And return the final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>."
    "\nAssistant: Let me solve this step by step.\n<think>"
)
TINY = "{numbers_plain} = {target}\n<think>"

TEMPLATES = ("r1-chat", "tinyzero-base", "tiny")


def countdown_prompt(nums: list[int], target: int, tokenizer=None, template: str = "r1-chat") -> str:
    """Render one countdown prompt; every template ends inside an open ``<think>`` block."""
    numbers = list(nums)
    if template == "r1-chat":
        if tokenizer is None:
            raise ValueError("template 'r1-chat' needs a tokenizer with a chat template")
        messages = [
            {"role": "system", "content": R1_SYSTEM},
            {"role": "user", "content": R1_USER.format(numbers=numbers, target=target)},
            {"role": "assistant", "content": ASSISTANT_PREFILL},
        ]
        return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    if template == "tinyzero-base":
        return TINYZERO_BASE.format(numbers=numbers, target=target)
    if template == "tiny":
        return TINY.format(numbers_plain=" ".join(str(n) for n in numbers), target=target)
    raise ValueError(f"unknown countdown template {template!r}; choose one of {list(TEMPLATES)}")


def format_countdown(example: dict, tokenizer=None, template: str = "r1-chat") -> dict:
    """Map a ``{nums, target}`` row to ``{prompt, target, nums}`` for GRPO (the original README's function)."""
    numbers, target = example["nums"], example["target"]
    return {"prompt": countdown_prompt(numbers, target, tokenizer, template), "target": target, "nums": numbers}
