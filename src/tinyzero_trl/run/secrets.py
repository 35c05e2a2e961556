"""Tokens given on the command line (``+training.hub_token=...``), kept out of every file a run writes.

``config.yaml`` is the file people attach to bug reports and push beside a model. A token field in it (a key that
ends in ``_token``, or is ``token``: the rule transformers' ``TrainingArguments.to_dict`` redacts by) is written as
``<HUB_TOKEN>``, as transformers writes it. The ranks still need the real value: the launcher hands the tokens to
them in their environment (``TINYZERO_SECRETS``, JSON of dotted key -> value), never on a command line or in a file,
and ``restore`` puts them back into the config they read from ``config.yaml``. Tokens that come from the
environment in the first place (``HF_TOKEN``, ``WANDB_API_KEY``) are never written anywhere.
"""

from __future__ import annotations

import copy
import json
import os

SECRETS_ENV = "TINYZERO_SECRETS"


def is_secret(key) -> bool:
    """Whether a config key holds a token (transformers' rule: the name ends in ``_token``; or it is ``token``)."""
    return isinstance(key, str) and (key == "token" or key.endswith("_token"))


def placeholder(key: str) -> str:
    """What a token field reads in a written file: ``<HUB_TOKEN>``, as ``TrainingArguments.to_dict`` writes it."""
    return f"<{key.upper()}>"


def _walk(node, path=()):
    """(path, key, mapping) of every secret field holding a value in nested mappings."""
    if isinstance(node, dict):
        for key, value in node.items():
            if is_secret(key) and isinstance(value, str) and value and value != placeholder(key):
                yield (*path, key), key, node
            else:
                yield from _walk(value, (*path, key))


def split(resolved: dict) -> tuple[dict, dict[str, str]]:
    """``resolved`` with its tokens replaced by placeholders, and the tokens by dotted key."""
    redacted = copy.deepcopy(resolved)
    tokens = {}
    for path, key, mapping in list(_walk(redacted)):
        tokens[".".join(map(str, path))] = mapping[key]
        mapping[key] = placeholder(key)
    return redacted, tokens


def redact(resolved: dict) -> dict:
    """A copy of ``resolved`` that is safe to write: every token a placeholder."""
    return split(resolved)[0]


def secrets_env(resolved: dict) -> dict[str, str]:
    """The environment entry that hands ``resolved``'s tokens to the training processes (empty without tokens)."""
    tokens = split(resolved)[1]
    return {SECRETS_ENV: json.dumps(tokens)} if tokens else {}


def restore(resolved: dict, environ=None) -> dict:
    """``resolved`` as read from ``config.yaml``, with each placeholder back to the token the launcher handed over.

    A placeholder with no token in the environment (``grpo.py --run DIR`` started by hand) becomes None: the run
    then authenticates as transformers does without one (``HF_TOKEN``, a cached login), never with the placeholder.
    """
    environ = os.environ if environ is None else environ
    tokens = json.loads(environ.get(SECRETS_ENV) or "{}")
    restored = copy.deepcopy(resolved)

    def fill(node, path=()):
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if is_secret(key) and value == placeholder(key):
                node[key] = tokens.get(".".join(map(str, (*path, key))))
            else:
                fill(value, (*path, key))

    fill(restored)
    return restored


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with the value of every token override (``+training.hub_token=X``) replaced."""
    out = []
    for arg in argv:
        key, sep, _ = arg.partition("=")
        name = key.lstrip("+~").rsplit(".", 1)[-1]
        out.append(f"{key}={placeholder(name)}" if sep and is_secret(name) else arg)
    return out
