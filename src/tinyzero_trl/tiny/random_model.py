"""Random tiny models with a tokenizer built offline, for smoke-testing any recipe without the hub.

``tinyzero-trl tiny-model --arch qwen2|qwen2-vl --out DIR`` writes a directory that ``from_pretrained`` loads
like a hub checkpoint: a few-layer random Qwen2 (or Qwen2-VL with a processor) with a byte-level BPE tokenizer
and a ChatML chat template.

``--vllm`` writes the shape vLLM's CPU build can run (``VLLM_SHAPE``): its CPU attention kernels take head sizes
of 32 and up, and the default shapes here have 8 per head.
"""

from __future__ import annotations

from pathlib import Path

# ChatML, the format of Qwen2.5's template, so continue_final_message and system turns behave as on the hub.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
# Whole tokens but not special ones, as in the real vocabularies (R1-Distill's <think> is an added, non-special
# token; Qwen2.5 spells the tags in pieces): TRL decodes completions with skip_special_tokens=True, and a reward
# must read the tags the model wrote.
TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
_CORPUS = [
    "Using the numbers [3, 7, 12], create an equation that equals 16. <think> 3 + 7 = 10 </think>",
    "<answer> (1 + 2) / 3 </answer> Let me solve this step by step. The answer is \\boxed{42}.",
    "You are a helpful assistant. Please reason step by step, and put your final answer within \\boxed{}.",
    "0123456789 + - * / ( ) = x y z \\frac{1}{2} How many objects are in the image? There are 5 objects.",
]


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on a few sentences, with ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.add_tokens(TAGS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL_TOKENS[1:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


# vLLM 0.31's CPU attention supports head sizes 32, 64, 80, ... (``CPUAttentionBackend.get_supported_head_sizes``):
# hidden 64 over 2 heads is the smallest model it runs. The wider initialisation makes greedy completions depend
# on the prompt: at transformers' default (0.02) a random model this small repeats one token whatever it is
# asked, and two engines agreeing on that output would prove nothing.
VLLM_SHAPE = {"hidden_size": 64, "heads": 2, "kv_heads": 1, "init_std": 0.1}


def build_qwen2(out: str | Path, *, hidden_size: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                init_std: float | None = None, seed: int = 0) -> Path:
    """Write a random tiny ``Qwen2ForCausalLM`` plus tokenizer to ``out`` and return the path.

    ``init_std`` is the weights' initialisation scale (``initializer_range``; transformers' 0.02 when None).
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out)
    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=2048, tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None, **_init(init_std),
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _init(init_std: float | None) -> dict:
    return {} if init_std is None else {"initializer_range": init_std}


def build_qwen2_vl(out: str | Path, *, hidden_size: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                   init_std: float | None = None, vision_dim: int = 32, vision_depth: int = 1,
                   image_side: int = 56, seed: int = 0) -> Path:
    """Write a random tiny ``Qwen2VLForConditionalGeneration`` plus ``Qwen2VLProcessor`` to ``out``.

    Qwen2-VL's geometry is kept (patch 14, 2x2 merge, temporal patch 2, M-RoPE) so TRL exercises the real code
    paths; the processor resizes every image to about ``image_side`` squared pixels, so a 56x56 image is 16
    patches and 4 image tokens, cheap enough for CPU tests.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    from tinyzero_trl.model.vlm import qwen2_vl_video_processor

    out = Path(out)
    tokenizer = build_tokenizer()
    token = tokenizer.convert_tokens_to_ids
    half_head = hidden_size // heads // 2  # M-RoPE splits each head's rotary half into (time, height, width)
    text_config = dict(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=2048, **_init(init_std),
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "mrope_section": [half_head - 2 * (half_head // 4), half_head // 4, half_head // 4]},
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    vision_config = dict(depth=vision_depth, embed_dim=vision_dim, hidden_size=hidden_size, num_heads=2,
                         mlp_ratio=2, patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
    config = Qwen2VLConfig(
        text_config=text_config, vision_config=vision_config, tie_word_embeddings=True,
        **_init(init_std), image_token_id=token("<|image_pad|>"), video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"), vision_end_token_id=token("<|vision_end|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    pixels = image_side * image_side
    image_processor = Qwen2VLImageProcessorPil(min_pixels=pixels, max_pixels=pixels, patch_size=14, merge_size=2,
                                               temporal_patch_size=2)
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=qwen2_vl_video_processor(), chat_template=CHAT_TEMPLATE)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


ARCHS = {"qwen2": build_qwen2, "qwen2-vl": build_qwen2_vl}


def build_tiny_model(arch: str, out: str | Path, *, vllm: bool = False, **kwargs) -> Path:
    """Build a random tiny model of ``arch`` (one of ``ARCHS``) into ``out``; ``vllm``: a shape vLLM's CPU build runs."""
    from tinyzero_trl.run.files import check_writable

    if arch not in ARCHS:
        raise ValueError(f"unknown --arch {arch!r}; choose one of {sorted(ARCHS)}")
    check_writable(Path(out), key="--out", hint="--out DIR")
    return ARCHS[arch](out, **({**VLLM_SHAPE, **kwargs} if vllm else kwargs))
