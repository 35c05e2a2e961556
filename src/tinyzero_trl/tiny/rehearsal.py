"""Stand-ins for a GPU reproduction's model in a rehearsal: random weights, the real architecture class, the real
chat template and special tokens, built offline.

``build_rehearsal_model("Qwen/Qwen2.5-3B", DIR)`` writes a directory that ``from_pretrained`` and vLLM load like
the hub checkpoint: a ``Qwen2ForCausalLM`` (or ``Qwen2VLForConditionalGeneration`` with its processor) with the
traits of the real ``config.json`` (``rehearsal_models.PROFILES``: tied or untied embeddings, rope base, context
length, M-RoPE split) at a size a CPU runs in seconds, and a ``Qwen2Tokenizer`` whose chat template is the real
text (``assets/templates``, sources in its ``SOURCES.md``) and whose added tokens are the real ones, in the real
order, with the real ``special`` flags and the real bos/eos/pad. So a prompt is rendered exactly as on a GPU and
the special tokens are single tokens with the same roles; the ordinary text is cut by a small byte-level BPE
trained here, not Qwen's 151k vocabulary (which is not reachable offline), so token counts and ids differ.

``full_size=True`` builds the real width and depth (``ModelProfile.shape``) with a vocabulary of the real size,
random weights in bfloat16: the GPU check's model (``benchmarks/gpu_rehearsal_check.py``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tinyzero_trl.tiny.rehearsal_models import FIRST_ADDED_ID, ModelProfile, profile

TEMPLATES = Path(__file__).resolve().parent / "assets" / "templates"
BUILD_FILE = "rehearsal_build.json"
VERSION = 1  # bump when the build below changes: a cached build of another version is rebuilt
# VLLM's CPU attention needs a head size of 32 or more (random_model.VLLM_SHAPE): hidden 64 over 2 heads. The wide
# initialisation makes a random model's completions depend on its prompt (random_model.VLLM_SHAPE says why).
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "initializer_range": 0.1}
TINY_VISION = {"depth": 1, "embed_dim": 32, "num_heads": 2}
REAL_VOCAB = 151936  # every profiled model's config.json vocab_size (the embedding has rows past the tokenizer)
BPE_VOCAB = 1000


def chat_template(prof: ModelProfile) -> str:
    """The real chat template text of ``prof``'s model."""
    return (TEMPLATES / prof.template).read_text(encoding="utf-8")


def _corpus() -> list[str]:
    """Text like the reproductions' prompts, so that the small BPE cuts them into a modest number of tokens."""
    from tinyzero_trl.data.countdown import R1_SYSTEM, R1_USER, TINYZERO_BASE
    from tinyzero_trl.data.math import BOXED_INSTRUCTION
    from tinyzero_trl.data.multimodal import COUNT_INSTRUCTION

    countdown = [TINYZERO_BASE.format(numbers=[44, 19, 35], target=98), R1_SYSTEM,
                 R1_USER.format(numbers=[15, 9, 25, 51], target=94)]
    math = ["A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
            "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags.",
            "Solve the following math problem efficiently and clearly. Think step by step before answering. "
            "Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct" + BOXED_INSTRUCTION,
            "What is $\\frac{14}{3} + 2^{10}$? Express your answer as a common fraction. $x = \\sqrt{3}$"]
    vision = ["How many different items are there in the image?" + COUNT_INSTRUCTION, "0123456789 +-*/()=[],.",
              "system user assistant"]
    return (countdown + math + vision) * 8


def build_tokenizer(prof: ModelProfile, *, vocab_size: int | None = None):
    """A ``Qwen2Tokenizer`` with ``prof``'s template, added tokens and bos/eos/pad over a small byte-level BPE.

    ``vocab_size``: pad the ordinary vocabulary with filler entries so the added tokens start at the real id
    (151643) and the whole tokenizer has this many tokens (the GPU check's full-size model).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(_corpus(), trainer=trainers.BpeTrainer(
        vocab_size=BPE_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    vocab, merges = dict(model["vocab"]), [tuple(m) for m in model["merges"]]
    if vocab_size is not None:  # printable fillers: any sampled id decodes to some text
        vocab.update({f"<|filler_{i}|>": i for i in range(len(vocab), FIRST_ADDED_ID)})
    first = prof.added[0][0]  # the eos/pad of Qwen's tokenizers is their first added token
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token=first,
                         pad_token=first)
    tok.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in prof.added[1:]])
    if vocab_size is not None and len(tok) < vocab_size:
        tok.add_tokens([f"<|padding_{i}|>" for i in range(vocab_size - len(tok))])
    tok.add_special_tokens({"eos_token": prof.eos, "pad_token": prof.pad,
                            **({"bos_token": prof.bos} if prof.bos else {})})
    tok.chat_template = chat_template(prof)
    tok.model_max_length = prof.model_max_length
    return tok


def _ids(tok, names) -> list[int]:
    return [tok.convert_tokens_to_ids(n) for n in names]


def _text_config(prof: ModelProfile, tok, shape: dict) -> dict:
    traits = {k: v for k, v in prof.traits.items() if k in ("max_position_embeddings", "rms_norm_eps",
                                                             "tie_word_embeddings", "max_window_layers")}
    bos = tok.convert_tokens_to_ids(prof.bos) if prof.bos else tok.convert_tokens_to_ids(prof.added[0][0])
    return {**shape, **traits, "vocab_size": len(tok), "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id, "bos_token_id": bos}


def _generation_config(prof: ModelProfile, tok):
    from transformers import GenerationConfig

    eos = _ids(tok, prof.generation_eos)
    return GenerationConfig(eos_token_id=eos[0] if len(eos) == 1 else eos, pad_token_id=tok.pad_token_id,
                            bos_token_id=tok.bos_token_id, **prof.generation)


def _qwen2(prof: ModelProfile, tok, shape: dict):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**_text_config(prof, tok, shape), rope_parameters={
        "rope_type": "default", "rope_theta": prof.traits["rope_theta"]})
    return Qwen2ForCausalLM(config), None


def _qwen2_vl(prof: ModelProfile, tok, shape: dict, vision: dict):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    from tinyzero_trl.model.vlm import qwen2_vl_video_processor

    traits = prof.traits
    half = shape["hidden_size"] // shape["num_attention_heads"] // 2  # M-RoPE splits each head's rotary half
    ratio = traits["mrope_ratio"]
    section = [half * r // sum(ratio) for r in ratio]
    section[0] += half - sum(section)
    text = {**_text_config(prof, tok, shape),
            "rope_parameters": {"rope_type": "default", "rope_theta": traits["rope_theta"], "mrope_section": section}}
    vision = {**vision, "hidden_size": shape["hidden_size"], "mlp_ratio": traits["vision_mlp_ratio"],
              "hidden_act": traits["vision_hidden_act"], "patch_size": 14, "spatial_merge_size": 2,
              "temporal_patch_size": 2}
    image_pad, video_pad, start, end = _ids(tok, ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                   "<|vision_end|>"])
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=image_pad, video_token_id=video_pad,
                           vision_start_token_id=start, vision_end_token_id=end,
                           tie_word_embeddings=traits["tie_word_embeddings"])
    images = Qwen2VLImageProcessorPil(min_pixels=traits["min_pixels"], max_pixels=traits["max_pixels"], patch_size=14,
                                      merge_size=2, temporal_patch_size=2, image_mean=list(traits["image_mean"]),
                                      image_std=list(traits["image_std"]))
    processor = Qwen2VLProcessor(image_processor=images, tokenizer=tok, video_processor=qwen2_vl_video_processor(),
                                 chat_template=tok.chat_template)
    return Qwen2VLForConditionalGeneration(config), processor


def build_recipe(hub_id: str, *, full_size: bool = False, seed: int = 0) -> dict:
    """What a build is made from (its hash names a complete build): the profile, the shape, the version."""
    prof = profile(hub_id)
    if full_size and not prof.shape:
        raise ValueError(f"{hub_id}: its real shape was not read (rehearsal_models.PROFILES); no full-size build")
    shape = dict(prof.shape) if full_size else dict(TINY)
    return {"version": VERSION, "hub_id": hub_id, "full_size": full_size, "seed": seed, "shape": shape,
            "template_sha256": hashlib.sha256(chat_template(prof).encode()).hexdigest(),
            "profile": repr(prof)}


def build_rehearsal_model(hub_id: str, out: str | Path, *, full_size: bool = False, seed: int = 0,
                          device: str = "cpu") -> Path:
    """Write the stand-in of ``hub_id`` to ``out`` (kept when ``out`` already holds this very build).

    ``device``: where the weights are drawn (``cuda`` makes a full-size model in seconds, a CPU in minutes).
    """
    import torch

    out = Path(out)
    recipe = build_recipe(hub_id, full_size=full_size, seed=seed)
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    done = out / BUILD_FILE
    if done.is_file() and json.loads(done.read_text()).get("recipe_hash") == digest:
        return out
    prof = profile(hub_id)
    tok = build_tokenizer(prof, vocab_size=REAL_VOCAB if full_size else None)
    shape = {k: v for k, v in recipe["shape"].items() if k != "initializer_range"}
    if not full_size:
        shape["initializer_range"] = TINY["initializer_range"]
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16 if full_size else torch.float32)  # drawn in the dtype it is saved in
    try:
        with torch.device(device):
            if prof.arch == "qwen2-vl":
                model, processor = _qwen2_vl(prof, tok, shape, TINY_VISION)
            else:
                model, processor = _qwen2(prof, tok, shape)
    finally:
        torch.set_default_dtype(default)
    model.generation_config = _generation_config(prof, tok)
    model.save_pretrained(out)
    (processor or tok).save_pretrained(out)
    done.write_text(json.dumps({"recipe_hash": digest, "recipe": recipe, "stands_in_for": hub_id,
                                "parameters": sum(p.numel() for p in model.parameters())}, indent=2) + "\n")
    return out
