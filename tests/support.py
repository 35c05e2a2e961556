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


def steered_model(out: str | Path, prompt: str, completion: str, *, vllm: bool = False, steps: int = 400) -> Path:
    """A tiny random Qwen2 trained until it continues ``prompt`` with ``completion`` and then its EOS, all but
    surely even when sampling at temperature 1: a model made to emit a chosen text (a stop string, say) through the
    real generation paths. ``vllm``: the shape vLLM's CPU build runs."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinyzero_trl.tiny.random_model import build_tiny_model

    path = build_tiny_model("qwen2", out, vllm=vllm)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    inputs = torch.tensor([ids])
    labels = inputs.clone()
    labels[0, :len(prompt_ids)] = -100  # learn the completion only
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 1e-3:
            break
    model.eval()
    model.save_pretrained(path)
    return path


# countdown-3b's stop string, as a steered model meets it: a right answer, then "\nUser:" and more text (oat-zero's
# prompts are raw dialogue, so a base model goes on as the user). tests/train and tests/real_vllm share it.
STOP_PROMPT = ("Using the numbers [1, 2, 3], create an equation that equals 9.\nAssistant: Let me solve this step by "
               "step.\n<think>")
STOP_ANSWER = " 1+2=3 3*3=9</think>\n<answer>(1+2)*3</answer>"
OAT_STOPS = ["</s>", "<|im_end|>", "<|endoftext|>", "\nUser:"]  # countdown-3b's, from oat-zero


def countdown_zero_folder(path: Path) -> Path:
    """Rows of STOP_PROMPT in oat-zero's form (lkevinzc/CountDownZero: input, gt_answer), a file per split."""
    import json

    row = json.dumps({"input": STOP_PROMPT, "gt_answer": json.dumps({"target": 9, "numbers": [1, 2, 3]})}) + "\n"
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.jsonl").write_text(row * 8)
    (path / "test.jsonl").write_text(row * 2)
    return path
