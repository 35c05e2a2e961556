"""A vLLM plugin (entry point ``vllm.general_plugins``): what vLLM's CPU build needs to run our GPU recipes' path.

TRL 1.16 keeps a colocated engine in step with the trainer by writing every trained parameter into vLLM's model
(``model.load_weights([(name, tensor)])`` after each step). On GPUs vLLM's linear layers keep their weights
where the loader left them, so that works. vLLM 0.31's CPU build instead repacks each linear weight after
loading (oneDNN, or the AMX kernels for bf16) and replaces the weight with an empty tensor; the next
``load_weights`` then fails with ``'Parameter' object has no attribute 'weight_loader'``, and a tied
``lm_head`` would keep computing with the packed copy of the old embedding.

On the CPU platform only, this plugin makes vLLM take its own fallback for dense 2-D weights: linear layers call
``torch.nn.functional.linear`` on the weights in place, which is what the GPU path does, so TRL's sync (and its
importance-sampling check) means the same on CPU as on GPUs. Other layers (MoE, convolutions) keep vLLM's
dispatch.

It also gives the CPU engine a 1 GiB KV cache unless ``VLLM_CPU_KVCACHE_SPACE`` says otherwise: vLLM's own
default reserves ``gpu_memory_utilization`` of the machine's memory (0.9 for evaluation, the recipes' 0.4 for
colocated training), sized for a dedicated server, not for a laptop that also trains.

vLLM loads general plugins in every process that builds an engine, before it sizes anything; on GPUs this does
nothing.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


CPU_KVCACHE_GIB = "1"


def on_cpu() -> None:
    """Plugin entry point: on vLLM's CPU platform, a bounded KV cache and linear weights kept in place."""
    import os

    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB)  # children (engine core, workers) inherit it
    keep_linear_weights()


def keep_linear_weights() -> None:
    """Dense linear layers compute with ``torch.nn.functional.linear`` on their own weights (see the docstring)."""
    import torch
    from vllm.model_executor.layers import utils

    if getattr(utils.dispatch_cpu_unquantized_gemm, "_tinyzero", False):  # plugins may load twice per process
        return
    vllm_dispatch = utils.dispatch_cpu_unquantized_gemm

    def dispatch(layer: torch.nn.Module, remove_weight: bool) -> None:
        weight = getattr(layer, "weight", None)
        if weight is None or weight.is_meta or weight.ndim != 2:
            return vllm_dispatch(layer, remove_weight)
        layer.cpu_linear = torch.nn.functional.linear  # called as cpu_linear(x, layer.weight, bias)

    dispatch._tinyzero = True
    utils.dispatch_cpu_unquantized_gemm = dispatch
    logger.info("tinyzero-trl: vLLM CPU linear layers compute on their weights in place (TRL weight sync)")
