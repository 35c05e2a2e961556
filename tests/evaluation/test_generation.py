"""Sampling settings mean the same on every backend: nothing leaks in from a checkpoint's generation_config."""

from __future__ import annotations

import shutil

import pytest
import torch

from tinyzero_trl.errors import UserError
from tinyzero_trl.evaluation.generation import Sampling, generate_hf


@pytest.fixture
def eager_sampler_model(tiny_model, tmp_path):
    """The tiny model, with a generation_config.json that asks for hot sampling and a strong repetition penalty."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    path = tmp_path / "model"
    shutil.copytree(tiny_model, path)
    GenerationConfig(do_sample=True, temperature=5.0, top_k=3, top_p=0.5, repetition_penalty=5.0,
                     eos_token_id=None).save_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    return model, AutoTokenizer.from_pretrained(path)


def _argmax_decode(model, ids, n):
    for _ in range(n):
        with torch.no_grad():
            nxt = model(ids).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    return ids


def test_greedy_is_argmax_whatever_the_checkpoint_asks_for(eager_sampler_model):
    model, tokenizer = eager_sampler_model
    text = "Using the numbers [3, 7, 12], create"
    got = generate_hf(model, tokenizer, [text] * 2, Sampling(max_new_tokens=6), progress=False)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    want = tokenizer.decode(_argmax_decode(model, ids, 6)[0, ids.shape[1]:], skip_special_tokens=True)
    assert got == [[want], [want]]


def test_hf_config_sets_every_distribution_field_itself():
    from transformers import GenerationConfig

    checkpoint = GenerationConfig(top_k=20, top_p=0.8, repetition_penalty=1.05, min_p=0.1, eos_token_id=[7, 8])
    cfg = Sampling(temperature=0.6, top_p=0.95, num_samples=4, max_new_tokens=32).hf_generation_config(checkpoint)
    assert (cfg.do_sample, cfg.temperature, cfg.top_p, cfg.top_k) == (True, 0.6, 0.95, 0)
    assert (cfg.repetition_penalty, cfg.min_p, cfg.num_return_sequences, cfg.eos_token_id) == (1.0, 0.0, 4, [7, 8])
    greedy = Sampling().hf_generation_config(checkpoint)
    assert greedy.do_sample is False and greedy.repetition_penalty == 1.0


def test_a_greedy_config_gives_transformers_nothing_to_warn_about():
    """Before: every greedy evaluation printed "generation flags are not valid and may be ignored: ['min_p',
    'top_k']" (neutral sampling values set beside do_sample=False); strict validation raises on exactly that."""
    Sampling().hf_generation_config().validate(strict=True)
    Sampling(temperature=0.7, top_k=5, top_p=0.9).hf_generation_config().validate(strict=True)


@pytest.mark.parametrize("bad", [{"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"num_samples": 0},
                                 {"max_new_tokens": 0}, {"top_k": -2}])
def test_impossible_settings_are_named(bad):
    with pytest.raises(UserError, match=next(iter(bad))):
        Sampling(**bad)


def test_a_stop_string_ends_the_completion_and_is_left_out_as_vllm_does():
    s = Sampling(stop=("\nUser:",))
    assert s.stops(None).cut("<answer>1+2</answer>\nUser: next question") == "<answer>1+2</answer>"
    assert s.stops(None).cut("no stop here") == "no stop here"
    assert Sampling(stop=("b", "a")).stops(None).cut("xxabyy") == "xx"  # the earliest of several
    assert s.hf_generation_config().stop_strings == ["\nUser:"]


def test_hf_generation_stops_at_the_stop_string(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)
    free = generate_hf(model, tokenizer, ["The answer is"], Sampling(max_new_tokens=12), progress=False)[0][0]
    stop = free[3:6]  # a piece of what the model writes anyway
    cut = generate_hf(model, tokenizer, ["The answer is"], Sampling(max_new_tokens=12, stop=(stop,)),
                      progress=False)[0][0]
    assert stop not in cut and free.startswith(cut) and len(cut) < len(free)


def test_the_progress_bar_counts_completions_as_they_end(tiny_model, monkeypatch):
    """Before: one tick per batch of prompts (2 jumps for 200 prompts at batch size 100). Now the bar counts
    completions, each when it ends: with a stop string that ends some completions early, the bar moves more than
    once within one batch, and reaches the number of completions."""
    import tqdm.auto
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bars = []

    class Bar:
        def __init__(self, total=None, unit=None, **kwargs):
            self.total, self.unit, self.updates = total, unit, []
            bars.append(self)

        def update(self, n=1):
            self.updates.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):  # the old code iterated a bar over its batches
            return iter(range(0, 6, 6))

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    prompts = [f"Using the numbers [{k}, 7, 12], create" for k in range(6)]
    sampling = Sampling(max_new_tokens=12, temperature=1.0, num_samples=2, stop=(" ", "e", "a"))
    generate_hf(model, tokenizer, prompts, sampling, batch_size=6)
    bar = bars[0]
    assert (bar.total, bar.unit, sum(bar.updates)) == (12, "completion", 12)
    assert len([n for n in bar.updates if n]) > 1, bar.updates
