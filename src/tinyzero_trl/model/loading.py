"""Finding a model and loading its tokenizer or processor, one way for training and for evaluation."""

from __future__ import annotations

import os

from tinyzero_trl.errors import ConfigError

_PATH_PREFIXES = ("/", "./", "../", "~")


def check_model(name: str, *, revision: str | None = None, trust_remote_code: bool = False,
                key: str = "model.name_or_path") -> None:
    """Fail early and clearly when the model cannot be found: a file, a directory without a model, a missing path,
    or a hub id the hub cannot provide (the hub is asked for its config only)."""
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ConfigError(f"{key}={name}: the directory has no config.json (not a saved model)")
        return
    if os.path.isfile(path):
        raise ConfigError(f"{key}={name}: is a file; give the model's directory (the one holding config.json)")
    if name.startswith(_PATH_PREFIXES) or os.path.exists(path):
        raise ConfigError(f"{key}={name}: no such model directory")
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise ConfigError(
            f"{key}={name}: not a local directory, and the hub could not provide it "
            f"({type(err).__name__}). Download it where the hub is reachable (it is cached in HF_HOME), "
            "or point model.name_or_path at a local directory."
        ) from err


def load_processing_class(name_or_path: str, *, images: bool = False, revision: str | None = None,
                          trust_remote_code: bool = False):
    """The tokenizer (text tasks) or processor (``images``: tasks whose prompts hold an image) of a model, with a
    pad token GRPO can batch with.

    Training and evaluation both load through here, so a pinned ``revision`` (and ``trust_remote_code``) means
    the same files for the base-model evaluation as for the trainer.
    """
    from transformers import AutoTokenizer

    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    if images:  # AutoProcessor, or an image-only processor where torchvision is missing
        from tinyzero_trl.model.vlm import load_processor

        processor = load_processor(name_or_path, **kwargs)
        tokenizer = processor.tokenizer
    else:
        processor = tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return processor
