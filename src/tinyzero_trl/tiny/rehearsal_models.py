"""What a rehearsal keeps of each GPU reproduction's model: its chat template, its special tokens, its
architecture class and the traits of its ``config.json``; and its real size, for the GPU check.

Everything here was read from public copies of the hub files, not from the hub itself (unreachable from this
project); ``reproductions/_sources/hub-layouts.md`` section 2 holds the notes, each fact with its source, and
the sources are repeated beside each profile. Where a fact was not found, the profile says so (``unverified``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Qwen2.5's added tokens, ids 151643..151664, in id order, with their `special` flag (a Qwen2.5 tokenizer_config
# copy: software-mansion/react-native-executorch-qwen-2.5@7fdb1ad tokenizer_config.json; added_tokens.json of a
# Qwen2.5-0.5B-Instruct re-upload is 605 bytes, exactly these 22 entries).
QWEN25_ADDED = (
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
)
FIRST_ADDED_ID = 151643  # where every profile's added tokens start in the real vocabulary

# DeepSeek-R1-Distill-Qwen's added tokens, ids 151643..151664 (an R1-distill tokenizer.json excerpt; the same ids
# in RabotniKuma/Fast-Math-R1-14B-2's tokenizer_config). The full-width bars are U+FF5C, the low bar U+2581.
# <think> and </think> are ordinary (not special) tokens: a decoded completion keeps them.
R1_DISTILL_ADDED = (
    ("<｜end▁of▁sentence｜>", True), ("<｜User｜>", False), ("<｜Assistant｜>", False),
    ("<｜begin▁of▁sentence｜>", True), ("<|EOT|>", False), ("<think>", False), ("</think>", False),
    *QWEN25_ADDED[7:],  # <|quad_start|> .. <|file_sep|>, as in Qwen2.5
)

# Qwen2-VL's added tokens are Qwen2.5's first 14 (ids 151643..151656; added_tokens.json of re-uploads: 392 bytes).
QWEN2_VL_ADDED = QWEN25_ADDED[:14]

# The real models' shapes (config.json), for the GPU check: rehearsals keep the traits, not the size.
QWEN25_3B = {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
             "num_key_value_heads": 2}
R1_DISTILL_1_5B = {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                   "num_attention_heads": 12, "num_key_value_heads": 2}


@dataclass(frozen=True)
class ModelProfile:
    """One real model as a rehearsal stands it in: tokenizer (``template`` file in ``assets/templates``, the
    ``added`` tokens in id order, bos/eos/pad), ``traits`` of its config.json kept in the tiny model, the tokens
    its ``generation_config.json`` stops on, and ``shape`` (its real size, where read) for the GPU check."""

    hub_id: str
    arch: str  # "qwen2" (Qwen2ForCausalLM) or "qwen2-vl" (Qwen2VLForConditionalGeneration)
    template: str
    added: tuple[tuple[str, bool], ...]
    eos: str
    pad: str
    bos: str | None = None
    model_max_length: int = 131072
    traits: dict = field(default_factory=dict)
    generation: dict = field(default_factory=dict)  # generation_config.json fields other than its eos/bos
    generation_eos: tuple[str, ...] = ()
    shape: dict = field(default_factory=dict)
    unverified: str = ""
    sources: tuple[str, ...] = ()


_QWEN25_BASE_SOURCES = (
    "template: derived (README of tiny/assets/templates)",
    "eos/pad <|endoftext|>: QwenLM/Qwen3 issue #927 (maintainer) and a Qwen2.5 base tokenizer_config tail in "
    "Qwen/Qwen2.5-Coder-7B discussion #8",
    "config: BitStack/BitStack-Qwen2.5-3B config.json (derived from Qwen/Qwen2.5-3B): eos_token_id 151643, rope_theta "
    "1e6, tied embeddings, max_position_embeddings 32768",
)


def _qwen25_base(hub_id: str, note: str = "") -> ModelProfile:
    return ModelProfile(
        hub_id=hub_id, arch="qwen2", template="Qwen-Qwen2.5-3B.jinja", added=QWEN25_ADDED, eos="<|endoftext|>",
        pad="<|endoftext|>", traits={"rope_theta": 1e6, "max_position_embeddings": 32768, "tie_word_embeddings": True,
                                     "rms_norm_eps": 1e-6},
        generation_eos=("<|endoftext|>",), shape=QWEN25_3B if hub_id.endswith("3B") else {},
        unverified="the template text is derived, not byte-verified" + note, sources=_QWEN25_BASE_SOURCES)


PROFILES: dict[str, ModelProfile] = {
    "Qwen/Qwen2.5-0.5B": _qwen25_base("Qwen/Qwen2.5-0.5B", "; the 0.5B config.json was not read: the 3B's traits"),
    "Qwen/Qwen2.5-1.5B": _qwen25_base("Qwen/Qwen2.5-1.5B", "; the 1.5B config.json was not read: the 3B's traits"),
    "Qwen/Qwen2.5-3B": _qwen25_base("Qwen/Qwen2.5-3B"),
    "Qwen/Qwen2.5-3B-Instruct": ModelProfile(
        hub_id="Qwen/Qwen2.5-3B-Instruct", arch="qwen2", template="Qwen-Qwen2.5-3B-Instruct.jinja", added=QWEN25_ADDED,
        eos="<|im_end|>", pad="<|endoftext|>",
        traits={"rope_theta": 1e6, "max_position_embeddings": 32768, "tie_word_embeddings": True, "rms_norm_eps": 1e-6},
        generation_eos=("<|im_end|>",), shape=QWEN25_3B,
        unverified="generation_config.json was not read: it stops on config.json's eos_token_id (151645) only",
        sources=("template: trl 1.16.0 trl/chat_templates/qwen2_5.jinja (exact)",
                 "tokens: a full Qwen2.5-Instruct tokenizer_config copy (bos null, eos <|im_end|>, pad <|endoftext|>)",
                 "config: hsuwill000/Qwen2.5-3B-Instruct-openvino config.json (_name_or_path Qwen/Qwen2.5-3B-Instruct)")),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": ModelProfile(
        hub_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", arch="qwen2",
        template="deepseek-ai-DeepSeek-R1-Distill-Qwen-1.5B.jinja", added=R1_DISTILL_ADDED,
        bos="<｜begin▁of▁sentence｜>", eos="<｜end▁of▁sentence｜>", pad="<｜end▁of▁sentence｜>", model_max_length=16384,
        traits={"rope_theta": 10000.0, "max_position_embeddings": 131072, "tie_word_embeddings": False,
                "rms_norm_eps": 1e-6, "max_window_layers": 21},
        generation={"do_sample": True, "temperature": 0.6, "top_p": 0.95},
        generation_eos=("<｜end▁of▁sentence｜>",), shape=R1_DISTILL_1_5B,
        unverified=("add_bos_token is unresolved for the 1.5B (the 32B distill has false): the template writes the "
                    "BOS itself and the tokenizer adds none; the real tokenizer class is LlamaTokenizerFast, the "
                    "rehearsal's Qwen2Tokenizer (both byte-level BPE over Qwen's vocabulary)"),
        sources=("template: trl 1.16.0 trl/chat_templates/deepseek_r1_distill.jinja (exact; main, <think> prefill)",
                 "tokens: Evilcarbon/DeepSeek-R1-Distill-Qwen-32B@d5e5623 tokenizer_config.json; an R1-distill "
                 "tokenizer.json excerpt (ids 151643..151664)",
                 "config: rohinm/model config.json (_name_or_path the 1.5B); generation_config.json @0092dee")),
    "Qwen/Qwen2-VL-2B-Instruct": ModelProfile(
        hub_id="Qwen/Qwen2-VL-2B-Instruct", arch="qwen2-vl", template="Qwen-Qwen2-VL-2B-Instruct.jinja",
        added=QWEN2_VL_ADDED, eos="<|im_end|>", pad="<|endoftext|>",
        traits={"rope_theta": 1e6, "max_position_embeddings": 32768, "tie_word_embeddings": True, "rms_norm_eps": 1e-6,
                "mrope_ratio": (16, 24, 24), "vision_mlp_ratio": 4, "vision_hidden_act": "quick_gelu",
                "min_pixels": 3136, "max_pixels": 12845056,
                "image_mean": (0.48145466, 0.4578275, 0.40821073), "image_std": (0.26862954, 0.26130258, 0.27577711)},
        generation_eos=("<|im_end|>",),
        unverified="eos/pad/bos of its tokenizer_config were not read (Qwen's convention: <|im_end|>, <|endoftext|>, none)",
        sources=("template: trl 1.16.0 trl/chat_templates/qwen2_5_vl.jinja (exact: 'Also matches Qwen2-VL')",
                 "config: onnx-community/Qwen2-VL-2B-Instruct and wsibnvs/ShowUI-2B config.json; vision tower: "
                 "Sibgat-Ul/DeepQwenCoderVL_B1, zszhong/Lyra_Qwen2VL_2B_ViT; image processor: "
                 "Qwen/Qwen2-VL-2B preprocessor_config.json")),
}


def profile(hub_id: str) -> ModelProfile:
    """The profile of ``hub_id``; a ``ValueError`` naming the known models otherwise."""
    if hub_id not in PROFILES:
        raise ValueError(f"no rehearsal profile for model {hub_id!r}; known: {', '.join(sorted(PROFILES))}")
    return PROFILES[hub_id]
