"""``tinyzero-trl tiny-base --check``: is a rebuild the packaged build, bit for bit, and if not, why not.

A build's ``build_info.json`` (``pretrain.save_build``) holds its recipe hash, its weights' sha256 and the CPU
kernels torch ran. Two builds of one recipe are bit-identical only when they ran the same kernels, so where the
recipes agree and the bits do not, the check names both builds' kernels and, where it is known, the environment
that makes this machine run the packaged build's.
"""

from __future__ import annotations

import json
from pathlib import Path

# The environment that caps torch's own kernels, MKL's and oneDNN's at one instruction set, for a rebuild on a newer
# CPU than the build's (a cap can only go down). AVX2: a rebuild on an AVX-512 machine so capped gave countdown-tiny's
# packaged sha256, which the same rebuild uncapped did not (reproductions/countdown-tiny/README.md).
KERNEL_CAPS = {"AVX2": "ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2"}


def compare_with_packaged(out_dir: Path, packaged_dir: Path) -> tuple[bool, list[str]]:
    """Whether a rebuild in ``out_dir`` is the packaged build, and the lines that say so: the weights bit for bit
    (their sha256), and every other file the build writes (config, generation config, tokenizer, processor) byte
    for byte. ``build_info.json`` alone may differ: it records how long each build took and on what."""
    out_dir, packaged_dir = Path(out_dir), Path(packaged_dir)
    built = json.loads((out_dir / "build_info.json").read_text())
    shipped_path = packaged_dir / "build_info.json"
    shipped = json.loads(shipped_path.read_text()) if shipped_path.is_file() else {}
    weights_same = built["weights_sha256"] == shipped.get("weights_sha256")
    lines = [f"{out_dir}: weights sha256 {built['weights_sha256']} ({built['build_seconds']} s)",
             f"packaged ({packaged_dir}): {shipped.get('weights_sha256', 'none')} -> "
             f"{'identical' if weights_same else 'DIFFERENT'}"]
    if not weights_same and shipped.get("recipe_hash") == built["recipe_hash"]:
        made, here = shipped.get("cpu_kernels"), built.get("cpu_kernels")
        if made and here and made != here and made in KERNEL_CAPS:
            lines.append(f"same recipe, different bits: the packaged build ran torch's {made} CPU kernels and this "
                         f"one {here}, which round differently. To run the packaged build's kernels here, rebuild "
                         f"with {KERNEL_CAPS[made]} set")
        else:
            lines.append("same recipe, different bits: float kernels differ between CPU types (the packaged build "
                         f"ran {made or 'kernels it did not record'}, this one {here}); see build_info.json")
    # Weights alone are not the build: a rebuild whose tokenizer or config differs would run differently.
    names = {p.name for p in out_dir.iterdir()} | {p.name for p in packaged_dir.iterdir()}
    differ = [name for name in sorted(names - {"build_info.json", "model.safetensors"})
              if not _same_bytes(out_dir / name, packaged_dir / name)]
    if differ:
        lines.append(f"files other than the weights that differ from the packaged build's: {', '.join(differ)} "
                     f"(diff each against {packaged_dir})")
    return weights_same and not differ, lines


def _same_bytes(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()
