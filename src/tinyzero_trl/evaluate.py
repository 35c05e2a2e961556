"""Evaluate a saved model on a task's held-out set: greedy pass@1, or pass@k with sampling.

    tinyzero-trl evaluate countdown --model_path outputs/countdown/qwen-2.5-3b-base --output eval.json

When the model sits in (or under) a run directory, the run's own data settings are used, so the held-out set
and prompt template are the ones it trained with. vLLM is used when installed and a GPU is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tinyzero_trl.config import DataConfig
from tinyzero_trl.run_dir import CONFIG_FILE, write_json

SCORERS = {"countdown": "countdown_equation", "math": "math_accuracy", "multimodal": "count_accuracy"}
DEFAULT_DATA = {
    "countdown": {"task": "countdown", "source": "hub", "template": "r1-chat"},
    "math": {"task": "math", "source": "hub",
             "instruction": "\nPlease reason step by step, and put your final answer within \\boxed{}."},
    "multimodal": {"task": "multimodal", "source": "generate"},
}


def run_data_config(task: str, model_path: str, overrides: dict | None = None) -> DataConfig:
    """The data settings for evaluation: the run's own config.yaml if found beside the model, then overrides."""
    data = dict(DEFAULT_DATA[task])
    for folder in (Path(model_path), Path(model_path).parent):
        cfg_file = folder / CONFIG_FILE
        if cfg_file.is_file():
            saved = (yaml.safe_load(cfg_file.read_text()) or {}).get("data") or {}
            if saved.get("task") == task:
                data.update(saved)
            break
    data.update({k: v for k, v in (overrides or {}).items() if v is not None or k not in data})
    return DataConfig(**data)


def _prompt_texts(prompts, processing_class) -> list[str]:
    """Plain prompts pass through; conversational ones are rendered with the chat template."""
    texts = []
    for p in prompts:
        if isinstance(p, str):
            texts.append(p)
        else:
            texts.append(processing_class.apply_chat_template(p, tokenize=False, add_generation_prompt=True))
    return texts


def generate_hf(model, tokenizer, texts, *, num_samples, max_new_tokens, temperature, batch_size, progress=True):
    """Batched ``generate`` with left padding; returns ``num_samples`` completions per prompt."""
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    outputs: list[list[str]] = []
    for start in tqdm(range(0, len(texts), batch_size), desc="generating", unit="batch", disable=not progress):
        chunk = texts[start:start + batch_size]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        outputs += generate_batch(model, tokenizer, enc, num_samples=num_samples, max_new_tokens=max_new_tokens,
                                  temperature=temperature)
    return outputs


def generate_batch(model, tokenizer, enc, *, num_samples, max_new_tokens, temperature) -> list[list[str]]:
    """One ``generate`` call on an encoded, left-padded batch: ``num_samples`` decoded completions per row."""
    import torch

    sample = num_samples > 1 or temperature > 0
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=sample,
                             temperature=temperature if sample else None, top_p=None, top_k=None,
                             num_return_sequences=num_samples, pad_token_id=tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [texts[i:i + num_samples] for i in range(0, len(texts), num_samples)]


def generate_vllm(model_path, texts, *, num_samples, max_new_tokens, temperature):
    """Generation with vLLM (GPU image); same output shape as ``generate_hf``."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path)
    params = SamplingParams(n=num_samples, temperature=temperature if num_samples > 1 else 0.0,
                            max_tokens=max_new_tokens)
    return [[o.text for o in r.outputs] for r in llm.generate(texts, params)]


def pick_backend(backend: str) -> str:
    """``auto`` means vLLM when it is importable and a GPU is visible, else HF generate."""
    if backend != "auto":
        return backend
    try:
        import torch
        import vllm  # noqa: F401

        return "vllm" if torch.cuda.is_available() else "hf"
    except ImportError:
        return "hf"


def evaluate(task: str, model_path: str, *, backend: str = "auto", limit: int | None = None,
             num_samples: int = 1, temperature: float | None = None, max_new_tokens: int = 1024,
             batch_size: int = 16, data_overrides: dict | None = None, output: str | None = None,
             seed: int = 0, progress: bool = True) -> dict:
    """Score ``model_path`` on ``task``'s test split; return (and optionally write) accuracy and per-item results.

    ``accuracy`` is the mean per-sample score (pass@1); with ``num_samples`` k > 1, ``pass_at_k`` is the share of
    items with at least one correct sample.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinyzero_trl.data import load_task_data
    from tinyzero_trl.rewards import REWARDS

    if task not in SCORERS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(SCORERS)}")
    if Path(model_path).exists() and not (Path(model_path) / "config.json").is_file():
        raise FileNotFoundError(f"--model_path {model_path}: no config.json there (not a saved model directory)")
    torch.manual_seed(seed)
    data_cfg = run_data_config(task, model_path, data_overrides)
    if task == "multimodal":  # images need the model's processor; its tokenizer decodes
        from tinyzero_trl.vlm import load_processor

        processing_class = load_processor(model_path)
        tokenizer = processing_class.tokenizer
    else:
        processing_class = tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    test = load_task_data(data_cfg, processing_class, seed=seed)["test"]
    if limit is not None:
        test = test.select(range(min(limit, len(test))))
    temperature = (0.0 if num_samples == 1 else 1.0) if temperature is None else temperature
    backend = "hf" if task == "multimodal" else pick_backend(backend)  # vLLM: text prompts only here
    if task == "multimodal":
        from transformers import AutoModelForImageTextToText

        from tinyzero_trl.vlm import generate_multimodal

        model = AutoModelForImageTextToText.from_pretrained(model_path).eval()
        completions = generate_multimodal(model, processing_class, test["prompt"], test["image"],
                                          num_samples=num_samples, max_new_tokens=max_new_tokens,
                                          temperature=temperature, batch_size=batch_size, progress=progress)
    elif backend == "vllm":
        texts = _prompt_texts(test["prompt"], tokenizer)
        completions = generate_vllm(model_path, texts, num_samples=num_samples, max_new_tokens=max_new_tokens,
                                    temperature=temperature)
    else:
        texts = _prompt_texts(test["prompt"], tokenizer)
        model = AutoModelForCausalLM.from_pretrained(model_path).eval()
        completions = generate_hf(model, tokenizer, texts, num_samples=num_samples, max_new_tokens=max_new_tokens,
                                  temperature=temperature, batch_size=batch_size, progress=progress)
    scorer = REWARDS[SCORERS[task]]
    columns = [c for c in test.column_names if c not in ("prompt", "image")]  # images stay out of the JSON
    items, total = [], 0.0
    for i, samples in enumerate(completions):
        row = {c: test[i][c] for c in columns}
        scores = [s if s is not None else 0.0
                  for s in scorer(samples, **{c: [row[c]] * len(samples) for c in columns})]
        total += sum(scores) / len(scores)
        items.append({**row, "completions": samples, "scores": scores})
    result = {
        "task": task, "model_path": str(model_path), "backend": backend, "num_items": len(items),
        "num_samples": num_samples, "temperature": temperature, "max_new_tokens": max_new_tokens,
        "accuracy": total / len(items) if items else 0.0,
        "pass_at_k": sum(any(s >= 1.0 for s in it["scores"]) for it in items) / len(items) if items else 0.0,
        "items": items,
    }
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(output), json.loads(json.dumps(result, default=str)))
    return result
