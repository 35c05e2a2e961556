"""The rehearsal stand-ins: random tiny models whose tokenizer is the real model's template and special tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyzero_trl.tiny.rehearsal import TEMPLATES, build_rehearsal_model, chat_template
from tinyzero_trl.tiny.rehearsal_models import PROFILES, R1_DISTILL_ADDED

# The templates that trl 1.16 ships as the models' own ("Original Qwen2.5 chat template" ...): ours must be them.
TRL_TEMPLATES = {"Qwen-Qwen2.5-3B-Instruct.jinja": "qwen2_5.jinja", "Qwen-Qwen2-VL-2B-Instruct.jinja": "qwen2_5_vl.jinja",
                 "deepseek-ai-DeepSeek-R1-Distill-Qwen-1.5B.jinja": "deepseek_r1_distill.jinja"}


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stand-ins")
    return {hub_id: build_rehearsal_model(hub_id, root / hub_id.replace("/", "--"))
            for hub_id in ("Qwen/Qwen2.5-3B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "Qwen/Qwen2-VL-2B-Instruct")}


@pytest.mark.parametrize("ours,trls", sorted(TRL_TEMPLATES.items()))
def test_templates_are_byte_identical_to_the_ones_trl_ships(ours, trls):
    import trl

    assert (TEMPLATES / ours).read_bytes() == (Path(trl.__file__).parent / "chat_templates" / trls).read_bytes()


def test_every_profile_names_an_existing_template_and_its_sources():
    for prof in PROFILES.values():
        assert (TEMPLATES / prof.template).is_file(), prof.hub_id
        assert prof.sources and prof.eos in dict(prof.added) and prof.pad in dict(prof.added)


def test_the_tokenizer_carries_the_real_template_and_added_tokens_in_order(stand_ins):
    from transformers import AutoTokenizer

    for hub_id, path in stand_ins.items():
        prof = PROFILES[hub_id]
        tok = AutoTokenizer.from_pretrained(path)
        assert tok.chat_template == chat_template(prof)
        ids = [tok.convert_tokens_to_ids(t) for t, _ in prof.added]
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{hub_id}: added tokens out of the real order"
        special = {t for t, s in prof.added if s}
        assert {t for t in tok.all_special_tokens if t in dict(prof.added)} <= special
        assert (tok.eos_token, tok.pad_token, tok.bos_token) == (prof.eos, prof.pad, prof.bos)


def test_the_distill_prompt_renders_and_tokenizes_as_the_real_one(stand_ins):
    """The system prompt straight after BOS, the <think> prefill, and <think> one ordinary token a decode keeps."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(stand_ins["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"])
    text = tok.apply_chat_template([{"role": "system", "content": "You are a good assistant"},
                                    {"role": "user", "content": "What is the weather in Copenhagen?"}],
                                   tokenize=False, add_generation_prompt=True)
    # litellm's test of the real template asserts this rendering (hub-layouts.md 2.3).
    assert text == ("<｜begin▁of▁sentence｜>You are a good assistant<｜User｜>What is the weather in Copenhagen?"
                    "<｜Assistant｜><think>\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[0] == "<｜begin▁of▁sentence｜>" and ids.count(tok.bos_token_id) == 1
    think = tok.convert_tokens_to_ids("<think>")
    assert think in ids and ("<think>", False) in R1_DISTILL_ADDED
    assert "</think>" in tok.decode(tok("a\n</think>\nb", add_special_tokens=False)["input_ids"], skip_special_tokens=True)


def test_the_models_keep_the_real_architecture_traits(stand_ins):
    from transformers import AutoConfig

    qwen = AutoConfig.from_pretrained(stand_ins["Qwen/Qwen2.5-3B"])
    distill = AutoConfig.from_pretrained(stand_ins["deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"])
    assert (qwen.model_type, qwen.tie_word_embeddings, qwen.rope_parameters["rope_theta"]) == ("qwen2", True, 1e6)
    assert (distill.tie_word_embeddings, distill.rope_parameters["rope_theta"], distill.max_position_embeddings) == \
        (False, 10000.0, 131072)
    assert qwen.hidden_size // qwen.num_attention_heads >= 32  # vLLM's CPU attention takes head sizes of 32 and up
    vl = AutoConfig.from_pretrained(stand_ins["Qwen/Qwen2-VL-2B-Instruct"])
    assert vl.model_type == "qwen2_vl" and vl.vision_config.hidden_act == "quick_gelu"
    section = vl.text_config.rope_parameters["mrope_section"]
    assert sum(section) == vl.text_config.hidden_size // vl.text_config.num_attention_heads // 2
    assert section == [4, 6, 6]  # the real [16, 24, 24] at a quarter of the head size


def test_the_vision_stand_in_loads_as_training_and_evaluation_load_it(stand_ins):
    from tinyzero_trl.model.loading import load_processing_class

    processor = load_processing_class(str(stand_ins["Qwen/Qwen2-VL-2B-Instruct"]), images=True)
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") != processor.tokenizer.unk_token_id
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]
    text = processor.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|vision_start|><|image_pad|><|vision_end|>How many?<|im_end|>\n<|im_start|>assistant\n")


def test_a_build_is_reused_and_records_what_it_stands_in_for(stand_ins):
    path = stand_ins["Qwen/Qwen2.5-3B"]
    stamp = json.loads((path / "rehearsal_build.json").read_text())
    assert stamp["stands_in_for"] == "Qwen/Qwen2.5-3B" and stamp["parameters"] < 1_000_000
    before = (path / "model.safetensors").stat().st_mtime_ns
    build_rehearsal_model("Qwen/Qwen2.5-3B", path)
    assert (path / "model.safetensors").stat().st_mtime_ns == before


def test_an_unknown_model_is_named():
    with pytest.raises(ValueError, match="no rehearsal profile for model 'org/other'"):
        build_rehearsal_model("org/other", "/nonexistent")
