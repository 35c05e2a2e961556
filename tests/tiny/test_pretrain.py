"""What every packaged tiny base shares (tiny_pretrain.py): a deterministic, cached build, and a packaged build
that must be the build of the current recipe."""

import json

import pytest

from tinyzero_trl.tiny import clevr_base as tiny_clevr_base
from tinyzero_trl.tiny import countdown_base as tiny_base
from tinyzero_trl.tiny import math_base as tiny_math_base
from tinyzero_trl.tiny.pretrain import (
    KERNEL_CAPS,
    base_module,
    compare_with_packaged,
    cpu_kernels,
    is_complete,
    recipe_hash,
    tiny_base_path,
)

BASES = {"countdown": tiny_base, "math": tiny_math_base, "clevr": tiny_clevr_base}


@pytest.fixture(params=sorted(BASES))
def small(request, monkeypatch):
    """A base module whose RECIPE is cut to two 2-step phases of a 1-layer model (both losses for countdown)."""
    module = BASES[request.param]
    phases = [{**phase, "steps": 2, "warmup": 1} for phase in module.RECIPE["phases"][:2]]
    recipe = {**module.RECIPE, "phases": phases, "batch_size": 4, "hidden_size": 16, "intermediate_size": 32,
              "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2}
    monkeypatch.setattr(module, "RECIPE", recipe)
    return module


def test_build_is_deterministic_cached_and_rebuilt_when_the_recipe_changes(tmp_path, small, monkeypatch):
    a = small.build_tiny_base(tmp_path / "a", progress=False)
    b = small.build_tiny_base(tmp_path / "b", progress=False)
    info_a = json.loads((a / "build_info.json").read_text())
    assert info_a["weights_sha256"] == json.loads((b / "build_info.json").read_text())["weights_sha256"]
    assert info_a["recipe_hash"] == recipe_hash(small.RECIPE)
    assert info_a["cpu_kernels"] == cpu_kernels()  # what a rebuild elsewhere is told it must match
    stamp = (a / "model.safetensors").stat().st_mtime_ns
    assert small.build_tiny_base(a, progress=False) == a
    assert (a / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt
    monkeypatch.setitem(small.RECIPE, "weight_decay", 0.5)
    small.build_tiny_base(a, progress=False)
    assert json.loads((a / "build_info.json").read_text())["recipe_hash"] != info_a["recipe_hash"]


@pytest.mark.parametrize("task", sorted(BASES))
def test_packaged_base_is_the_build_of_the_current_recipe(task):
    # Changing RECIPE without rebuilding would silently train a stale model: rebuild it with
    # `tinyzero-trl tiny-base --task TASK --out src/tinyzero_trl/assets/NAME-tiny-base`.
    module = base_module(task)
    assert module is BASES[task]
    assert is_complete(module.PACKAGED_DIR, recipe_hash(module.RECIPE)), f"packaged {task} tiny base is stale"
    assert tiny_base_path(task, build=False) == module.PACKAGED_DIR
    info = json.loads((module.PACKAGED_DIR / "build_info.json").read_text())
    assert (module.PACKAGED_DIR / "model.safetensors").stat().st_size < 5_000_000
    assert info["recipe"] == module.RECIPE


@pytest.mark.parametrize("task", sorted(BASES))
def test_a_stale_packaged_base_is_not_used(task, monkeypatch, tmp_path):
    module = BASES[task]
    monkeypatch.setitem(module.RECIPE, "weight_decay", 0.5)
    monkeypatch.setenv("TINYZERO_CACHE", str(tmp_path))
    assert tiny_base_path(task, build=False) == tmp_path / module.PACKAGED_DIR.name


def test_an_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="clevr, countdown, math"):
        base_module("chess")


@pytest.mark.parametrize("task", sorted(BASES))
def test_the_recipe_comment_states_the_packaged_parameter_count(task):
    """The size a reader is told (RECIPE's comment) is the size that ships (issue 15: it said ~0.5M)."""
    import inspect

    module = base_module(task)
    info = json.loads((module.PACKAGED_DIR / "build_info.json").read_text())
    assert f"{info['num_parameters']:,} parameters" in inspect.getsource(module)


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
