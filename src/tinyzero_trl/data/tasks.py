"""The task registry: a task is one object that says how its data is loaded, checked and evaluated.

Everything that differs between countdown, math and the image tasks is here, as fields of a ``Task``, so the
trainer, the evaluator and the config check never branch on a task's name. A task of your own is one module
that calls ``register_task(Task(...))``, named in ``$TINYZERO_TASK_MODULES`` (comma-separated, importable; every
rank imports it), as rewards are added with ``$TINYZERO_REWARD_MODULES``.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tinyzero_trl.errors import ConfigError

PLUGINS_ENV = "TINYZERO_TASK_MODULES"


def _nothing_to_check(data) -> None:
    return None


@dataclass(frozen=True)
class Task:
    """One task of the kit.

    ``load(data, processing_class, seed)`` returns the ``train`` and ``test`` splits of ``data`` (a
    ``DataConfig``) with a ``prompt`` column formatted for ``processing_class`` and the columns its rewards read.
    ``check(data)`` fails, with one line naming the setting or file, on what can be known before a model loads
    (a template name, a local file's columns), and loads nothing. ``evaluation_data`` are the data settings for
    evaluating a model that is not in a run directory (which brings its own), and ``scorer_rewards`` the rewards
    whose accuracy reward scores it. ``images``: prompts hold an image (a processor instead of a tokenizer, image
    and text generation).
    """

    name: str
    load: Callable
    check: Callable = _nothing_to_check
    evaluation_data: Mapping = field(default_factory=dict)
    scorer_rewards: tuple[str, ...] = ()
    images: bool = False


TASKS: dict[str, Task] = {}


def register_task(task: Task, *, overwrite: bool = False) -> Task:
    """Add ``task`` to the registry under ``task.name`` and return it; a taken name is a ``ValueError``."""
    if not task.name.isidentifier():
        raise ValueError(f"task name {task.name!r} must be an identifier (recipes write data.task: NAME)")
    if task.name in TASKS and not overwrite:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def load_plugins() -> None:
    """Import the modules named in ``$TINYZERO_TASK_MODULES``; each registers its tasks."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"{PLUGINS_ENV}: cannot import {module!r} ({err}); put its folder on PYTHONPATH") from err


def task_names() -> list[str]:
    """The registered tasks, plugins included."""
    load_plugins()
    return sorted(TASKS)


def get_task(name) -> Task:
    """The task registered as ``name``; a ``ConfigError`` naming the known ones (and the closest) otherwise."""
    if name not in TASKS:
        load_plugins()
    if name not in TASKS:
        close = difflib.get_close_matches(str(name), list(TASKS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"data.task={name!r} is not one of {sorted(TASKS)}{hint}: start from a recipe, e.g. "
                          "+countdown=grpo-qwen-2.5-3b-base or +math=grpo-deepseek-distill-1.5b-inst")
    return TASKS[name]
