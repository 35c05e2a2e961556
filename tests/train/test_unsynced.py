"""The rehearsal's server mode on CPU: trl's NCCL weight sync is skipped there, and only there."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tinyzero_trl.train import unsynced


def args(mode="server", use_vllm=True):
    return SimpleNamespace(use_vllm=use_vllm, vllm_mode=mode)


def test_only_a_rehearsal_launch_of_server_mode_asks_for_it(monkeypatch):
    monkeypatch.delenv(unsynced.UNSYNCED_ENV, raising=False)
    assert not unsynced.wanted(args())  # a real run: trl's sync as it is
    monkeypatch.setenv(unsynced.UNSYNCED_ENV, "1")
    assert unsynced.wanted(args())
    assert not unsynced.wanted(args(mode="colocate")) and not unsynced.wanted(args(use_vllm=False))


def test_the_sync_is_skipped_and_the_prefix_cache_still_reset(monkeypatch):
    from trl.generation import vllm_client, vllm_generation

    monkeypatch.setattr(vllm_client.VLLMClient, "init_communicator", vllm_client.VLLMClient.init_communicator)
    monkeypatch.setattr(vllm_generation.VLLMGeneration, "sync_weights", vllm_generation.VLLMGeneration.sync_weights)
    client = object.__new__(vllm_client.VLLMClient)
    client.get_server_info = lambda: {"weight_transfer_config": {"backend": "nccl"}}
    client.base_url, client.group_port = "http://127.0.0.1:1", 51216
    client.get_world_size = lambda: 1
    monkeypatch.setattr(vllm_client, "get_ip", lambda: "127.0.0.1", raising=False)
    with pytest.raises(NotImplementedError, match="needs a CUDA device"):  # trl as it is, on CPU
        client.init_communicator(device="cpu")
    unsynced.skip_server_weight_sync()
    client.init_communicator(device="cpu")  # no NCCL group, no error
    resets = []
    generation = object.__new__(vllm_generation.VLLMGeneration)
    generation.mode, generation.accelerator = "server", SimpleNamespace(is_main_process=True)
    generation.vllm_client = SimpleNamespace(reset_prefix_cache=lambda: resets.append(1),
                                             update_named_params=lambda *a: pytest.fail("weights were sent"))
    generation.sync_weights()
    assert resets == [1]
