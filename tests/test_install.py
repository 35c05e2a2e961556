"""The vLLM-on-CPU environment (requirements-vllm-cpu.txt) stays the main stack plus vLLM, minus what breaks it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = {"torchvision", "torchaudio", "torchcodec", "triton"}  # see the file's header for why
DIFFERENT = {"numpy", "torch"}  # numpy < 2.4 for mistral_common; torch is the +cpu build


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_vllm_cpu_lock_is_the_main_stack_plus_vllm():
    main, lock = pins(ROOT / "constraints.txt"), pins(ROOT / "requirements-vllm-cpu.txt")
    assert lock["vllm-cpu"] == "0.31.0" and lock["torch"] == "2.13.0+cpu" and lock["numpy"].startswith("2.3.")
    assert not LEFT_OUT & set(lock), LEFT_OUT & set(lock)
    missing = set(main) - set(lock)
    assert not missing, f"constraints.txt pins {sorted(missing)}, requirements-vllm-cpu.txt does not"
    drift = {k: (main[k], lock[k]) for k in set(main) - DIFFERENT if main[k] != lock[k]}
    assert not drift, f"pins differ (constraints.txt, requirements-vllm-cpu.txt): {drift}"


def test_vllm_cpu_is_the_vllm_the_cuda_image_pins():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'vllm = ["vllm==0.31.0"]' in pyproject
    assert pins(ROOT / "requirements-vllm-cpu.txt")["vllm-cpu"] == "0.31.0"
