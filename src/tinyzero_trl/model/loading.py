"""Finding a model and loading its tokenizer or processor, one way for training and for evaluation."""

from __future__ import annotations

import os

from tinyzero_trl.errors import ConfigError

_PATH_PREFIXES = ("/", "./", "../", "~")
HUB_PROBE_SECONDS = 10.0  # one try at the hub's address before huggingface_hub's retries (5, ~25 s) start


def check_model(name: str, *, revision: str | None = None, trust_remote_code: bool = False,
                key: str = "model.name_or_path") -> None:
    """Fail early and clearly when the model cannot be found: a file, a directory without a model, a missing path,
    or a hub id the hub cannot provide (the hub is asked for its config only). The two stages, each run once per
    launch: ``check_model_path`` (every plan, dry runs too) and ``check_hub_model`` (a launch's preflight).
    Both at once, here, for a model no launch has checked (``tinyzero-trl evaluate``)."""
    if check_model_path(name, key=key):
        return
    check_hub_model(name, revision=revision, trust_remote_code=trust_remote_code, key=key)


def check_model_path(name: str, *, key: str = "model.name_or_path") -> bool:
    """True when ``name`` is a directory holding a model, False when it can only be a hub id; a ``ConfigError`` for
    a path on this machine that holds no model (a file, a directory without config.json, a missing path)."""
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ConfigError(f"{key}={name}: the directory has no config.json (not a saved model)")
        return True
    if os.path.isfile(path):
        raise ConfigError(f"{key}={name}: is a file; give the model's directory (the one holding config.json)")
    if name.startswith(_PATH_PREFIXES) or os.path.exists(path):
        raise ConfigError(f"{key}={name}: no such model directory")
    return False


def check_hub_model(name: str, *, revision: str | None = None, trust_remote_code: bool = False,
                    key: str = "model.name_or_path") -> None:
    """A hub id's model is in the cache (HF_HOME) or the hub provides it (its config only is asked for); else one
    ``ConfigError`` that says which and what to do."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json", revision=revision)
    except ValueError as err:  # huggingface_hub's HFValidationError: neither a path nor a repo id ("a/b/c", spaces)
        raise ConfigError(f"{key}={name}: no such model directory, and not a hub id ({err}). Give a local "
                          "directory holding config.json, or a hub id such as Qwen/Qwen2.5-3B") from err
    if isinstance(cached, str):
        return  # in the cache (HF_HOME): loading needs no network
    fix = ("Download it where the hub is reachable (it is cached in HF_HOME), or point model.name_or_path at a "
           "local directory.")
    unreachable = hub_unreachable()
    if unreachable:
        raise ConfigError(f"{key}={name}: not a local directory nor in the cache, and the hub could not provide "
                          f"it: {unreachable}. {fix}")
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as err:
        raise ConfigError(f"{key}={name}: not a local directory, and the hub could not provide it "
                          f"({type(err).__name__}). {fix}") from err


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be asked, in a few words, or None when it answers.

    One plain request with a short timeout: huggingface_hub retries a connection error five times with backoff
    (~25 s) before the same answer, which a user waited through for every typo of a hub id.
    """
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=HUB_PROBE_SECONDS)
    except urllib.error.HTTPError:
        return None  # it answered, if only with an error status: the real request says what is wrong
    except (OSError, ValueError) as err:
        return f"{constants.ENDPOINT} cannot be reached ({getattr(err, 'reason', err)})"
    return None


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
