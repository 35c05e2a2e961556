"""The validated run configuration: what a recipe may say, checked before any model or data is loaded.

Hydra composes a recipe plus overrides into a plain mapping; ``validate`` turns it into a ``RunConfig`` or
raises ``ConfigError`` naming the offending key and the closest valid ones, so a typo costs seconds instead of
a GPU allocation.
"""

from __future__ import annotations

import dataclasses
import difflib
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _closest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _check_keys(section: str, given: dict, valid: list[str], *, show_all: bool = True) -> None:
    for key in given:
        if key not in valid:
            listing = f" Valid keys: {', '.join(sorted(valid))}." if show_all else ""
            raise ConfigError(f"unknown config key '{section}.{key}'{_closest(key, valid)}{listing}")


def _build(cls, section: str, given: dict | None):
    given = dict(given or {})
    names = [f.name for f in dataclasses.fields(cls)]
    _check_keys(section, given, names)
    return cls(**given)


def grpo_config_fields() -> list[str]:
    """Names accepted under ``training``: exactly the fields of the installed ``trl.GRPOConfig``."""
    from trl import GRPOConfig

    return [f.name for f in dataclasses.fields(GRPOConfig) if f.init]


def validate(raw: dict) -> RunConfig:
    """Check a composed config mapping and return a ``RunConfig``; raise ``ConfigError`` on any problem."""
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping with model, data, rewards, training")
    top = ["model", "data", "rewards", "training", "seed", "fresh"]
    _check_keys("<top>", {k: v for k, v in raw.items() if k != "hydra"}, top)
    model_raw = dict(raw.get("model") or {})
    lora = model_raw.pop("lora", None)
    model = _build(ModelConfig, "model", model_raw)
    if lora is not None:
        model.lora = _build(LoraConfig, "model.lora", lora)
    data = _build(DataConfig, "data", raw.get("data"))
    training = dict(raw.get("training") or {})
    _check_keys("training", training, grpo_config_fields(), show_all=False)
    rewards = dict(raw.get("rewards") or {})

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
    from tinyzero_trl.rewards import resolve_rewards

    rewards = dict(resolve_rewards(rewards))
    if not training.get("output_dir"):
        raise ConfigError("training.output_dir is not set: add training.output_dir=DIR (the run directory)")
    if "reward_weights" in training:
        raise ConfigError("set reward weights under rewards (name: weight), not training.reward_weights")
    return RunConfig(model=model, data=data, rewards=rewards, training=training,
                     seed=int(raw.get("seed", 42)), fresh=bool(raw.get("fresh", False)))


def compose(overrides: list[str]) -> dict:
    """Compose the packaged Hydra config with ``overrides`` (as ``grpo.py`` would) into a plain dict."""
    from pathlib import Path

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    config_dir = str(Path(__file__).parent / "configs")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    raw = OmegaConf.to_container(cfg, resolve=True)
    raw.pop("hydra", None)
    return raw
