"""The typed run configuration: one object, checked before any model or data is loaded.

Hydra composes a recipe and overrides into a plain mapping (``compose``); ``validate`` turns it into a
``RunConfig``. ``model``, ``data`` and the run's own keys are pydantic models; ``training`` is trl's
``GRPOConfig`` itself, built through pydantic, so that its own field types and trl's own consistency checks
decide what is valid; ``rewards`` are resolved by the reward registry and ``data.task`` by the task registry.
Every problem is one ``ConfigError`` line that names the key (and, for an unknown key, the closest valid ones),
so a typo costs seconds instead of a GPU allocation.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tinyzero_trl.errors import ConfigError

RECIPE_GROUPS = ("countdown", "math", "multimodal")
TOP_KEYS = ("model", "data", "rewards", "training", "seed", "fresh", "stop_at_step", "stop_without_signal")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraConfig(_Section):
    r: int = Field(16, ge=1)
    alpha: int = 32
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Any = "all-linear"


class ModelConfig(_Section):
    name_or_path: str | None = None
    revision: str | None = None
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    attn_implementation: str | None = None
    trust_remote_code: bool = False
    lora: LoraConfig | None = None


class DataConfig(_Section):
    task: str | None = None
    source: Literal["hub", "local", "generate"] = "hub"
    name: str | None = None  # hub dataset id (task default when None)
    path: str | None = None  # local file or folder of split files, for source=local
    revision: str | None = None
    num_train: int | None = Field(None, ge=1)
    num_test: int | None = Field(None, ge=0)
    # The split the test rows come from (its first num_test rows); None: num_test rows held out after the
    # training rows of the train split. Hub: a split name. Local: data.path is then a folder of split files.
    test_split: str | None = None
    template: str | None = None  # prompt template (task default when None)
    system_prompt: str | None = None
    instruction: str | None = None
    generate: dict = Field(default_factory=dict)  # generator arguments for source=generate
    min_pixels: int | None = Field(None, ge=1)  # image tasks: pixel bounds an image is resized into
    max_pixels: int | None = Field(None, ge=1)
    # How a source drew its rows (countdown): shuffle the train split with this seed before any row is taken
    # (datasets' shuffle(seed=...), Mini-R1's pool), and drop prompts longer than this many tokens after the
    # rows are taken, from both splits (oat's prompt_max_length filter).
    shuffle_seed: int | None = None
    max_prompt_tokens: int | None = Field(None, ge=1)


class _RunKeys(_Section):
    model_config = ConfigDict(extra="ignore")
    seed: int = 42
    fresh: bool = False  # set training.output_dir aside and start over instead of resuming
    # Stop (and save) after this optimizer step while the lr schedule spans the whole run (training.max_steps or
    # epochs): a published checkpoint taken part-way through a longer run (Open-RS's step 100 of 500).
    stop_at_step: int | None = Field(None, ge=1)
    # Fail a run whose every group had one reward for N logged steps in a row (off: a GRPO run may start flat).
    stop_without_signal: int | None = Field(None, ge=1)


class _TrainingLimits(BaseModel):
    """Values trl accepts and then misuses: each is a silent no-op, a crash much later, or (max_steps < -1) three
    whole epochs instead of an error. Types as ``GRPOConfig`` declares them."""

    model_config = ConfigDict(extra="ignore")
    learning_rate: float = Field(1.0, gt=0)
    per_device_train_batch_size: int = Field(1, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_completion_length: int | None = Field(None, gt=0)
    temperature: float = Field(1.0, gt=0)
    num_iterations: int = Field(1, gt=0)
    logging_steps: float = Field(1, gt=0)
    save_steps: float = Field(1, gt=0)
    num_train_epochs: float = Field(1, gt=0)
    num_generations: int | None = Field(None, ge=2)
    beta: float = Field(0.0, ge=0)
    epsilon: float = Field(0.2, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_steps: int = -1


# Messages of our own where pydantic's phrase would not say what to do.
_SAYS = {
    "training.num_generations": "GRPO compares completions of one prompt, it needs at least 2",
    "training.top_p": "must be in (0, 1]",
    "stop_at_step": "must be a step >= 1 (or null)",
    "stop_without_signal": "must be a number of logged steps >= 1 (or null: off)",
}


@dataclasses.dataclass
class RunConfig:
    """A run, checked: ``training`` is the ``trl.GRPOConfig`` the trainer is built with (reward weights, seed and
    model loading arguments included); ``rewards`` maps reward name to weight, in the recipe's order."""

    model: ModelConfig
    data: DataConfig
    rewards: dict[str, float]
    training: Any  # trl.GRPOConfig
    seed: int = 42
    fresh: bool = False
    stop_at_step: int | None = None
    stop_without_signal: int | None = None
    output_dir: Path | None = None  # training.output_dir as a Path, set once by ``validate``


def closest(name: str, valid) -> str:
    """"; did you mean 'x'?" for the valid names close to ``name``, else an empty string."""
    close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _unknown(where: str, key: str, valid: list[str], *, show_all: bool = True) -> ConfigError:
    listing = f" Valid keys: {', '.join(sorted(valid))}." if show_all else ""
    return ConfigError(f"unknown config key '{where}'{closest(key, valid)}{listing}")


_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
          "dict": "a mapping", "list": "a list", "none": "null"}


def _expected(kind: str) -> str:
    return next((v for k, v in _TYPES.items() if kind.startswith(k)), kind.replace("_", " "))


def _error(prefix: str, err: ValidationError, cls=None) -> ConfigError:
    """One line for the first problem pydantic found: the key, the value given, and what it must be."""
    first = err.errors()[0]
    field = [p for p in first["loc"] if isinstance(p, str)]
    key = ".".join([prefix, *field[:1]] if prefix else field[:1]) if field else prefix
    kind, value = first["type"], first.get("input")
    if kind == "extra_forbidden" and cls is not None:
        *parents, name = [p for p in first["loc"] if isinstance(p, str)]
        for parent in parents:  # a nested section (model.lora)
            cls = cls.model_fields[parent].annotation.__args__[0]
        return _unknown(".".join([prefix, *parents, name]), name, list(cls.model_fields))
    key = ".".join([prefix, *field]) if prefix and field else key
    if key in _SAYS and kind not in ("int_parsing", "int_from_float", "float_parsing", "bool_parsing"):
        return ConfigError(f"{key}={value!r}: {_SAYS[key]}")
    ctx = first.get("ctx") or {}
    if kind == "literal_error":
        choices = [c.strip().strip("'") for c in str(ctx.get("expected", "")).replace(" or ", ",").split(",")]
        return ConfigError(f"{key}={value!r} is not one of {choices}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()), None)
        says = {"greater_than": f"must be greater than {bound}", "less_than": f"must be less than {bound}",
                "greater_than_equal": "must be 0 or more" if bound == 0 else f"must be at least {bound}",
                "less_than_equal": f"must be at most {bound}"}[kind]
        return ConfigError(f"{key}={value!r}: {says}")
    if kind in ("value_error", "assertion_error"):
        message = str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return ConfigError(f"{prefix or 'config'}: {message.strip().splitlines()[0]}")
    kinds = {e["type"].split("_")[0] for e in err.errors() if [p for p in e["loc"] if isinstance(p, str)] == field}
    return ConfigError(f"{key}={value!r}: expected {' or '.join(sorted(_expected(k) for k in kinds))}")


def _section(cls, name: str, given):
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"{name}={given!r}: must be a mapping of keys (set {name}.KEY=VALUE, not {name}=...)")
    try:
        return cls.model_validate(given or {})
    except ValidationError as err:
        raise _error(name, err, cls) from None


@functools.cache
def grpo_config_class(processes: int | None = None):
    """``trl.GRPOConfig``, or for ``processes`` a subclass whose checks count that many processes.

    GRPOConfig checks batch sizes against the world size of the process that builds it: a launcher checking a
    run of 8 processes builds the config as those 8 processes will, not as the one process it is.
    """
    from trl import GRPOConfig

    if processes is None:
        return GRPOConfig

    class PlannedGRPOConfig(GRPOConfig):
        @property
        def world_size(self):
            return processes

    return PlannedGRPOConfig


def grpo_config_fields() -> list[str]:
    """Names accepted under ``training``: exactly the fields of the installed ``trl.GRPOConfig``."""
    return [f.name for f in dataclasses.fields(grpo_config_class()) if f.init]


def section_keys(section: str) -> list[str]:
    """The keys a config section accepts (``""`` for the top level, which also names the recipe groups)."""
    models = {"model": ModelConfig, "model.lora": LoraConfig, "data": DataConfig}
    if section in models:
        return list(models[section].model_fields)
    if section == "training":
        return grpo_config_fields()
    if section == "rewards":
        from tinyzero_trl.rewards import REWARDS

        return sorted(REWARDS)
    return [*TOP_KEYS, *RECIPE_GROUPS, "smoke"] if section == "" else []


def _grpo_config(training, *, model: ModelConfig, weights: list[float], seed: int, processes: int | None):
    """``training`` as a ``GRPOConfig`` with what the wrapper owns (reward weights, seed default, model kwargs)."""
    from pydantic import TypeAdapter

    if not isinstance(training, dict):
        raise ConfigError(f"training={training!r}: must be a mapping of trl.GRPOConfig fields")
    fields = grpo_config_fields()
    for key in training:
        if key not in fields:
            raise _unknown(f"training.{key}", key, fields, show_all=False)
    if "reward_weights" in training:
        raise ConfigError("set reward weights under rewards (name: weight), not training.reward_weights")
    try:
        _TrainingLimits.model_validate(training)
    except ValidationError as err:
        raise _error("training", err) from None
    if training.get("max_steps") is not None and training["max_steps"] <= 0 and training["max_steps"] != -1:
        raise ConfigError(f"training.max_steps={training['max_steps']}: must be a positive number of steps (or -1 "
                          "to train training.num_train_epochs epochs)")
    if not training.get("output_dir") or training.get("output_dir") == "???":
        raise ConfigError("training.output_dir is not set: add training.output_dir=DIR (the run directory)")
    load = {"dtype": model.dtype, **{k: getattr(model, k) for k in ("revision", "attn_implementation")
                                     if getattr(model, k) is not None}}
    if model.trust_remote_code:
        load["trust_remote_code"] = True
    kwargs = {"seed": seed, "report_to": [], **training, "reward_weights": weights,
              "model_init_kwargs": {**load, **(training.get("model_init_kwargs") or {})}}
    if processes is not None and not kwargs.get("use_cpu"):
        import torch

        # A plan for GPU nodes made on a machine without one (a dry run on a laptop): trl's check of this
        # machine's bf16 support says nothing about the nodes, so the plan is checked as a CPU run would be.
        kwargs["use_cpu"] = not torch.cuda.is_available()
    try:
        return TypeAdapter(grpo_config_class(processes)).validate_python(kwargs)
    except ValidationError as err:
        raise _error("training", err) from None
    except (TypeError, NotImplementedError) as err:  # a check trl makes outside pydantic's reach
        raise ConfigError(f"training: {str(err).strip().splitlines()[0]}") from None


def model_section(raw: dict) -> ModelConfig:
    """The ``model`` section of the composed config ``raw``, checked, with a model named: what a node that only
    serves the model with vLLM needs of a config (``train --vllm-server-only``)."""
    model = _section(ModelConfig, "model", raw.get("model"))
    if not model.name_or_path or model.name_or_path == "???":
        raise ConfigError("model.name_or_path is not set: add model.name_or_path=HUB_ID_OR_LOCAL_DIR")
    return model


def validate(raw: dict, *, processes: int | None = None) -> RunConfig:
    """Check a composed config mapping and return a ``RunConfig``; raise ``ConfigError`` on any problem.

    ``processes``: the number of training processes the run will have (a launcher's plan), so that trl's batch
    checks count them; None in a training process, where trl counts the real ones.
    """
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping with model, data, rewards, training")
    for key in raw:
        if key != "hydra" and key not in TOP_KEYS:
            hint = (f"; to use a recipe write +{key}=NAME" if key in RECIPE_GROUPS + ("smoke",)
                    else closest(key, [*TOP_KEYS, *RECIPE_GROUPS]))
            end = "" if hint.endswith("?") else "."
            raise ConfigError(f"unknown config key '{key}'{hint}{end} A config has {', '.join(TOP_KEYS)}; recipes are "
                              f"+countdown=..., +math=..., +multimodal=... (and +smoke=cpu)")
    model = model_section(raw)
    data = _section(DataConfig, "data", raw.get("data"))
    try:
        keys = _RunKeys.model_validate(raw)
    except ValidationError as err:
        raise _error("", err) from None
    from tinyzero_trl.data import get_task
    from tinyzero_trl.rewards import resolve_rewards

    get_task(data.task)
    if data.source == "local" and not data.path:
        raise ConfigError("data.source=local needs data.path=FILE")
    rewards = dict(resolve_rewards(raw.get("rewards") or {}))
    training = _grpo_config(raw.get("training") or {}, model=model, weights=list(rewards.values()), seed=keys.seed,
                            processes=processes)
    if keys.stop_at_step is not None and 0 < training.max_steps < keys.stop_at_step:
        raise ConfigError(f"stop_at_step={keys.stop_at_step} is past training.max_steps={training.max_steps}: the "
                          "run ends first")
    return RunConfig(model=model, data=data, rewards=rewards, training=training, seed=keys.seed, fresh=keys.fresh,
                     stop_at_step=keys.stop_at_step, stop_without_signal=keys.stop_without_signal,
                     output_dir=Path(training.output_dir) if training.output_dir else None)
