"""Rewards for tests only, loaded through ``TINYZERO_REWARD_MODULES=tinyzero_test_rewards`` (tests/plugins on the path).

A random tiny model never writes a countdown answer, so every built-in reward gives it 0.0, every advantage is
0, and GRPO leaves the weights exactly as they were: a smoke run would pass without training anything. This
reward varies on any text, so the smoke runs' advantages are not zero and their weights must move.
"""

import os

from tinyzero_trl.rewards import register
from tinyzero_trl.rewards.format import completion_texts


@register("text_variety", bounds=(0.0, 1.0))
def text_variety(completions, **kwargs) -> list[float]:
    """Distinct characters over length: any two different completions are likely to score differently."""
    return [len(set(t)) / len(t) if t else 0.0 for t in (c or "" for c in completion_texts(completions))]


@register("record_completions", bounds=(0.0, 0.0))
def record_completions(completions, completion_ids=None, **kwargs) -> list[float]:
    """Append what a reward receives (each completion's text and token ids) to ``$TINYZERO_RECORD``; score 0."""
    import json

    path = os.environ.get("TINYZERO_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            for i, text in enumerate(completion_texts(completions)):
                ids = list(completion_ids[i]) if completion_ids is not None else None
                fh.write(json.dumps({"text": text, "ids": ids}) + "\n")
    return [0.0] * len(completions)


# The health tests' failures (tests/train/test_health_runs.py): each reward makes a real run fail one way.
@register("prompt_only", bounds=(0.0, 1.0))
def prompt_only(completions, prompts=None, **kwargs) -> list[float]:
    """A score of the prompt alone: every completion of one prompt gets the same, so no group has an advantage."""
    return [(len(str(p)) % 5) / 4 for p in (prompts or [None] * len(completions))]


@register("brevity", bounds=(0.0, 1.0))
def brevity(completions, **kwargs) -> list[float]:
    """Pays for short completions: a run on it drops its thinking, as TinyZero issue 85's runs did."""
    return [1.0 / (1.0 + len(t or "") / 10) for t in completion_texts(completions)]


@register("repetition", bounds=(0.0, 1.0))
def repetition(completions, **kwargs) -> list[float]:
    """Pays for repeated characters: a run on it collapses into one character, as TinyZero issue 63's did."""
    return [1.0 - len(set(t)) / len(t) if t else 0.0 for t in (c or "" for c in completion_texts(completions))]


class _AbortAtTeardown:
    """Aborts the process when the interpreter tears this module down: what a library's C++ thread did to a rank of
    a finished ZeRO-3 run 3 times in 107 ("terminate called without an active exception", exit -6), made certain.
    Armed by ``$TINYZERO_TEST_ABORT_AT_TEARDOWN`` in the ranks only (``$RANK``; tests/distributed/test_distributed.py)."""

    abort = staticmethod(os.abort)  # bound now: imports fail once teardown has begun

    def __del__(self):
        self.abort()


if {"TINYZERO_TEST_ABORT_AT_TEARDOWN", "RANK"} <= set(os.environ):
    _ABORT_AT_TEARDOWN = _AbortAtTeardown()
