"""Build the ``accelerate launch`` command for a training run: packaged configs by name, processes, nodes, vLLM.

Every training path (``tinyzero-trl train``, ``reproduce``, the Docker entrypoint, the Slurm script) goes
through ``LaunchPlan`` so that a dry run prints exactly what would be executed; ``run_plan`` executes it.

On a machine without CUDA the same packaged configs run on CPU (gloo). What that takes, found by running them
(accelerate 1.15, deepspeed 0.19.8):

- never ``--cpu`` together with a config file: accelerate then ignores the config's distributed type and starts
  a single process; the config's launcher (torchrun / deepspeed) must start the processes;
- ``training.use_cpu=true``: transformers then builds a gloo ``MULTI_CPU`` process group. Without it accelerate
  finds no backend on a GPU-less machine and every DeepSpeed rank believes it is alone (world size 1);
- ``DS_ACCELERATOR=cpu``: DeepSpeed's CPU accelerator, which falls back to gloo when oneCCL is not installed
  (auto-detection lands there too, after a warning); ZeRO-3 with ``zero3_init_flag: true`` works as is;
- ``--mixed_precision no``: fp32, as the CPU smoke profile trains.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent / "accelerate_configs"
DEFAULT_VLLM_PORT = 8000


def accelerate_configs() -> list[str]:
    """Names of the packaged accelerate configs (``ddp``, ``zero1`` ...)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_accelerate_config(name_or_path: str) -> Path:
    """A packaged config by name, or a user's file by path; a clear error otherwise."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    packaged = CONFIG_DIR / f"{name_or_path}.yaml"
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(
        f"--accelerate {name_or_path!r}: neither a file nor a packaged config; packaged: {', '.join(accelerate_configs())}"
    )


def read_accelerate_config(name_or_path: str | None) -> dict:
    """The accelerate config as a mapping (``{}`` for none: accelerate's defaults)."""
    if not name_or_path:
        return {}
    return yaml.safe_load(resolve_accelerate_config(name_or_path).read_text()) or {}


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
        cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", self.model,
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


def vllm_server_for(resolved: dict, gpus: list[str], port: int = DEFAULT_VLLM_PORT) -> VLLMServer:
    """The server for a composed run config: same model, revision and dtype as the trainer loads."""
    model, training = resolved.get("model") or {}, resolved.get("training") or {}
    dtype = model.get("dtype") or "auto"
    return VLLMServer(model=model["name_or_path"], gpus=list(gpus), port=port,
                      dtype="auto" if dtype == "auto" else dtype, revision=model.get("revision"),
                      max_model_len=training.get("vllm_max_model_length"),
                      trust_remote_code=bool(model.get("trust_remote_code")))


def wants_vllm_server(resolved: dict) -> bool:
    """Whether the run generates with a separate vLLM server (``use_vllm`` and ``vllm_mode: server``)."""
    training = resolved.get("training") or {}
    return bool(training.get("use_vllm")) and training.get("vllm_mode", "colocate") == "server"


@dataclass
class LaunchPlan:
    """What to run: the accelerate options, the Hydra overrides for ``grpo.py``, and an optional vLLM server."""

    overrides: list[str]
    accelerate: str | None = None
    num_processes: int = 1
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    cpu: bool | None = None  # None: decide from torch.cuda.is_available()
    env: dict = field(default_factory=dict)  # extra environment of the launch (CPU settings are added here)
    gpus: list[str] | None = None  # CUDA_VISIBLE_DEVICES of the trainer; None: all
    vllm_server: VLLMServer | None = None  # started here, before the trainer, stopped after it
    vllm_server_url: str | None = None  # a server started elsewhere (another node)

    def __post_init__(self):
        if self._use_cpu():
            self.env.setdefault("DS_ACCELERATOR", "cpu")
        if self.gpus is not None:
            self.env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)

    def command(self) -> list[str]:
        """The argv of the launch: ``python -m accelerate.commands.launch [...] grpo.py OVERRIDES``."""
        cmd = [sys.executable, "-m", "accelerate.commands.launch"]
        if self.accelerate:
            cmd += ["--config_file", str(resolve_accelerate_config(self.accelerate))]
        cmd += ["--num_processes", str(self.num_processes), "--num_machines", str(self.num_machines)]
        if self.num_machines > 1:
            if not self.main_process_ip:
                raise ValueError("--num-machines > 1 needs --main-process-ip (the address of machine rank 0)")
            if self.num_processes % self.num_machines:
                raise ValueError(f"--num-processes {self.num_processes} is not a multiple of --num-machines "
                                 f"{self.num_machines} (accelerate starts num_processes / num_machines per machine)")
            cmd += ["--machine_rank", str(self.machine_rank), "--main_process_ip", self.main_process_ip]
        if self.main_process_port:
            cmd += ["--main_process_port", str(self.main_process_port)]
        overrides = list(self.overrides)
        if self._use_cpu():
            if read_accelerate_config(self.accelerate).get("distributed_type") == "FSDP":
                # accelerate turns FSDP on only for GPU-type process groups: on gloo it would silently train DDP.
                raise ValueError(f"--accelerate {self.accelerate}: FSDP needs GPUs (on CPU accelerate would quietly "
                                 "run DDP instead); on CPU use ddp, zero2 or zero3")
            cmd += ["--mixed_precision", "no"]
            # --cpu would override the config's launcher with a single process; multi-process CPU runs go
            # through torchrun (--multi_gpu) and get gloo from training.use_cpu (see the module docstring).
            if self.accelerate is None:
                cmd += ["--multi_gpu"] if self.num_processes > 1 or self.num_machines > 1 else ["--cpu"]
            overrides.append("++training.use_cpu=true")
        elif self.accelerate is None and (self.num_processes > 1 or self.num_machines > 1):
            cmd += ["--multi_gpu"]
        url = self.server_url()
        if url:
            overrides.append(f"++training.vllm_server_base_url={url}")
        return cmd + [str(Path(__file__).parent / "grpo.py"), *overrides]

    def server_url(self) -> str | None:
        """Where the trainer finds vLLM: the server started here (loopback) or the one given."""
        if self.vllm_server is not None:
            return f"http://127.0.0.1:{self.vllm_server.port}"
        return self.vllm_server_url

    def _use_cpu(self) -> bool:
        if self.cpu is not None:
            return self.cpu
        import torch

        return not torch.cuda.is_available()

    def shell(self) -> str:
        """The trainer command as one shell line, for dry runs and logs."""
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.command())


def split_gpus(num_processes: int, vllm_gpus: int, visible: str | None = None) -> tuple[list[str], list[str]]:
    """Trainer GPUs first, vLLM's last: ``(train_ids, vllm_ids)`` out of ``visible`` (CUDA_VISIBLE_DEVICES)."""
    ids = [g for g in (visible or "").split(",") if g.strip()] or [str(i) for i in range(num_processes + vllm_gpus)]
    if len(ids) < num_processes + vllm_gpus:
        raise ValueError(f"{num_processes} training + {vllm_gpus} vLLM GPUs requested, {len(ids)} visible ({ids})")
    return ids[:num_processes], ids[num_processes:num_processes + vllm_gpus]


def add_vllm_server(plan: LaunchPlan, resolved: dict, vllm_gpus: int, port: int = DEFAULT_VLLM_PORT) -> LaunchPlan:
    """Set aside the last ``vllm_gpus`` GPUs of this machine for a ``vllm serve`` the plan starts first."""
    if vllm_gpus <= 0:
        return plan
    if not wants_vllm_server(resolved):
        raise ValueError("--vllm-gpus needs a recipe with training.use_vllm=true and training.vllm_mode=server")
    if plan.num_machines > 1:
        raise ValueError("--vllm-gpus starts the server on this machine; on several machines run it on its own "
                         "node (--vllm-server-only) and pass --vllm-server-url to the trainers")
    train_ids, vllm_ids = split_gpus(plan.num_processes, vllm_gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
    plan.gpus = train_ids
    plan.env["CUDA_VISIBLE_DEVICES"] = ",".join(train_ids)
    plan.vllm_server = vllm_server_for(resolved, vllm_ids, port)
    return plan


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


def _stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM the process group (vLLM forks workers), then SIGKILL what is left after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def run_plan(plan: LaunchPlan, *, server_timeout: float = 1800.0) -> int:
    """Execute the plan: start the vLLM server if any, wait until healthy, train, stop the server."""
    server = None
    try:
        if plan.vllm_server is not None:
            print("[tinyzero-trl] vLLM server: " + plan.vllm_server.shell(), flush=True)
            server = subprocess.Popen(plan.vllm_server.command(), env={**os.environ, **plan.vllm_server.env()},
                                      start_new_session=True)
            wait_for_server(plan.server_url(), server, timeout=server_timeout)
        print("[tinyzero-trl] " + plan.shell(), flush=True)
        return subprocess.call(plan.command(), env={**os.environ, **plan.env})
    finally:
        if server is not None:
            _stop(server)


def serve_only(server: VLLMServer) -> int:
    """Run just the vLLM server in the foreground (the dedicated vLLM node of a multi-node run)."""
    print("[tinyzero-trl] vLLM server: " + server.shell(), flush=True)
    return subprocess.call(server.command(), env={**os.environ, **server.env()})
