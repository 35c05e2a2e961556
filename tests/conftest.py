"""Shared fixtures: a random tiny Qwen2 with a tokenizer built offline (no hub), and small data files."""

from __future__ import annotations

import json
import os

import pytest

# Tests never reach the hub: a test that tries fails fast instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """Path of a random 2-layer Qwen2 + ChatML tokenizer, built once per test session."""
    from tinyzero_trl.tiny.random_model import build_tiny_model

    return str(build_tiny_model("qwen2", tmp_path_factory.mktemp("tiny-qwen2")))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture
def math_jsonl(tmp_path) -> str:
    """A small MATH-style file with problem, solution and answer columns."""
    rows = [
        {"problem": f"What is {a} + {b}?", "solution": f"We add: $\\boxed{{{a + b}}}$.", "answer": str(a + b)}
        for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 2), (9, 1), (4, 4), (6, 3)]
    ]
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)
