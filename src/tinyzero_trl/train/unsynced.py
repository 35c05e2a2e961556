"""A rehearsal's vLLM server mode on CPU: the server generates every step, and the trainer's weights are not sent.

trl 1.16 sends the trainer's weights to a vLLM server over NCCL only (``VLLMClient.init_communicator`` refuses a
device that is not CUDA: "Weight synchronization runs on vLLM's NCCL weight-transfer engine, which needs a CUDA
device ... Generation through the server is unaffected"). A rehearsal of a server-mode reproduction on CPU
(``reproduce NAME --rehearse`` in the vLLM environment) therefore starts the server as a GPU run does, generates
through trl's own client every step, and skips exactly that one thing: opening the NCCL group and pushing the
weights (the prefix cache is still reset after each step, as after a sync). The rehearsal lists it among its
replacements. Only the training processes of such a rehearsal call ``skip_server_weight_sync``
(``$TINYZERO_REHEARSAL_UNSYNCED_SERVER``, set by the rehearsal's launch and nothing else), never a real run.
"""

from __future__ import annotations

import os

UNSYNCED_ENV = "TINYZERO_REHEARSAL_UNSYNCED_SERVER"


def wanted(args) -> bool:
    """Whether this training process is a CPU rehearsal of server mode (its launch set the variable)."""
    return bool(args.use_vllm and args.vllm_mode == "server" and os.environ.get(UNSYNCED_ENV) == "1")


def skip_server_weight_sync() -> None:
    """Make trl's server mode generate without the NCCL weight sync (see the module docstring)."""
    from trl.generation import vllm_client, vllm_generation

    def init_communicator(self, device=0):
        """No NCCL group: the server keeps the weights it loaded."""
        print("[tinyzero-trl] rehearsal: the vLLM server is not sent the trainer's weights (trl syncs over NCCL "
              "only, which needs CUDA)", flush=True)

    sync = vllm_generation.VLLMGeneration.sync_weights

    def sync_weights(self):
        if self.mode != "server":
            return sync(self)
        if self.accelerator.is_main_process:  # what follows a sync; every rank skips the gathers alike
            self.vllm_client.reset_prefix_cache()
        return None

    vllm_client.VLLMClient.init_communicator = init_communicator
    vllm_generation.VLLMGeneration.sync_weights = sync_weights
