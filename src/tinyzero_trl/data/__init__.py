"""Task data for GRPO: each task's splits with prompts formatted, columns kept for the rewards."""

from __future__ import annotations

import datasets

from tinyzero_trl.config import DataConfig
from tinyzero_trl.data.countdown import format_countdown, load_countdown
from tinyzero_trl.data.math import format_math, load_math
from tinyzero_trl.data.sources import DataError

__all__ = ["DataError", "format_countdown", "format_math", "load_task_data"]


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
        splits = load_math(data.source, path=data.path, num_train=data.num_train, num_test=data.num_test,
                           generate=data.generate, **common)
        return splits.map(lambda ex: format_math(ex, data.system_prompt, data.instruction, processing_class))
    if data.task == "multimodal":
        from tinyzero_trl.data.multimodal import load_multimodal  # imported lazily: needs PIL

        return load_multimodal(data, processing_class, seed=seed)
    raise DataError(f"data.task={data.task!r} has no loader")
