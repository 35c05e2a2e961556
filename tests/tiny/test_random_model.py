"""Random tiny models built offline: they load through the Auto classes and run forward/generate (with images)."""

from __future__ import annotations

import pytest
import torch

from tinyzero_trl.model.vlm import load_processor, set_pixel_limits, torchvision_available
from tinyzero_trl.tiny.random_model import ARCHS, build_tiny_model


@pytest.fixture(scope="module")
def tiny_vl(tmp_path_factory) -> str:
    return str(build_tiny_model("qwen2-vl", tmp_path_factory.mktemp("tiny-qwen2-vl")))


def image(color="red", size=56):
    from PIL import Image

    return Image.new("RGB", (size, size), color)


def conversation(question="How many objects are there?", img=None):
    return [{"role": "user", "content": [{"type": "image", "image": img or image()},
                                         {"type": "text", "text": question}]}]


def test_archs_and_unknown_arch(tmp_path):
    assert set(ARCHS) == {"qwen2", "qwen2-vl"}
    with pytest.raises(ValueError, match="qwen2-vl"):
        build_tiny_model("llama", tmp_path)


def test_qwen2_loads_with_auto_classes(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    ids = tok.apply_chat_template([{"role": "user", "content": "1 + 2"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    logits = model(**ids).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()


def test_qwen2_vl_loads_with_auto_classes(tiny_vl):
    from transformers import AutoConfig, AutoModelForImageTextToText

    assert AutoConfig.from_pretrained(tiny_vl).model_type == "qwen2_vl"
    model = AutoModelForImageTextToText.from_pretrained(tiny_vl)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    processor = load_processor(tiny_vl)
    assert type(processor).__name__ == "Qwen2VLProcessor"
    assert processor.chat_template and processor.tokenizer.eos_token == "<|im_end|>"
    # TRL's architecture inference: config.architectures names the class it instantiates.
    assert AutoConfig.from_pretrained(tiny_vl).architectures == ["Qwen2VLForConditionalGeneration"]


@pytest.mark.skipif(not torchvision_available(), reason="AutoProcessor needs torchvision for Qwen2-VL here")
def test_qwen2_vl_loads_with_auto_processor(tiny_vl):
    from transformers import AutoProcessor

    assert type(AutoProcessor.from_pretrained(tiny_vl)).__name__ == "Qwen2VLProcessor"


def test_image_only_processor_refuses_videos(tiny_vl):
    if torchvision_available():
        pytest.skip("the real video processor is used where torchvision exists")
    with pytest.raises(NotImplementedError, match="torchvision"):
        load_processor(tiny_vl).video_processor(videos=[])


def test_forward_and_generate_with_an_image(tiny_vl):
    from transformers import AutoModelForImageTextToText

    processor = load_processor(tiny_vl)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vl).eval()
    batch = [conversation(), conversation("How many red objects are there?", image("blue"))]
    processor.tokenizer.padding_side = "left"
    enc = processor.apply_chat_template(batch, add_generation_prompt=True, tokenize=True, return_dict=True,
                                        return_tensors="pt", processor_kwargs={"padding": True})
    # 56x56 pixels = 4x4 patches of 14, merged 2x2: 4 image tokens per image.
    assert enc["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 4]]
    assert (enc["input_ids"] == model.config.image_token_id).sum(dim=1).tolist() == [4, 4]
    out = model(**enc)
    assert out.logits.shape[:2] == enc["input_ids"].shape and torch.isfinite(out.logits).all()
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=3, do_sample=False)
    assert gen.shape == (2, enc["input_ids"].shape[1] + 3)
    # The image reaches the model: a different picture changes the next-token distribution.
    other = processor.apply_chat_template([conversation(img=image("green"))], add_generation_prompt=True,
                                          tokenize=True, return_dict=True, return_tensors="pt")
    first = processor.apply_chat_template([conversation()], add_generation_prompt=True, tokenize=True,
                                          return_dict=True, return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(model(**first).logits[0, -1], model(**other).logits[0, -1])


def test_pixel_limits_change_the_image_grid(tiny_vl):
    processor = load_processor(tiny_vl)
    big = image(size=224)
    assert processor.image_processor(images=[big], return_tensors="pt")["image_grid_thw"].tolist() == [[1, 4, 4]]
    set_pixel_limits(processor, min_pixels=3136, max_pixels=401408)
    assert processor.image_processor(images=[big], return_tensors="pt")["image_grid_thw"].tolist() == [[1, 16, 16]]


def test_saved_processor_round_trips(tiny_vl, tmp_path):
    processor = load_processor(tiny_vl)
    processor.save_pretrained(tmp_path)
    again = load_processor(str(tmp_path))
    assert again.image_processor.size == processor.image_processor.size
    assert again.chat_template == processor.chat_template


def test_a_place_it_cannot_write_is_named(tmp_path):
    from tinyzero_trl.errors import RunDirError

    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunDirError, match="--out=.*a-file/model: cannot write there"):
        build_tiny_model("qwen2", tmp_path / "a-file" / "model")
