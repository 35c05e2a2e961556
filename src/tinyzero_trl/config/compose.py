"""Recipes: Hydra composes the packaged config, a recipe (``+countdown=NAME``) and ``key=value`` overrides.

The recipes are YAML files in ``tinyzero_trl/recipes/<group>/``. ``compose`` returns a plain mapping (what
``schema.validate`` checks) and turns every Hydra or OmegaConf error into one ``ConfigError`` line that names the
override and says what to write instead. ``resolve`` is what a launch plan asks of this layer, in one call:
composed, the launch's settings written in, validated once, the model's path checked.
"""

from __future__ import annotations

import re
from pathlib import Path

from tinyzero_trl.config.schema import RECIPE_GROUPS, RunConfig, closest, section_keys, validate
from tinyzero_trl.errors import ConfigError

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


def recipes(group: str) -> list[str]:
    """The recipe names of a config group (``countdown``, ``math``, ``multimodal``, ``smoke``)."""
    return sorted(p.stem for p in (RECIPES_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


def _override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _unknown_key_message(key: str, override: str) -> str:
    section, _, name = key.rpartition(".")
    valid = section_keys(section)
    top = section.split(".")[0]
    if section and top not in section_keys(""):  # a misspelled section: trainig.max_steps
        return (f"unknown config section '{top}' in '{key}'{closest(top, section_keys(''))} (from the override "
                f"{override!r})")
    if not valid and section:  # model.lora.r and the like: look one level up only for a better message
        return f"'{key}' is not a config key (from the override {override!r})"
    if section == "" and name in RECIPE_GROUPS + ("smoke",):
        return f"'{name}' is a recipe group: write +{override.lstrip('+')}"
    if name in valid:  # a real key the recipe does not set: Hydra wants it added, not overridden
        return f"'{key}' is not set by the recipe: add it with +{override.lstrip('+')}"
    return f"unknown config key '{key}'{closest(name, valid)} (from the override {override!r})"


def _convert(err: Exception, overrides: list[str]) -> ConfigError:
    """One actionable line for a Hydra composition error."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    missing = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
    if missing:
        group, name = missing.groups()
        known = recipes(group)
        hint = closest(name, known) or f"; known: {', '.join(known)}"
        return ConfigError(f"recipe +{group}={name} does not exist{hint}")
    if "Could not load" in text or "Could not find" in text:
        return ConfigError(f"{first}; recipe groups are {', '.join(RECIPE_GROUPS)} (e.g. +countdown="
                           f"{recipes('countdown')[0]})")
    override = re.search(r"Could not (?:override|append to|delete from) '([^']+)'", text)
    if override:
        key = override.group(1)
        given = next((o for o in overrides if _override_key(o) == key), key)
        return ConfigError(_unknown_key_message(key, given))
    if type(err).__name__ == "OverrideParseException":
        bad = re.search(r"Error parsing override '(.*)'", text)
        return ConfigError(f"cannot parse the override {bad.group(1) if bad else ''!r}: write key=value "
                           "(quote values with spaces or special characters)")
    key = getattr(err, "full_key", None)
    if key:
        return ConfigError(f"{key}: {first}")
    return ConfigError(f"cannot compose the config: {first}")


def compose(overrides: list[str]) -> dict:
    """Compose the packaged Hydra config with ``overrides`` (as ``grpo.py`` does) into a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    overrides = [str(o) for o in overrides]
    chosen = [o for o in overrides if o.lstrip("+").split("=", 1)[0] in RECIPE_GROUPS]
    if len(chosen) > 1:
        raise ConfigError(f"{len(chosen)} recipes given ({', '.join(chosen)}): a run follows one recipe")
    GlobalHydra.instance().clear()  # a failed composition must not leave Hydra initialised for the next one
    try:
        with initialize_config_dir(config_dir=str(RECIPES_DIR), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=overrides)
        raw = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # hydra.errors.* and omegaconf.errors.*: all mean a bad override or recipe
        raise _convert(err, overrides) from err
    finally:
        GlobalHydra.instance().clear()
    raw.pop("hydra", None)
    return raw


def resolve(overrides: list[str], *, training: dict | None = None,
            processes: int | None = None) -> tuple[dict, RunConfig]:
    """A launch plan's config in one call: ``overrides`` composed, the launch's own ``training`` settings written
    into it (``use_cpu`` on a machine without CUDA, the vLLM server's URL: config.yaml records what the trainer
    really runs with), validated once (trl's batch checks counting the plan's ``processes``), and the model's path
    checked (a local path must hold a model; a hub id is looked up by the launch's preflight, so a dry run
    downloads and creates nothing). Returns the mapping config.yaml will hold and its typed form."""
    from tinyzero_trl.model.loading import check_model_path

    resolved = compose(overrides)
    if isinstance(resolved.get("training"), dict):  # anything else is refused by validate, naming the key
        resolved["training"].update(training or {})
    config = validate(resolved, processes=processes)
    check_model_path(config.model.name_or_path)
    return resolved, config
