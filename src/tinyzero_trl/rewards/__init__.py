"""Reward functions and their registry.

``REWARDS`` maps a name (what a recipe writes under ``rewards:``) to a TRL reward function
``f(completions, **dataset_columns) -> list[float | None]``. Each registered function's ``__name__`` is its
registry name, because TRL logs ``rewards/<__name__>/mean``. Add a reward with::

    @register("my_reward")
    def my_reward(completions, **kwargs): ...
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from numbers import Real

from tinyzero_trl.rewards.countdown import countdown_equation_reward
from tinyzero_trl.rewards.format import (
    countdown_format_reward,
    think_close_format_reward,
    think_format_reward,
)
from tinyzero_trl.rewards.math import math_accuracy_reward
from tinyzero_trl.rewards.mini_r1 import mini_r1_equation_reward, mini_r1_format_reward
from tinyzero_trl.rewards.tinyzero import tinyzero_countdown_score
from tinyzero_trl.rewards.vision import count_accuracy_reward, vl_format_reward

RewardFunc = Callable[..., list]

REWARDS: dict[str, RewardFunc] = {}


def register(name: str, *, overwrite: bool = False) -> Callable[[RewardFunc], RewardFunc]:
    """Decorator registering a reward function under ``name``; returns the function unchanged.

    The registry stores a thin wrapper whose ``__name__`` is ``name``, so the original function keeps its
    own name. Registering a taken name raises ``ValueError`` unless ``overwrite=True``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"reward name {name!r} must be an identifier (it becomes TRL's metric name)")

    def decorator(func: RewardFunc) -> RewardFunc:
        if name in REWARDS and not overwrite:
            raise ValueError(f"reward {name!r} is already registered")

        @functools.wraps(func)
        def reward(*args, **kwargs):
            return func(*args, **kwargs)

        reward.__name__ = reward.__qualname__ = name
        REWARDS[name] = reward
        return func

    return decorator


register("countdown_equation")(countdown_equation_reward)
register("countdown_format")(countdown_format_reward)
register("tinyzero_countdown")(tinyzero_countdown_score)
register("mini_r1_format")(mini_r1_format_reward)
register("mini_r1_equation")(mini_r1_equation_reward)
register("math_accuracy")(math_accuracy_reward)
register("think_format")(think_format_reward)
register("think_close_format")(think_close_format_reward)
register("count_accuracy")(count_accuracy_reward)
register("vl_format")(vl_format_reward)


def _unknown(name) -> ValueError:
    close = difflib.get_close_matches(str(name), list(REWARDS), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown reward {name!r}.{hint} Known rewards: {', '.join(sorted(REWARDS))}")


def get_reward_funcs(names: list[str] | dict[str, float]) -> tuple[list[RewardFunc], list[float]]:
    """Resolve reward names to ``(functions, weights)`` in the given order.

    ``names`` is a list (every weight 1.0) or a ``{name: weight}`` mapping. An unknown name raises
    ``ValueError`` naming it, the closest valid names and all valid names.
    """
    if isinstance(names, str):
        names = [names]
    pairs = list(names.items()) if isinstance(names, dict) else [(n, 1.0) for n in names]
    funcs, weights = [], []
    for name, weight in pairs:
        if name not in REWARDS:
            raise _unknown(name)
        if isinstance(weight, bool) or not isinstance(weight, Real):
            raise ValueError(f"reward {name!r}: weight {weight!r} is not a number")
        funcs.append(REWARDS[name])
        weights.append(float(weight))
    return funcs, weights


__all__ = [
    "REWARDS",
    "register",
    "get_reward_funcs",
    "countdown_equation_reward",
    "countdown_format_reward",
    "tinyzero_countdown_score",
    "mini_r1_equation_reward",
    "mini_r1_format_reward",
    "math_accuracy_reward",
    "think_close_format_reward",
    "think_format_reward",
]
