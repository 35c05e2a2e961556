"""Task data for GRPO: each task's splits with prompts formatted, columns kept for the rewards."""

from __future__ import annotations

import datasets

from tinyzero_trl.config import DataConfig
from tinyzero_trl.data.countdown import format_countdown, load_countdown
from tinyzero_trl.data.math import format_math, load_math
from tinyzero_trl.data.sources import DataError

__all__ = ["DataError", "check_data", "format_countdown", "format_math", "load_task_data"]


def load_task_data(data: DataConfig, processing_class=None, *, seed: int = 0) -> datasets.DatasetDict:
    """Load ``data.task``'s train/test splits and format their prompts for ``processing_class``."""
    common = {k: v for k, v in {"name": data.name, "revision": data.revision}.items() if v is not None}
    if data.task == "countdown":
        splits = load_countdown(data.source, path=data.path, num_train=data.num_train, num_test=data.num_test,
                                seed=seed, generate=data.generate, test_split=data.test_split, **common)
        template = data.template or "r1-chat"
        if template == "dataset":
            _check_prompt_column(splits, data)
        return splits.map(lambda ex: format_countdown(ex, processing_class, template=template))
    if data.task == "math":
        if data.test_split is not None:
            raise DataError("data.test_split is not used by the math task: its test set is MATH-500 (hub), the "
                            "last rows of the local file, or generated; unset it")
        splits = load_math(data.source, path=data.path, num_train=data.num_train, num_test=data.num_test,
                           generate=data.generate, **common)
        return splits.map(lambda ex: format_math(ex, data.system_prompt, data.instruction, processing_class,
                                                 template=data.template))
    if data.task == "multimodal":
        from tinyzero_trl.data.multimodal import load_multimodal  # imported lazily: needs PIL

        return load_multimodal(data, processing_class, seed=seed)
    raise DataError(f"data.task={data.task!r} has no loader")


def _check_prompt_column(splits: datasets.DatasetDict, data: DataConfig) -> None:
    from tinyzero_trl.data.countdown import PROMPT_COLUMN

    for split, ds in splits.items():
        if PROMPT_COLUMN not in ds.column_names:
            raise DataError(f"data.template=dataset takes each row's own prompt text from column {PROMPT_COLUMN!r} "
                            f"(as lkevinzc/CountDownZero has); the {split} rows of {data.path or data.name} have "
                            f"only {ds.column_names}")


def check_data(data: DataConfig) -> None:
    """What can be checked of ``data`` before a model loads: the template name, and a local file's rows and columns
    (missing, empty, malformed or too short files fail here, in seconds, naming the file)."""
    if data.task == "countdown":
        from tinyzero_trl.data.countdown import TEMPLATES

        if data.template is not None and data.template not in TEMPLATES:
            raise DataError(f"data.template={data.template!r} is not a countdown template; choose one of "
                            f"{list(TEMPLATES)}")
    if data.task == "math" and data.template is not None and "{problem}" not in data.template:
        raise DataError(f"data.template={data.template!r}: a math template must say where the problem goes, with "
                        "{problem}")
    if data.source != "local":
        return
    if data.task == "countdown":
        splits = load_countdown("local", path=data.path, num_train=data.num_train, num_test=data.num_test,
                                test_split=data.test_split)
        if data.template == "dataset":
            _check_prompt_column(splits, data)
        train_rows = len(splits["train"])
    elif data.task == "math":
        train_rows = len(load_math("local", path=data.path, num_train=data.num_train, num_test=data.num_test)["train"])
    elif data.task == "multimodal":
        from tinyzero_trl.data.multimodal import COLUMNS, PROMPT_COLUMN
        from tinyzero_trl.data.sources import load_local, local_split_files

        columns = COLUMNS + [PROMPT_COLUMN] if data.template == "dataset" else COLUMNS
        train_file, test_file = local_split_files(data.path, data.test_split)
        if test_file is not None:
            load_local(test_file, columns)
        train_rows = len(load_local(train_file, columns)) if train_file is not None else 0
    else:
        return
    if train_rows == 0:
        raise DataError(f"data.path={data.path}: no training rows (a folder needs train.jsonl, or .json/.parquet/.csv, "
                        "to train on; one holding only a test split is for evaluation)")
