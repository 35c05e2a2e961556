"""``tiny-base --check`` (tiny/rebuild_check.py): a rebuild held against the packaged build, and what it is told
when the bits differ."""

import json

from tinyzero_trl.tiny.rebuild_check import KERNEL_CAPS, compare_with_packaged


def _build_info(folder, **info):
    folder.mkdir()
    (folder / "build_info.json").write_text(json.dumps({"recipe_hash": "r", **info}))
    return folder


def test_a_rebuild_on_other_kernels_is_told_how_to_run_the_packaged_ones(tmp_path):
    """countdown-tiny's packaged base ran AVX2 kernels; rebuilt on an AVX-512 machine its weights differ, and
    the check says which kernels each ran and how to cap them (it said only "kernels differ between CPU types")."""
    shipped = _build_info(tmp_path / "shipped", weights_sha256="a", cpu_kernels="AVX2")
    same, lines = compare_with_packaged(_build_info(tmp_path / "here", weights_sha256="b", build_seconds=1,
                                                    cpu_kernels="AVX512"), shipped)
    assert not same
    assert "the packaged build ran torch's AVX2 CPU kernels and this one AVX512" in lines[-1]
    assert KERNEL_CAPS["AVX2"] in lines[-1]
    same, lines = compare_with_packaged(_build_info(tmp_path / "old", weights_sha256="b", build_seconds=1,
                                                    cpu_kernels="AVX512"), _build_info(tmp_path / "unrecorded",
                                                                                        weights_sha256="a"))
    assert "ran kernels it did not record, this one AVX512" in lines[-1] and "ATEN_CPU_CAPABILITY" not in lines[-1]
    same, lines = compare_with_packaged(_build_info(tmp_path / "same", weights_sha256="a", build_seconds=1,
                                                    cpu_kernels="AVX512"), shipped)
    assert same and lines[-1].endswith("identical")


def test_a_rebuild_is_the_packaged_build_only_if_every_file_is(tmp_path):
    """The weights alone are not the build: clevr-tiny's rebuild matched the packaged weights while its config.json
    did not (the packaged one had been re-saved), and the check said "identical"."""
    shipped = _build_info(tmp_path / "shipped", weights_sha256="a", build_seconds=9, cpu_kernels="AVX2")
    here = _build_info(tmp_path / "here", weights_sha256="a", build_seconds=1, cpu_kernels="AVX512")
    for folder in (shipped, here):
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "tokenizer.json").write_text('{"vocab": 1}')
    (shipped / "config.json").write_text('{"dtype": "float32"}')
    (here / "config.json").write_text("{}")
    same, lines = compare_with_packaged(here, shipped)
    assert not same and lines[1].endswith("identical")  # the weights do match
    assert "differ from the packaged build's: config.json (" in lines[-1] and "tokenizer.json" not in lines[-1]
    (here / "config.json").unlink()  # a file the rebuild does not write at all
    assert "config.json" in compare_with_packaged(here, shipped)[1][-1]
    (here / "config.json").write_text('{"dtype": "float32"}')
    assert compare_with_packaged(here, shipped) == (True, lines[:2])  # build_info.json may differ: times, kernels
