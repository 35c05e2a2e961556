"""Task data: each task's train/test splits with prompts formatted and the columns its rewards read.

A task (countdown, math, multimodal, and any you add) is one registered ``tasks.Task``: its module holds its
loader, its prompt formats and its checks, and registers it. ``sources`` is how every task reads the hub and
local files. This package imports ``datasets``, ``tinyzero_trl.model`` (an image processor's pixel bounds) and
``tinyzero_trl.errors``, never the config or the trainer: a ``DataConfig`` comes in as an argument.
"""

from __future__ import annotations

from tinyzero_trl.data import countdown, math, multimodal  # noqa: F401  (each registers its task)
from tinyzero_trl.data.countdown import format_countdown
from tinyzero_trl.data.math import format_math
from tinyzero_trl.data.tasks import TASKS, Task, get_task, register_task, task_names
from tinyzero_trl.errors import DataError

__all__ = ["TASKS", "DataError", "Task", "check_data", "format_countdown", "format_math", "get_task",
           "load_task_data", "register_task", "task_names"]


def load_task_data(data, processing_class=None, *, seed: int = 0):
    """Load ``data.task``'s train/test splits and format their prompts for ``processing_class``."""
    return get_task(data.task).load(data, processing_class, seed=seed)


def check_data(data) -> None:
    """What can be checked of ``data`` before a model loads (see ``Task.check``); loads nothing."""
    get_task(data.task).check(data)
