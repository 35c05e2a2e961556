"""Task data for GRPO: each task's splits with prompts formatted, columns kept for the rewards."""

from __future__ import annotations

import datasets

from tinyzero_trl.config import DataConfig
from tinyzero_trl.data.countdown import format_countdown, load_countdown
from tinyzero_trl.data.math import format_math, load_math
from tinyzero_trl.data.sources import DataError

__all__ = ["DataError", "check_data", "format_countdown", "format_math", "load_task_data"]


def load_task_data(data: DataConfig, processing_class=None, *, seed: int = 0,
                   only_test: bool = False) -> datasets.DatasetDict:
    """Load ``data.task``'s train/test splits and format their prompts for ``processing_class``.

    ``data.test_path`` names a local file that is the whole held-out set (a benchmark such as SuperCLEVR-200);
    ``only_test`` (evaluation) then loads nothing else.
    """
    if data.test_path is not None:
        test = _load_test_file(data, processing_class)
        if only_test:
            return datasets.DatasetDict(test=test)
        from dataclasses import replace

        splits = load_task_data(replace(data, test_path=None), processing_class, seed=seed)
        return datasets.DatasetDict(train=splits["train"], test=test)
    common = {k: v for k, v in {"name": data.name, "revision": data.revision}.items() if v is not None}
    if data.task == "countdown":
        splits = load_countdown(
            data.source, path=data.path, num_train=data.num_train, seed=seed, generate=data.generate,
            **({"num_test": data.num_test} if data.num_test is not None else {}), **common,
        )
        template = data.template or "r1-chat"
        return splits.map(lambda ex: format_countdown(ex, processing_class, template=template))
    if data.task == "math":
        splits = load_math(data.source, path=data.path, num_train=data.num_train, num_test=data.num_test, **common)
        return splits.map(lambda ex: format_math(ex, data.system_prompt, data.instruction, processing_class,
                                                 template=data.template))
    if data.task == "multimodal":
        from tinyzero_trl.data.multimodal import load_multimodal  # imported lazily: needs PIL

        return load_multimodal(data, processing_class, seed=seed)
    raise DataError(f"data.task={data.task!r} has no loader")


def _load_test_file(data: DataConfig, processing_class) -> datasets.Dataset:
    from tinyzero_trl.data.sources import load_local

    path = data.test_path
    if data.task == "countdown":
        rows = load_local(path, ["nums", "target"])
        if data.num_test is not None:
            rows = rows.select(range(min(data.num_test, len(rows))))
        template = data.template or "r1-chat"
        return rows.map(lambda ex: format_countdown(ex, processing_class, template=template))
    if data.task == "math":
        from tinyzero_trl.data.math import _with_solution

        rows = _with_solution(load_local(path, ["problem"]), path)
        if data.num_test is not None:
            rows = rows.select(range(min(data.num_test, len(rows))))
        return rows.map(lambda ex: format_math(ex, data.system_prompt, data.instruction, processing_class,
                                               template=data.template))
    if data.task == "multimodal":
        from tinyzero_trl.data.multimodal import format_multimodal, load_test_file

        rows = load_test_file(path)
        if data.num_test is not None:
            rows = rows.select(range(min(data.num_test, len(rows))))
        return format_multimodal(datasets.DatasetDict(test=rows), data)["test"]
    raise DataError(f"data.task={data.task!r} has no loader")


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
        load_countdown("local", path=data.path, num_train=data.num_train,
                       **({"num_test": data.num_test} if data.num_test is not None else {}))
    elif data.task == "math":
        load_math("local", path=data.path, num_train=data.num_train, num_test=data.num_test)
    elif data.task == "multimodal":
        from tinyzero_trl.data.multimodal import COLUMNS
        from tinyzero_trl.data.sources import load_local

        load_local(data.path, COLUMNS)
