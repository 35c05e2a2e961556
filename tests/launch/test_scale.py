"""Memory estimates, parameter counts and the dry-run plan text (no hub, no GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyzero_trl.launch.plan import prepare, read_accelerate_config
from tinyzero_trl.launch.scale import (
    GB,
    KNOWN_PARAMS,
    estimate_memory,
    model_params,
    params_from_config,
    strategy,
    vllm_tensor_parallel,
)

P = 7e9


def test_ddp_is_sixteen_bytes_per_parameter():
    mem = estimate_memory(P, 8, 0, dtype_bytes=2)
    # bf16 weights 2 + bf16 grads 2 + fp32 master 4 + Adam 8 = 16 bytes per parameter, nothing sharded
    assert mem["total"] == pytest.approx(16 * P / GB)
    assert mem["weights"] == pytest.approx(2 * P / GB) and mem["adam"] == pytest.approx(8 * P / GB)


def test_zero3_divides_everything_by_n():
    one = estimate_memory(P, 1, 3)
    for n in (2, 8, 24):
        assert estimate_memory(P, n, 3)["total"] == pytest.approx(one["total"] / n)


def test_zero_stages_shard_more_and_more():
    n = 8
    ddp, z1, z2, z3 = (estimate_memory(P, n, s) for s in range(4))
    assert ddp["total"] > z1["total"] > z2["total"] > z3["total"]
    assert z1["weights"] == ddp["weights"] and z1["grads"] == ddp["grads"]  # ZeRO-1: optimizer states only
    assert z1["adam"] == pytest.approx(ddp["adam"] / n) and z1["master"] == pytest.approx(ddp["master"] / n)
    assert z2["grads"] == pytest.approx(ddp["grads"] / n) and z2["weights"] == ddp["weights"]
    assert z3["weights"] == pytest.approx(ddp["weights"] / n)


def test_fp32_has_no_master_copy_and_reference_model_counts():
    fp32 = estimate_memory(P, 1, 0, dtype_bytes=4)
    assert fp32["master"] == 0 and fp32["total"] == pytest.approx(16 * P / GB)  # 4 + 4 + 8
    with_ref = estimate_memory(P, 4, 3, ref_model=True)
    assert with_ref["reference"] == pytest.approx(2 * P / GB / 4)


def test_lora_trains_few_parameters_and_needs_no_reference_copy():
    full = estimate_memory(P, 1, 0, ref_model=True)
    lora = estimate_memory(P, 1, 0, lora=True, ref_model=True, trainable_params=P / 100)
    assert lora["weights"] == full["weights"] and lora["reference"] == 0
    assert lora["adam"] == pytest.approx(full["adam"] / 100)
    assert lora["total"] < full["total"] / 4


def test_bad_stage():
    with pytest.raises(ValueError):
        estimate_memory(P, 1, 4)


def test_params_from_config_matches_the_real_model(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = json.loads((Path(tiny_model) / "config.json").read_text())
    assert params_from_config(config) == sum(p.numel() for p in model.parameters())
    count, source = model_params(tiny_model)
    assert count == params_from_config(config) and "config.json" in source


def test_params_from_config_reproduces_model_card_counts():
    # Published architectures (config.json of the hub repos) against the model cards' totals.
    qwen72 = {"hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
              "intermediate_size": 29568, "vocab_size": 152064, "model_type": "qwen2", "tie_word_embeddings": False}
    llama70 = {"hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
               "intermediate_size": 28672, "vocab_size": 128256, "model_type": "llama", "tie_word_embeddings": False}
    qwen3b = {"hidden_size": 2048, "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2,
              "intermediate_size": 11008, "vocab_size": 151936, "model_type": "qwen2", "tie_word_embeddings": True}
    assert params_from_config(qwen72) == pytest.approx(KNOWN_PARAMS["Qwen/Qwen2.5-72B-Instruct"], rel=0.01)
    assert params_from_config(llama70) == pytest.approx(KNOWN_PARAMS["meta-llama/Llama-3.3-70B-Instruct"], rel=0.01)
    assert params_from_config(qwen3b) == pytest.approx(KNOWN_PARAMS["Qwen/Qwen2.5-3B"], rel=0.01)


def test_unknown_model_is_said_not_guessed():
    count, reason = model_params("someone/unknown-model-xyz")
    assert count is None and "unknown model" in reason


def test_strategy_of_packaged_configs():
    assert strategy(read_accelerate_config("zero3"), 8) == ("DeepSpeed ZeRO-3", 3)
    assert strategy(read_accelerate_config("zero1"), 8)[1] == 1
    assert strategy(read_accelerate_config("ddp"), 8) == ("DDP", 0)
    assert strategy(read_accelerate_config("fsdp"), 8)[1] == 3
    assert strategy({}, 1) == ("single process", 0)


def test_tensor_parallel_for_the_server():
    assert vllm_tensor_parallel(3.09e9) == 1
    assert vllm_tensor_parallel(72.7e9) == 8


def _plan_text(overrides, **options):
    return prepare(overrides, cpu=False, **options).text


def test_describe_70b_plan_names_nodes():
    text = _plan_text(["+countdown=grpo-qwen-2.5-72b-instruct"], accelerate="zero3", num_processes=24,
                      num_machines=3, main_process_ip="10.0.0.1", vllm_server_url="http://10.0.0.4:8000")
    assert "72.70B parameters" in text and "DeepSpeed ZeRO-3" in text
    assert "24 training process(es) on 3 machine(s), 8 per machine" in text
    assert "server at http://10.0.0.4:8000" in text
    assert "tensor parallel 8" in text
    assert "this plan: 24 + 8 = 4 node(s) (enough)" in text
    assert "launch       :" in text and "--num_machines 3" in text


def test_describe_flags_plans_that_do_not_fit():
    text = _plan_text(["+countdown=grpo-qwen-2.5-72b-instruct"], accelerate="zero3", num_processes=8)
    assert "does NOT fit" in text and "too few training GPUs" in text
    ddp = _plan_text(["+countdown=grpo-qwen-2.5-72b-instruct"], accelerate="ddp", num_processes=8)
    assert "cannot fit" in ddp and "use zero3 or fsdp" in ddp


def test_describe_colocate_recipe():
    text = _plan_text(["+countdown=grpo-qwen-2.5-3b-base"], accelerate="zero2", num_processes=2)
    assert "colocate" in text and "fits" in text and "1 node(s)" in text
