"""What several test modules share: the environment of a launched CLI, and the proof that training moved weights."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout
PLUGINS = Path(__file__).parent / "plugins"
# Loaded by every process of a launch: text_variety gives a random model's completions different rewards.
LEARNING_SIGNAL = ["+rewards.text_variety=1.0"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "TINYZERO_REWARD_MODULES": "tinyzero_test_rewards",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))}


def assert_every_parameter_moved(base: str | Path, run: str | Path) -> None:
    """Every tensor of the base model differs in the saved model, and nothing else (names, shapes) changed.

    This is TRL's own test of a training step; a run whose rewards never varied would save the base unchanged.
    """
    import torch
    from safetensors.torch import load_file

    before, after = load_file(str(Path(base) / "model.safetensors")), load_file(str(Path(run) / "model.safetensors"))
    # DeepSpeed's save writes a tied lm_head out as its own tensor: the same values as the embedding it is tied to.
    if "lm_head.weight" in after and "lm_head.weight" not in before:
        assert torch.equal(after.pop("lm_head.weight"), after["model.embed_tokens.weight"]), "lm_head came untied"
    assert sorted(before) == sorted(after), "the saved model has other tensors than the base"
    for name, tensor in before.items():
        assert after[name].shape == tensor.shape, name
        assert torch.isfinite(after[name]).all(), f"{name} is not finite after training"
    still = [name for name, tensor in before.items() if torch.equal(after[name], tensor)]
    assert not still, f"{len(still)} of {len(before)} tensors did not move, e.g. {still[:3]}"


def sleepy_scorer(completion: str, gold: str) -> float:
    """A math-verify worker's scorer that takes ``gold`` seconds (module level: workers import it by name)."""
    import time

    time.sleep(float(gold))
    return 1.0
