"""How big a run is: parameters, memory per GPU under DDP / ZeRO / FSDP, and the GPUs and nodes it needs.

Offline by design (a dry run must not touch the hub): parameter counts come from a local ``config.json``, the
Hugging Face cache, or a small table of the models our recipes use.

Model-state memory per GPU (mixed precision with Adam, the accounting of the ZeRO paper, Rajbhandari et al.
2020, section 3.1), P parameters, T trainable (P, or the LoRA adapters), N processes, b bytes per weight:

    weights  b*P      / (N under ZeRO-3 / FSDP)
    grads    b*T      / (N under ZeRO-2, ZeRO-3 / FSDP)
    master   4*T      / (N under ZeRO-1 and up)       fp32 copy, only with bf16/fp16 mixed precision
    Adam     8*T      / (N under ZeRO-1 and up)       fp32 exp_avg + exp_avg_sq
    ref      b*P      / (N under ZeRO-3 / FSDP)       GRPO's reference model when beta > 0 (not with LoRA)

Activations, the CUDA context, temporary buffers and a colocated vLLM engine are extra.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

GB = 1e9  # decimal GB: an "80 GB" GPU holds 80e9+ bytes, so budgets in these units err on the safe side
GPU_GB = 80.0
GPUS_PER_NODE = 8
STATES_SHARE = 0.85  # of the memory left for training, what model states may take; the rest: activations etc.
LORA_TRAINABLE = 0.01  # assumed trainable share with LoRA (r=16 on all linear layers is ~0.5-1.5 %)

# Total parameters (embeddings included) from the model cards / hub safetensors listings; approximate.
KNOWN_PARAMS = {
    "Qwen/Qwen2.5-0.5B": 0.49e9,
    "Qwen/Qwen2.5-1.5B": 1.54e9,
    "Qwen/Qwen2.5-3B": 3.09e9,
    "Qwen/Qwen2.5-7B": 7.61e9,
    "Qwen/Qwen2.5-72B": 72.7e9,
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": 1.78e9,  # Qwen2.5-Math-1.5B with untied embeddings
    "Qwen/Qwen2-VL-2B-Instruct": 2.21e9,  # 1.5B language model + 675M vision tower
    "meta-llama/Llama-3.3-70B-Instruct": 70.6e9,
}
for _name in [n for n in KNOWN_PARAMS if n.startswith("Qwen/Qwen2.5-")]:
    KNOWN_PARAMS[_name + "-Instruct"] = KNOWN_PARAMS[_name]


def params_from_config(config: dict) -> int:
    """Parameters of a dense decoder (Llama / Qwen2 / Mistral layout) from its ``config.json``.

    Multimodal configs count their ``text_config`` only; mixture-of-experts layouts are not modelled.
    """
    cfg = config.get("text_config") or config
    hidden, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or hidden // heads
    kv = cfg.get("num_key_value_heads") or heads
    inter, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    q, k_v = heads * head_dim, 2 * kv * head_dim
    bias = cfg.get("attention_bias", cfg.get("model_type", config.get("model_type")) in ("qwen2", "qwen2_vl"))
    attention = hidden * q + hidden * k_v + q * hidden + ((q + k_v) if bias else 0)
    per_layer = attention + 3 * hidden * inter + 2 * hidden  # q/k/v/o, gate/up/down, two RMSNorms
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", cfg.get("tie_word_embeddings")) else 2)
    return layers * per_layer + embeddings + hidden


def model_params(name_or_path: str) -> tuple[float | None, str]:
    """``(parameters, where the number comes from)``; ``(None, reason)`` when it cannot be known offline."""
    local = Path(name_or_path).expanduser() / "config.json"
    if not local.is_file():
        try:  # a model already in the HF cache: read its config without any network call
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name_or_path, "config.json")
            local = Path(cached) if isinstance(cached, str) else local
        except Exception:  # not a repo id, or no huggingface_hub: fall through to the table
            pass
    if local.is_file():
        try:
            return float(params_from_config(json.loads(local.read_text()))), f"computed from {local}"
        except (KeyError, TypeError, ValueError) as err:
            return None, f"cannot count parameters from {local} ({type(err).__name__}: {err})"
    if name_or_path in KNOWN_PARAMS:
        return KNOWN_PARAMS[name_or_path], "model card, approximate"
    return None, "unknown model: point model.name_or_path at a local directory to count its parameters"


def estimate_memory(num_params: float, num_processes: int, zero_stage: int, dtype_bytes: int = 2,
                    lora: bool = False, *, mixed_precision: bool | None = None, ref_model: bool = False,
                    trainable_params: float | None = None) -> dict:
    """Model-state memory per GPU in GB (see the module docstring), by part and in total.

    ``zero_stage``: 0 for DDP, 1-3 for DeepSpeed ZeRO, 3 for FSDP full sharding. ``mixed_precision`` defaults
    to ``dtype_bytes < 4`` (bf16/fp16 weights come with an fp32 master copy).
    """
    if not 0 <= zero_stage <= 3:
        raise ValueError(f"zero_stage must be 0 (DDP), 1, 2 or 3, not {zero_stage}")
    n = max(int(num_processes), 1)
    mixed = dtype_bytes < 4 if mixed_precision is None else mixed_precision
    trainable = trainable_params if trainable_params is not None else (
        num_params * LORA_TRAINABLE if lora else num_params)

    def shard(nbytes: float, from_stage: int) -> float:
        return nbytes / (n if zero_stage >= from_stage else 1) / GB

    parts = {
        "weights": shard(dtype_bytes * num_params, 3),
        "grads": shard(dtype_bytes * trainable, 2),
        "master": shard(4 * trainable, 1) if mixed else 0.0,
        "adam": shard(8 * trainable, 1),
        "reference": shard(dtype_bytes * num_params, 3) if ref_model and not lora else 0.0,
    }
    return {**parts, "total": sum(parts.values()),
            "num_processes": n, "zero_stage": zero_stage,
            "note": "model states only: activations, CUDA context, buffers and vLLM are extra"}


def strategy(cfg: dict, num_processes: int) -> tuple[str, int]:
    """``(description, zero stage equivalent)`` of an accelerate config (its YAML as a mapping; {} for none)."""
    kind = str(cfg.get("distributed_type", "MULTI_GPU" if num_processes > 1 else "NO"))
    if kind == "DEEPSPEED":
        stage = int((cfg.get("deepspeed_config") or {}).get("zero_stage", 0))
        return f"DeepSpeed ZeRO-{stage}", stage
    if kind == "FSDP":
        fsdp = cfg.get("fsdp_config") or {}
        full = fsdp.get("fsdp_reshard_after_forward", True) not in (False, "false", "SHARD_GRAD_OP")
        return f"FSDP{fsdp.get('fsdp_version', 1)} " + ("full shard" if full else "grad/optimizer shard"), 3 if full else 2
    return ("DDP" if num_processes > 1 else "single process"), 0


def min_gpus(memory_at, budget_gb: float, limit: int = 4096) -> int | None:
    """Smallest process count whose per-GPU estimate fits ``budget_gb``; None if no count does."""
    for n in range(1, limit + 1):
        if memory_at(n)["total"] <= budget_gb:
            return n
    return None


def vllm_tensor_parallel(num_params: float, dtype_bytes: int = 2, utilization: float = 0.9) -> int:
    """Smallest power-of-two tensor parallel size whose weight shard takes at most half of vLLM's memory."""
    tp = 1
    while tp < GPUS_PER_NODE and dtype_bytes * num_params / tp / GB > GPU_GB * utilization / 2:
        tp *= 2
    return tp


def resource_lines(plan, resolved: dict, accelerate_cfg: dict, *, cpu: bool = False) -> list[str]:
    """Model, strategy, vLLM mode, memory per GPU and GPUs/nodes needed, one ``key : value`` line each.

    ``cpu``: a run sized for CPUs (countdown-tiny): its model states are in host memory and no GPU count applies.
    """
    model, training = resolved.get("model") or {}, resolved.get("training") or {}
    name = model.get("name_or_path", "?")
    params, source = model_params(name)
    kind, stage = strategy(accelerate_cfg, plan.num_processes)
    half = bool(training.get("bf16") or training.get("fp16")) or model.get("dtype") in ("bfloat16", "float16")
    dtype_bytes = 2 if half else 4
    lora = model.get("lora") is not None
    ref = float(training.get("beta") or 0.0) > 0  # trl loads no reference model at beta 0
    use_vllm, mode = bool(training.get("use_vllm")), training.get("vllm_mode", "colocate")
    # 0.3: trl 1.16's default vllm_gpu_memory_utilization
    colocate_share = float(training.get("vllm_gpu_memory_utilization", 0.3)) if use_vllm and mode == "colocate" else 0
    budget = GPU_GB * (1 - colocate_share) * STATES_SHARE
    vllm_gpus = len(plan.vllm_server.gpus) if plan.vllm_server is not None else 0

    count = f"~{params / 1e9:.2f}B" if params and params >= 1e8 else f"~{(params or 0) / 1e6:.3g}M"
    lines = [f"model        : {name} ({f'{count} parameters, {source}' if params else source})",
             f"strategy     : {kind} (accelerate config: {plan.accelerate or 'none'}), "
             f"{'bf16/fp16 mixed precision' if half else 'fp32'}, {'LoRA' if lora else 'full fine-tune'}"
             f"{', reference model (beta > 0)' if ref else ''}"]
    if not use_vllm:
        lines.append("vLLM mode    : off (generation with transformers)")
    elif mode == "colocate":
        lines.append(f"vLLM mode    : colocate (in each training process, {colocate_share:.0%} of each GPU)")
    elif vllm_gpus:
        lines.append(f"vLLM mode    : server, started here on GPUs {','.join(plan.vllm_server.gpus)} "
                     f"(tensor parallel {vllm_gpus}); trainer on GPUs {','.join(plan.gpus or [])}")
    else:
        url = plan.server_url() or (f"http://{training.get('vllm_server_host', '0.0.0.0')}:"
                                    f"{training.get('vllm_server_port', 8000)} (trl default)")
        lines.append(f"vLLM mode    : server at {url}; start it first (tinyzero-trl train --vllm-server-only "
                     "--vllm-gpus K on its node), or add --vllm-gpus K to start it here")
    if not params:
        return lines

    def memory_at(n):
        return estimate_memory(params, n, stage, dtype_bytes, lora, ref_model=ref)

    mem = memory_at(plan.num_processes)
    parts = ", ".join(f"{k} {mem[k]:.3g}" for k in ("weights", "grads", "master", "adam", "reference") if mem[k])
    if cpu:
        lines.append(f"memory       : ~{mem['total']:.3g} GB model states in host memory ({parts}); a CPU run, no GPU")
        return lines
    fits = "fits" if mem["total"] <= budget else "does NOT fit"
    lines.append(f"memory/GPU   : ~{mem['total']:.3g} GB model states per training GPU ({parts}); {fits} the "
                 f"{budget:.0f} GB budget of an {GPU_GB:.0f} GB GPU ({STATES_SHARE:.0%} of what vLLM leaves; "
                 "activations/CUDA context/vLLM are extra)")
    server_gpus = vllm_gpus or (vllm_tensor_parallel(params, dtype_bytes) if use_vllm and mode == "server" else 0)
    if use_vllm and mode == "server":
        lines.append(f"vLLM server  : ~{dtype_bytes * params / server_gpus / GB:.1f} GB of weights per GPU at tensor "
                     f"parallel {server_gpus}" + ("" if vllm_gpus else " (smallest TP leaving half of each GPU to "
                                                   "the KV cache)") + ", plus KV cache up to --gpu-memory-utilization")
    need = min_gpus(memory_at, budget)
    if need is None:
        lines.append(f"GPUs needed  : {kind} cannot fit {name} on {GPU_GB:.0f} GB GPUs at any process count "
                     "(weights are not sharded): use zero3 or fsdp")
        return lines

    def nodes(train: int) -> int:
        if vllm_gpus:  # server on this machine, next to the trainer
            return math.ceil((train + vllm_gpus) / GPUS_PER_NODE)
        return math.ceil(train / GPUS_PER_NODE) + math.ceil(server_gpus / GPUS_PER_NODE)

    verdict = "enough" if plan.num_processes >= need else "too few training GPUs"
    lines.append(f"GPUs needed  : >= {need} training GPU(s) for {kind} + {server_gpus} vLLM server = {nodes(need)} "
                 f"node(s) of {GPUS_PER_NODE}x{GPU_GB:.0f} GB; this plan: {plan.num_processes} + {server_gpus} = "
                 f"{nodes(plan.num_processes)} node(s) ({verdict})")
    if plan.vllm_server is not None:
        lines.append("vLLM command : " + plan.vllm_server.shell())
    return lines
