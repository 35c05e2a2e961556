"""The validated run configuration: what a recipe may say, checked before any model or data is loaded.

Hydra composes a recipe plus overrides into a plain mapping; ``validate`` turns it into a ``RunConfig`` or
raises ``ConfigError`` naming the offending key and the closest valid ones, so a typo costs seconds instead of
a GPU allocation.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from tinyzero_trl.errors import ConfigError

TASKS = ("countdown", "math", "multimodal")
SOURCES = ("hub", "local", "generate")
DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: Any = "all-linear"


@dataclass
class ModelConfig:
    name_or_path: str | None = None
    revision: str | None = None
    dtype: str = "auto"
    attn_implementation: str | None = None
    trust_remote_code: bool = False
    lora: LoraConfig | None = None


@dataclass
class DataConfig:
    task: str | None = None
    source: str = "hub"  # hub | local | generate
    name: str | None = None  # hub dataset id (task default when None)
    path: str | None = None  # local file for source=local
    revision: str | None = None
    num_train: int | None = None
    num_test: int | None = None
    # The split the test rows come from (its first num_test rows); None: num_test rows held out after the
    # training rows of the train split. Hub: a split name. Local: data.path is then a folder of split files.
    test_split: str | None = None
    template: str | None = None  # prompt template (task default when None)
    system_prompt: str | None = None
    instruction: str | None = None
    generate: dict = field(default_factory=dict)  # generator arguments for source=generate
    min_pixels: int | None = None  # multimodal: pixel bounds an image is resized into (Qwen2-VL processor)
    max_pixels: int | None = None


@dataclass
class RunConfig:
    model: ModelConfig
    data: DataConfig
    rewards: dict[str, float]
    training: dict[str, Any]  # trl.GRPOConfig fields
    seed: int = 42
    fresh: bool = False  # ignore checkpoints in training.output_dir and start over
    # Stop (and save) after this optimizer step while the lr schedule spans the whole run (training.max_steps or
    # epochs): a published checkpoint taken part-way through a longer run (Open-RS's step 100 of 500).
    stop_at_step: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPE_GROUPS = ("countdown", "math", "multimodal")
TOP_KEYS = ("model", "data", "rewards", "training", "seed", "fresh", "stop_at_step")


def _closest(name: str, valid) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _check_keys(section: str, given: dict, valid: list[str], *, show_all: bool = True) -> None:
    for key in given:
        if key not in valid:
            listing = f" Valid keys: {', '.join(sorted(valid))}." if show_all else ""
            where = f"{section}.{key}" if section else str(key)
            raise ConfigError(f"unknown config key '{where}'{_closest(key, valid)}{listing}")


def _type_ok(value, hint) -> bool:
    """Whether a YAML/override value fits a dataclass annotation (unknown kinds of annotation pass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple) or hint in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, str) and value in {m.value for m in hint}
    return True


def _describe(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null",
             list: "a list", dict: "a mapping"}
    parts = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    shown = [names.get(typing.get_origin(p) or p, getattr(p, "__name__", str(p))) for p in parts]
    return " or ".join(dict.fromkeys(shown))


def _check_types(section: str, given: dict, cls) -> None:
    hints = typing.get_type_hints(cls)
    for key, value in given.items():
        hint = hints.get(key)
        if hint is not None and not _type_ok(value, hint):
            raise ConfigError(f"{section}.{key}={value!r}: expected {_describe(hint)}")


# Values trl would accept and then misuse: each is a silent no-op, a crash much later, or (max_steps < 0) three
# whole epochs instead of an error.
_POSITIVE = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_completion_length",
             "temperature", "num_iterations", "logging_steps", "save_steps", "num_train_epochs")


def _check_training_values(training: dict) -> None:
    for key in _POSITIVE:
        value = training.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not value > 0:
            raise ConfigError(f"training.{key}={value!r}: must be greater than 0")
    max_steps = training.get("max_steps")
    if isinstance(max_steps, int) and not isinstance(max_steps, bool) and max_steps <= 0 and max_steps != -1:
        raise ConfigError(f"training.max_steps={max_steps}: must be a positive number of steps (or -1 to train "
                          "training.num_train_epochs epochs)")
    gens = training.get("num_generations")
    if isinstance(gens, int) and not isinstance(gens, bool) and gens < 2:
        raise ConfigError(f"training.num_generations={gens}: GRPO compares completions of one prompt, it needs "
                          "at least 2")
    for key in ("beta", "epsilon"):
        value = training.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"training.{key}={value!r}: must be 0 or more")
    top_p = training.get("top_p")
    if isinstance(top_p, (int, float)) and not isinstance(top_p, bool) and not 0 < top_p <= 1:
        raise ConfigError(f"training.top_p={top_p!r}: must be in (0, 1]")


def _build(cls, section: str, given):
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"{section}={given!r}: must be a mapping of keys (set {section}.KEY=VALUE, not {section}=...)")
    given = dict(given or {})
    names = [f.name for f in dataclasses.fields(cls)]
    _check_keys(section, given, names)
    _check_types(section, given, cls)
    return cls(**given)


@functools.cache
def grpo_config_class():
    from trl import GRPOConfig

    return GRPOConfig


def grpo_config_fields() -> list[str]:
    """Names accepted under ``training``: exactly the fields of the installed ``trl.GRPOConfig``."""
    return [f.name for f in dataclasses.fields(grpo_config_class()) if f.init]


def section_keys(section: str) -> list[str]:
    """The keys a config section accepts (``""`` for the top level, which also names the recipe groups)."""
    if section == "model":
        return [f.name for f in dataclasses.fields(ModelConfig)]
    if section == "model.lora":
        return [f.name for f in dataclasses.fields(LoraConfig)]
    if section == "data":
        return [f.name for f in dataclasses.fields(DataConfig)]
    if section == "training":
        return grpo_config_fields()
    if section == "rewards":
        from tinyzero_trl.rewards import REWARDS

        return sorted(REWARDS)
    return [*TOP_KEYS, *RECIPE_GROUPS, "smoke"] if section == "" else []


def validate(raw: dict) -> RunConfig:
    """Check a composed config mapping and return a ``RunConfig``; raise ``ConfigError`` on any problem.

    Keys, types and the values trl would misuse are all checked here, before any model or data is loaded.
    """
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping with model, data, rewards, training")
    for key in raw:
        if key != "hydra" and key not in TOP_KEYS:
            hint = (f"; to use a recipe write +{key}=NAME" if key in RECIPE_GROUPS + ("smoke",)
                    else _closest(key, [*TOP_KEYS, *RECIPE_GROUPS]))
            raise ConfigError(f"unknown config key '{key}'{hint}. A config has {', '.join(TOP_KEYS)}; recipes are "
                              f"+countdown=..., +math=..., +multimodal=... (and +smoke=cpu)")
    model_raw = raw.get("model") or {}
    if not isinstance(model_raw, dict):
        raise ConfigError(f"model={model_raw!r}: must be a mapping of keys (set model.KEY=VALUE)")
    model_raw = dict(model_raw)
    lora = model_raw.pop("lora", None)
    model = _build(ModelConfig, "model", model_raw)
    if lora is not None:
        model.lora = _build(LoraConfig, "model.lora", lora)
    data = _build(DataConfig, "data", raw.get("data"))
    training = raw.get("training") or {}
    if not isinstance(training, dict):
        raise ConfigError(f"training={training!r}: must be a mapping of trl.GRPOConfig fields")
    training = dict(training)
    _check_keys("training", training, grpo_config_fields(), show_all=False)
    _check_types("training", training, grpo_config_class())
    _check_training_values(training)

    if not model.name_or_path or model.name_or_path == "???":
        raise ConfigError("model.name_or_path is not set: add model.name_or_path=HUB_ID_OR_LOCAL_DIR")
    if model.dtype not in DTYPES:
        raise ConfigError(f"model.dtype={model.dtype!r} is not one of {list(DTYPES)}")
    if data.task not in TASKS:
        raise ConfigError(
            f"data.task={data.task!r} is not one of {list(TASKS)}: start from a recipe, e.g. "
            "+countdown=grpo-qwen-2.5-3b-base or +math=grpo-deepseek-distill-1.5b-inst"
        )
    if data.source not in SOURCES:
        raise ConfigError(f"data.source={data.source!r} is not one of {list(SOURCES)}")
    if data.source == "local" and not data.path:
        raise ConfigError("data.source=local needs data.path=FILE")
    for key in ("num_train", "num_test"):
        value = getattr(data, key)
        if value is not None and value < (1 if key == "num_train" else 0):
            raise ConfigError(f"data.{key}={value}: must be {'at least 1' if key == 'num_train' else '0 or more'}")
    from tinyzero_trl.rewards import resolve_rewards

    rewards = dict(resolve_rewards(raw.get("rewards") or {}))
    if not training.get("output_dir") or training.get("output_dir") == "???":
        raise ConfigError("training.output_dir is not set: add training.output_dir=DIR (the run directory)")
    if "reward_weights" in training:
        raise ConfigError("set reward weights under rewards (name: weight), not training.reward_weights")
    for key, kind in (("seed", int), ("fresh", bool), ("stop_at_step", int | None)):
        if key in raw and not _type_ok(raw[key], kind):
            raise ConfigError(f"{key}={raw[key]!r}: expected {_describe(kind)}")
    stop = raw.get("stop_at_step")
    if stop is not None and stop < 1:
        raise ConfigError(f"stop_at_step={stop}: must be a step >= 1 (or null)")
    max_steps = training.get("max_steps")
    if stop is not None and isinstance(max_steps, int) and 0 < max_steps < stop:
        raise ConfigError(f"stop_at_step={stop} is past training.max_steps={max_steps}: the run ends first")
    return RunConfig(model=model, data=data, rewards=rewards, training=training, seed=int(raw.get("seed", 42)),
                     fresh=bool(raw.get("fresh", False)), stop_at_step=stop)
