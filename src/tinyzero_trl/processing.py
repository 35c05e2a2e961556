"""The tokenizer or processor of a model, loaded one way for training and for evaluation."""

from __future__ import annotations


def load_processing_class(name_or_path: str, task: str, *, revision: str | None = None,
                          trust_remote_code: bool = False):
    """The tokenizer (text tasks) or processor (multimodal) of a model, with a pad token GRPO can batch with.

    Training and evaluation both load through here, so a pinned ``revision`` (and ``trust_remote_code``) means
    the same files for the base-model evaluation as for the trainer.
    """
    from transformers import AutoTokenizer

    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    if task == "multimodal":  # AutoProcessor, or an image-only processor where torchvision is missing
        from tinyzero_trl.vlm import load_processor

        processor = load_processor(name_or_path, **kwargs)
        tokenizer = processor.tokenizer
    else:
        processor = tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return processor
