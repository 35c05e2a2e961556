"""Countdown tasks: generate solvable ones, load TinyZero's or oat-zero's set, and format them as prompts.

A task is a list of numbers ``nums`` and a ``target``; a solution is an expression that uses every number
exactly once with binary + - * / and equals the target exactly. Rows come as ``nums``/``target`` columns
(TinyZero's Countdown-Tasks-3to4) or in oat-zero's form (lkevinzc/CountDownZero): ``input``, the whole prompt
text, and ``gt_answer``, a JSON string ``{"target": T, "numbers": [...]}`` (oat-zero training/countdown.py
``compute_score``), from which ``nums`` and ``target`` are read.
"""

from __future__ import annotations

import hashlib
import json

import datasets

from tinyzero_trl.data.countdown_generate import generate_countdown
from tinyzero_trl.data.sources import (
    DataError,
    check_local,
    drop_long_prompts,
    first_rows,
    load_hub,
    load_local,
    local_split_files,
    require_columns,
    shuffled,
)
from tinyzero_trl.data.tasks import Task, register_task

HUB_DATASET = "Jiayi-Pan/Countdown-Tasks-3to4"
OAT_ZERO_DATASET = "lkevinzc/CountDownZero"  # splits train and test; oat-zero evaluates the first 1000 test rows
# TinyZero's split (examples/data_preprocess/countdown.py): the first 327,680 rows train, the next 1,024 test.
TINYZERO_TRAIN_SIZE = 327_680
TINYZERO_TEST_SIZE = 1_024
GT_ANSWER = "gt_answer"  # oat-zero's output_key
PROMPT_COLUMN = "input"  # oat-zero's input_key: the prompt text, fed as is (template "dataset")

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


def _gt_answer(raw, row: int, where: str) -> tuple[list[int], int]:
    """``(nums, target)`` from one oat-zero ``gt_answer``; a DataError names the row and the field otherwise."""
    def bad(why: str) -> DataError:
        shown = raw if not isinstance(raw, str) or len(raw) <= 120 else raw[:120] + "..."
        return DataError(f"{where}: row {row} (counting from 0), field {GT_ANSWER}: {why}; got {shown!r}. Expected "
                         'a JSON object such as {"target": 24, "numbers": [3, 4, 6]}')

    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError as err:
            raise bad(f"not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise bad("not a JSON object")
    target, numbers = value.get("target"), value.get("numbers")
    if isinstance(target, float) and target.is_integer():
        target = int(target)
    if isinstance(target, bool) or not isinstance(target, int):
        raise bad("'target' must be an integer")
    if not isinstance(numbers, list) or not numbers or any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
        raise bad("'numbers' must be a non-empty list of integers")
    return numbers, target


def _require_task_columns(columns: list[str], rows: int, where: str) -> None:
    """A countdown file has ``nums`` and ``target``, or oat-zero's ``gt_answer``, and at least one row."""
    if not ({"nums", "target"} <= set(columns) or GT_ANSWER in columns):
        raise DataError(f"{where}: each row needs nums and target, or {GT_ANSWER} (oat-zero's JSON with target and "
                        f"numbers); found {columns}")
    require_columns(columns, rows, [], where=where)


def countdown_rows(ds: datasets.Dataset, where: str) -> datasets.Dataset:
    """``ds`` with ``nums`` and ``target`` columns: kept when present, else read from oat-zero's ``gt_answer``."""
    _require_task_columns(ds.column_names, len(ds), where)
    if "nums" in ds.column_names and "target" in ds.column_names:
        return ds
    parsed = [_gt_answer(raw, i, where) for i, raw in enumerate(ds[GT_ANSWER])]
    ds = ds.remove_columns([c for c in ("nums", "target") if c in ds.column_names])
    return ds.add_column("nums", [p[0] for p in parsed]).add_column("target", [p[1] for p in parsed])


def _local_splits(path: str | None, test_split: str | None) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    if not path:
        raise DataError("data.source=local needs data.path=FILE (a .jsonl/.json/.parquet with nums and target, or "
                        "input and gt_answer) or a folder with train.jsonl and test.jsonl")
    train_file, test_file = local_split_files(path, test_split)
    test = countdown_rows(load_local(test_file, []), str(test_file)) if test_file else None
    if train_file is None:  # an evaluation-only folder: check_data refuses it for training
        return test.select(range(0)), test
    return countdown_rows(load_local(train_file, []), str(train_file)), test


def load_countdown(
    source: str = "hub",
    *,
    path: str | None = None,
    name: str = HUB_DATASET,
    revision: str | None = None,
    num_train: int | None = None,
    num_test: int | None = None,
    seed: int = 0,
    generate: dict | None = None,
    test_split: str | None = None,
    shuffle_seed: int | None = None,
) -> datasets.DatasetDict:
    """Return ``{"train", "test"}`` countdown splits from the hub, a local file or folder, or the generator.

    With a test split (``test_split`` on the hub; a local folder's ``test`` file) the first ``num_test`` rows of
    it test (all when None) and the first ``num_train`` rows of ``train`` train (all when None), as oat-zero
    takes them. Otherwise hub and local data are split as TinyZero did: the first rows train (327,680 on the
    hub), the following ``num_test`` (1,024) test. Generated data is split by task (``is_heldout``).
    ``shuffle_seed`` shuffles the train split before any row is taken (``sources.shuffled``).
    """
    if source == "generate":
        if test_split is not None or shuffle_seed is not None:
            raise DataError("data.test_split, data.shuffle_seed: generated tasks have no named splits and no order "
                            "to shuffle (the test tasks are drawn apart from the training ones); unset them")
        opts = {"seed": seed, **(generate or {})}  # data.generate.seed pins the tasks whatever the run's seed
        train, test = _generate_split(num_train if num_train is not None else 10_000,
                                      num_test if num_test is not None else TINYZERO_TEST_SIZE, **opts)
        return datasets.DatasetDict(train=train, test=test)
    if source == "hub":
        full = countdown_rows(load_hub(name, split="train", revision=revision), name)
        test = None
        if test_split is not None:
            test = countdown_rows(load_hub(name, split=test_split, revision=revision), f"{name} (split {test_split})")
        elif num_train is None:
            num_train = TINYZERO_TRAIN_SIZE
    elif source == "local":
        full, test = _local_splits(path, test_split)
    else:
        raise DataError(f"data.source={source!r} is not one of hub, local, generate")
    full = shuffled(full, shuffle_seed)
    if test is not None:
        return datasets.DatasetDict(train=first_rows(full, num_train), test=first_rows(test, num_test))
    where = path or name
    num_test = TINYZERO_TEST_SIZE if num_test is None else num_test
    n_train = num_train if num_train is not None else max(len(full) - num_test, 0)
    if n_train + num_test > len(full):
        # Small local files: keep the requested test size and train on the rest.
        num_test = min(num_test, len(full) // 2)
        n_train = len(full) - num_test
    if n_train <= 0:
        raise DataError(f"{where}: {len(full)} rows leave none to train on")
    return datasets.DatasetDict(
        train=full.select(range(n_train)),
        test=full.select(range(n_train, n_train + num_test)),
    )


# ---------------------------------------------------------------------------------------------------------
# Prompt templates. "r1-chat" is the original TinyZero-TRL README's prompt; "tinyzero-base" is the plain-text
# prompt TinyZero used for base models; "tiny" is the compact prompt of the countdown-tiny miniature, whose
# model is too small to spend its context on instructions; "dataset" is each row's own prompt text (column
# "input", as oat-zero feeds lkevinzc/CountDownZero: raw, no chat template).

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

TEMPLATES = ("r1-chat", "tinyzero-base", "tiny", "dataset")


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
    if template == "dataset":
        raise ValueError(f"template 'dataset' takes each row's {PROMPT_COLUMN!r} column; it cannot be rendered "
                         "from nums and target")
    raise ValueError(f"unknown countdown template {template!r}; choose one of {list(TEMPLATES)}")


def format_countdown(example: dict, tokenizer=None, template: str = "r1-chat") -> dict:
    """Map a ``{nums, target}`` row to ``{prompt, target, nums}`` for GRPO (the original README's function).

    Template ``dataset`` takes the row's own ``input`` text as the prompt.
    """
    numbers, target = example["nums"], example["target"]
    if template == "dataset":
        return {"prompt": example[PROMPT_COLUMN], "target": target, "nums": numbers}
    return {"prompt": countdown_prompt(numbers, target, tokenizer, template), "target": target, "nums": numbers}


# ---------------------------------------------------------------------------------------------------------
# The countdown task, as the registry knows it.

def _check_prompt_column(columns: list[str], where: str) -> None:
    if PROMPT_COLUMN not in columns:
        raise DataError(f"data.template=dataset takes each row's own prompt text from column {PROMPT_COLUMN!r} (as "
                        f"lkevinzc/CountDownZero has); the rows of {where} have only {columns}")


def load_task(data, processing_class=None, *, seed: int = 0) -> datasets.DatasetDict:
    """``data``'s countdown splits, each row's prompt rendered with ``data.template`` (default ``r1-chat``)."""
    common = {k: v for k, v in {"name": data.name, "revision": data.revision}.items() if v is not None}
    splits = load_countdown(data.source, path=data.path, num_train=data.num_train, num_test=data.num_test,
                            seed=seed, generate=data.generate, test_split=data.test_split,
                            shuffle_seed=data.shuffle_seed, **common)
    template = data.template or "r1-chat"
    if template == "dataset":
        for split, ds in splits.items():
            _check_prompt_column(ds.column_names, f"{data.path or data.name} ({split})")
    splits = splits.map(lambda ex: format_countdown(ex, processing_class, template=template))
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    return datasets.DatasetDict({split: drop_long_prompts(ds, tokenizer, data.max_prompt_tokens, where=split)
                                 for split, ds in splits.items()})


def check_task(data) -> None:
    """The template name, and a local source's files (columns, rows) without loading them."""
    if data.template is not None and data.template not in TEMPLATES:
        raise DataError(f"data.template={data.template!r} is not a countdown template; choose one of "
                        f"{list(TEMPLATES)}")

    def check_file(columns, rows, where):
        _require_task_columns(columns, rows, where)
        if data.template == "dataset":
            _check_prompt_column(columns, where)

    check_local(data, check_file)


TASK = register_task(Task(
    name="countdown", load=load_task, check=check_task,
    evaluation_data={"task": "countdown", "source": "hub", "template": "r1-chat"},
    scorer_rewards=("countdown_equation",),
))
