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
