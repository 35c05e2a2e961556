"""Vision-language helpers: load a Qwen2-VL-style processor anywhere, and generate from image prompts.

transformers 5.17 builds every Qwen2-VL processor with a video processor, and its video processors need
torchvision. The CPU stack (torch 2.13 CPU wheel) has no usable torchvision, so ``AutoProcessor`` fails there
even for image-only work. ``load_processor`` falls back to the same processor class with an image-only stand-in
for the video part; where torchvision is installed (the CUDA image) it is plain ``AutoProcessor``.
"""

from __future__ import annotations

import json
from pathlib import Path

import transformers

# What a saved stand-in says it is, so a machine with torchvision loads the real Qwen2-VL video processor.
_VIDEO_DEFAULTS = {"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": 14, "temporal_patch_size": 2,
                   "merge_size": 2}


def torchvision_available() -> bool:
    """Whether transformers can use torchvision (and so build real video processors)."""
    from transformers.utils import is_torchvision_available

    return bool(is_torchvision_available())


def qwen2_vl_video_processor():
    """Qwen2-VL's video processor where torchvision is installed, else ``image_only_video_processor()``."""
    if torchvision_available():
        return transformers.Qwen2VLVideoProcessor(**{k: v for k, v in _VIDEO_DEFAULTS.items() if "type" not in k})
    return image_only_video_processor()


def image_only_video_processor():
    """A stand-in for the video processor of an image-only run; it refuses videos.

    It subclasses whatever ``transformers.BaseVideoProcessor`` is (a dummy class without torchvision) because
    processors check their parts with ``isinstance`` against exactly that name, and ``PushToHubMixin`` because
    that is how a processor decides to serialize a part with ``to_dict``.
    """
    from transformers.utils import PushToHubMixin

    base = transformers.BaseVideoProcessor

    class ImageOnlyVideoProcessor(base, PushToHubMixin):
        _auto_class = None

        def __init__(self):  # the dummy base's __init__ would raise for the missing torchvision
            self.video_processor_type = _VIDEO_DEFAULTS["video_processor_type"]

        def __call__(self, *args, **kwargs):
            raise NotImplementedError("videos need torchvision; this processor was loaded for images only")

        def to_dict(self) -> dict:
            return dict(_VIDEO_DEFAULTS)

        def save_pretrained(self, *args, **kwargs):
            return []

    return ImageOnlyVideoProcessor()


def load_processor(name_or_path: str, **kwargs):
    """``AutoProcessor.from_pretrained``, or the same processor with an image-only video part (no torchvision).

    Without torchvision, ``AutoImageProcessor`` is a placeholder too, so the image processor is loaded by the
    class name the checkpoint declares (Qwen2-VL's resolves to its PIL implementation).
    """
    from transformers import AutoProcessor, AutoTokenizer

    if torchvision_available():
        return AutoProcessor.from_pretrained(name_or_path, **kwargs)
    saved = _saved_processor_config(name_or_path, revision=kwargs.get("revision"))
    cls = getattr(transformers, saved.get("processor_class") or "", None)
    image_type = (saved.get("image_processor") or saved).get("image_processor_type") or ""
    # Without torchvision the plain name only warns and falls back to its PIL twin: ask for that directly.
    image_cls = getattr(transformers, image_type + "Pil", None) or getattr(transformers, image_type, None)
    if cls is None or image_cls is None or "video_processor" not in cls.get_attributes():
        return AutoProcessor.from_pretrained(name_or_path, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    image_processor = image_cls.from_pretrained(name_or_path, **kwargs)
    return cls(image_processor=image_processor, tokenizer=tokenizer, video_processor=image_only_video_processor(),
               chat_template=tokenizer.chat_template)


def _saved_processor_config(name_or_path: str, revision: str | None = None) -> dict:
    """The first processor config file found (local directory or hub cache) that names a processor class."""
    from transformers.utils import cached_file

    for filename in ("processor_config.json", "preprocessor_config.json"):
        try:
            path = cached_file(name_or_path, filename, revision=revision,
                               _raise_exceptions_for_missing_entries=False)
        except OSError:
            path = None
        if path and Path(path).is_file():
            config = json.loads(Path(path).read_text())
            if config.get("processor_class"):
                return config
    return {}


def set_pixel_limits(processor, *, min_pixels: int | None = None, max_pixels: int | None = None) -> None:
    """Bound the pixels of each image after resizing (Qwen2-VL's ``min_pixels``/``max_pixels``), in place.

    Qwen2-VL processors keep the bounds as ``size.shortest_edge``/``size.longest_edge`` (in pixels, despite the
    names); R1-V set them on its processor the same way. A processor without an image processor is left alone.
    """
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None)
    if size is None:
        return
    for key, value in (("shortest_edge", min_pixels), ("longest_edge", max_pixels)):
        if value is None:
            continue
        if isinstance(size, dict):
            size[key] = int(value)
        else:
            setattr(size, key, int(value))
    for key, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
        if value is not None and hasattr(image_processor, key):
            setattr(image_processor, key, int(value))
