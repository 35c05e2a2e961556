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
from math import isfinite  # (not `import math`: the submodule rewards.math would shadow it here)
from numbers import Real

from tinyzero_trl.errors import ConfigError
from tinyzero_trl.rewards.countdown import countdown_equation_reward
from tinyzero_trl.rewards.format import (
    countdown_format_reward,
    think_close_format_reward,
    think_format_reward,
)
from tinyzero_trl.rewards.lighteval_math import lighteval_math_reward
from tinyzero_trl.rewards.math import math_accuracy_reward
from tinyzero_trl.rewards.mini_r1 import mini_r1_equation_reward, mini_r1_format_reward
from tinyzero_trl.rewards.open_rs import (
    COSINE_BOUNDS,
    cosine_accuracy_exp3_reward,
    cosine_accuracy_reward,
    open_rs_accuracy_reward,
    open_rs_format_reward,
)
from tinyzero_trl.rewards.r1v import r1v_count_eval_reward, r1v_format_reward
from tinyzero_trl.rewards.tinyzero import tinyzero_correct, tinyzero_countdown_score
from tinyzero_trl.rewards.vision import count_accuracy_reward, vl_format_reward

RewardFunc = Callable[..., list]

REWARDS: dict[str, RewardFunc] = {}
# The values a reward can take: a logged mean outside them is an impossible run (verify rejects it).
BOUNDS: dict[str, tuple[float, float]] = {}


def register(name: str, *, overwrite: bool = False,
             bounds: tuple[float, float] | None = None) -> Callable[[RewardFunc], RewardFunc]:
    """Decorator registering a reward function under ``name``; returns the function unchanged.

    The registry stores a thin wrapper whose ``__name__`` is ``name``, so the original function keeps its
    own name. ``bounds`` are the lowest and highest score it gives. Registering a taken name raises
    ``ValueError`` unless ``overwrite=True``.
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
        if bounds is not None:
            BOUNDS[name] = (float(bounds[0]), float(bounds[1]))
        else:
            BOUNDS.pop(name, None)
        return func

    return decorator


UNIT = (0.0, 1.0)  # the built-in rewards score in [0, 1], except Open-RS's cosine ([-0.5, 1])
register("countdown_equation", bounds=UNIT)(countdown_equation_reward)
register("countdown_format", bounds=UNIT)(countdown_format_reward)
register("tinyzero_countdown", bounds=UNIT)(tinyzero_countdown_score)
register("tinyzero_correct", bounds=UNIT)(tinyzero_correct)
register("mini_r1_format", bounds=UNIT)(mini_r1_format_reward)
register("mini_r1_equation", bounds=UNIT)(mini_r1_equation_reward)
register("math_accuracy", bounds=UNIT)(math_accuracy_reward)
register("think_format", bounds=UNIT)(think_format_reward)
register("think_close_format", bounds=UNIT)(think_close_format_reward)
register("count_accuracy", bounds=UNIT)(count_accuracy_reward)
register("vl_format", bounds=UNIT)(vl_format_reward)
register("open_rs_format", bounds=UNIT)(open_rs_format_reward)
register("cosine_accuracy", bounds=COSINE_BOUNDS)(cosine_accuracy_reward)  # Open-RS Experiment 2: max_len 1000
register("cosine_accuracy_3584", bounds=COSINE_BOUNDS)(cosine_accuracy_exp3_reward)  # Experiment 3
register("open_rs_accuracy", bounds=UNIT)(open_rs_accuracy_reward)
register("r1v_count_eval", bounds=UNIT)(r1v_count_eval_reward)  # R1-V's SuperCLEVR evaluation rule
register("r1v_format", bounds=UNIT)(r1v_format_reward)  # R1-V's format reward as its published run had it
register("lighteval_math", bounds=UNIT)(lighteval_math_reward)  # open-r1's / Open-RS's MATH-500 metric


# For evaluation: the 0/1 correctness reward that judges the same answers as each training reward. A run trained
# on a shaped score (TinyZero's 0 / 0.1 / 1) is still evaluated on whether its answers are right; format rewards
# judge no answer and have none.
ACCURACY_OF = {
    "countdown_equation": "countdown_equation",
    "tinyzero_countdown": "tinyzero_correct",  # TinyZero's and oat-zero's own test of a right answer
    "tinyzero_correct": "tinyzero_correct",
    "mini_r1_equation": "mini_r1_equation",
    "math_accuracy": "math_accuracy",
    "count_accuracy": "count_accuracy",
    "cosine_accuracy": "open_rs_accuracy",
    "cosine_accuracy_3584": "open_rs_accuracy",
    "open_rs_accuracy": "open_rs_accuracy",
    "r1v_count_eval": "r1v_count_eval",
    "lighteval_math": "lighteval_math",
}


# The rewards whose verdicts come from math-verify (rewards/math.py's parse/verify, which parses LaTeX with
# latex2sympy2_extended); every other reward is plain Python in this package.
MATH_VERIFY_REWARDS = {"math_accuracy", "lighteval_math", "open_rs_accuracy", "cosine_accuracy",
                       "cosine_accuracy_3584"}


def scorer_libraries(name: str) -> str:
    """The libraries (with their installed versions) that decide reward ``name``'s verdicts, beyond this package."""
    if name not in MATH_VERIFY_REWARDS:
        return "none (Python only)"
    from importlib.metadata import version

    return ", ".join(f"{lib} {version(lib)}" for lib in ("math-verify", "latex2sympy2_extended"))


def _unknown(name) -> ConfigError:
    close = difflib.get_close_matches(str(name), list(REWARDS), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
    return ConfigError(f"unknown reward 'rewards.{name}'{hint} Known rewards: {', '.join(sorted(REWARDS))}")


PLUGINS_ENV = "TINYZERO_REWARD_MODULES"


def load_plugins() -> None:
    """Import the modules named in ``$TINYZERO_REWARD_MODULES`` (comma-separated); each registers its rewards
    with ``@register``. The training processes inherit the variable, so a plugin reward works in every launch."""
    import importlib
    import os

    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"{PLUGINS_ENV}: cannot import {module!r} ({err}); put its folder on PYTHONPATH") from err


def resolve_rewards(names: list[str] | dict[str, float] | str) -> list[tuple[str, float]]:
    """Check reward names and weights and return ``[(name, weight)]`` in order: the one validation of both.

    ``names`` is a list (every weight 1.0) or a ``{name: weight}`` mapping. Raises ``ConfigError`` naming the
    key for an unknown name (with the closest valid ones), a weight that is not a finite number (``true`` is
    not a weight), an empty set, or weights that are all zero (nothing to learn from).
    """
    load_plugins()
    if isinstance(names, str):
        names = [names]
    try:
        pairs = list(names.items()) if isinstance(names, dict) else [(n, 1.0) for n in names]
    except TypeError:
        raise ConfigError(f"rewards={names!r}: expected a mapping of reward name to weight") from None
    if not pairs:
        raise ConfigError("rewards is empty: name at least one reward, e.g. rewards.countdown_equation=1.0")
    out = []
    for name, weight in pairs:
        if name not in REWARDS:
            raise _unknown(name)
        if isinstance(weight, bool) or not isinstance(weight, Real) or not isfinite(weight):
            raise ConfigError(f"rewards.{name}={weight!r}: a reward's weight must be a finite number, e.g. "
                              f"rewards.{name}=1.0 (0.0 logs the reward without training on it)")
        out.append((name, float(weight)))
    if not any(w for _, w in out):
        raise ConfigError(f"every reward weight is 0 ({', '.join(n for n, _ in out)}): nothing to learn from; "
                          "give at least one reward a non-zero weight")
    return out


def get_reward_funcs(names: list[str] | dict[str, float]) -> tuple[list[RewardFunc], list[float]]:
    """Resolve reward names to ``(functions, weights)`` in the given order (validated by ``resolve_rewards``)."""
    pairs = resolve_rewards(names)
    return [REWARDS[n] for n, _ in pairs], [w for _, w in pairs]


def reading(func: RewardFunc, text_of) -> RewardFunc:
    """``func`` given each completion's text as ``text_of(text)`` returns it, under the same name (TRL logs the
    reward by its ``__name__``); conversational completions have their message contents mapped.

    The trainer uses it to give the rewards the text up to the first stop string (``model.stopping``)."""

    def one(completion):
        if isinstance(completion, list):
            return [_message_read(m, text_of) for m in completion]
        return text_of(completion)

    @functools.wraps(func)
    def reward(*args, **kwargs):
        if args:
            args = ([one(c) for c in args[0]], *args[1:])
        elif "completions" in kwargs:
            kwargs["completions"] = [one(c) for c in kwargs["completions"]]
        return func(*args, **kwargs)

    return reward


def _message_read(message, text_of):
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": text_of(content)}
    if isinstance(content, list):
        return {**message, "content": [{**p, "text": text_of(p["text"])} if isinstance(p, dict) and
                                       isinstance(p.get("text"), str) else p for p in content]}
    return message


def training_accuracy(names: list[str]) -> str | None:
    """The reward a run's curves read as its training accuracy: the first of ``names`` that judges answers
    (``ACCURACY_OF``), wherever the recipe lists it (Mini-R1 and Open-RS list their format reward first)."""
    return next((n for n in names if n in ACCURACY_OF), None)


def format_reward(names: list[str]) -> str | None:
    """The reward a run's curves and console line read as its format reward: the first of ``names`` that judges
    no answer (not in ``ACCURACY_OF``), or None."""
    accuracy = training_accuracy(names)
    return next((n for n in names if n != accuracy and n not in ACCURACY_OF), None)


def accuracy_scorer(rewards: list[str] | dict[str, float]) -> str:
    """The name of the 0/1 accuracy reward that evaluates a run trained on ``rewards`` (see ``ACCURACY_OF``).

    The rewards trained on (non-zero weight) decide; rewards only logged beside them (weight 0) count only when
    no trained reward judges answers.
    """
    trained = [n for n, w in rewards.items() if w] if isinstance(rewards, dict) else list(rewards)
    for names in (trained, list(rewards)):
        found = sorted({ACCURACY_OF[n] for n in names if n in ACCURACY_OF})
        if found:
            break
    if len(found) != 1:
        what = "none of them judges answers" if not found else f"they judge answers in {len(found)} ways ({found})"
        raise ConfigError(f"cannot tell how to score held-out answers from rewards {list(rewards)}: {what}; "
                          f"pass the scorer explicitly (one of {sorted(set(ACCURACY_OF.values()))})")
    return found[0]


__all__ = [
    "REWARDS",
    "training_accuracy",
    "format_reward",
    "BOUNDS",
    "register",
    "reading",
    "get_reward_funcs",
    "load_plugins",
    "resolve_rewards",
    "accuracy_scorer",
    "ACCURACY_OF",
    "countdown_equation_reward",
    "countdown_format_reward",
    "tinyzero_countdown_score",
    "mini_r1_equation_reward",
    "mini_r1_format_reward",
    "math_accuracy_reward",
    "open_rs_format_reward",
    "cosine_accuracy_reward",
    "open_rs_accuracy_reward",
    "r1v_count_eval_reward",
    "r1v_format_reward",
    "scorer_libraries",
    "think_close_format_reward",
    "think_format_reward",
]
