"""What every packaged tiny base shares (tiny/pretrain.py): a deterministic, cached build, and a packaged build
that must be the build of the current recipe."""

import json

import pytest

from tinyzero_trl.tiny import clevr_base as tiny_clevr_base
from tinyzero_trl.tiny import countdown_base as tiny_base
from tinyzero_trl.tiny import math_base as tiny_math_base
from tinyzero_trl.tiny.pretrain import (
    base_module,
    cpu_kernels,
    is_complete,
    recipe_hash,
    tiny_base_path,
)
from tinyzero_trl.tiny.rebuild_check import compare_with_packaged

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
    # `tinyzero-trl tiny-base --task TASK --out src/tinyzero_trl/tiny/assets/NAME-tiny-base`.
    module = base_module(task)
    assert module is BASES[task]
    assert is_complete(module.PACKAGED_DIR, recipe_hash(module.RECIPE)), f"packaged {task} tiny base is stale"
    assert tiny_base_path(task, build=False) == module.PACKAGED_DIR
    info = json.loads((module.PACKAGED_DIR / "build_info.json").read_text())
    assert (module.PACKAGED_DIR / "model.safetensors").stat().st_size < 5_000_000
    assert info["recipe"] == module.RECIPE


@pytest.mark.parametrize("task", sorted(BASES))
def test_the_packaged_files_beside_the_weights_are_what_a_build_writes(task, tmp_path, monkeypatch):
    """``tiny-base --check`` holds every file of a rebuild against the packaged one, so the packaged config,
    generation config and tokenizer must be what a build writes today (three of them had been re-saved after a
    load or edited by hand). A build at full size with one step a phase writes them as the full build does: they
    hold the architecture and the tokens, no trained number."""
    module = BASES[task]
    phases = [{**phase, "steps": 1, "warmup": 1} for phase in module.RECIPE["phases"]]
    monkeypatch.setattr(module, "RECIPE", {**module.RECIPE, "phases": phases})
    _, lines = compare_with_packaged(module.build_tiny_base(tmp_path / task, progress=False), module.PACKAGED_DIR)
    assert "files other than the weights" not in lines[-1], lines[-1]


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


def test_a_failed_build_gives_torch_its_threads_and_kernels_back():
    """A build fixes threads and deterministic kernels; a test process, or a caller that catches the failure, gets
    its own back, even when the build raises."""
    import torch

    from tinyzero_trl.tiny.pretrain import deterministic

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="mid-build"), deterministic(threads=before + 1, seed=0):
        assert torch.get_num_threads() == before + 1 and torch.are_deterministic_algorithms_enabled()
        raise RuntimeError("mid-build")
    assert torch.get_num_threads() == before and not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("task", sorted(BASES))
def test_a_build_into_a_place_it_cannot_write_fails_before_it_trains(task, tmp_path, monkeypatch):
    """tiny-base --out /proc/x trained its 10-40 minutes, then failed saving; now it fails first, naming the place."""
    from tinyzero_trl.errors import RunDirError
    from tinyzero_trl.tiny import pretrain

    def no_training(*args, **kwargs):
        raise AssertionError("the build started training")

    monkeypatch.setattr(pretrain, "deterministic", no_training)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunDirError, match="tiny base directory=.*a-file/base: cannot write there"):
        BASES[task].build_tiny_base(tmp_path / "a-file" / "base")
