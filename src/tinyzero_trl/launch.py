"""Build the ``accelerate launch`` command for a training run: packaged configs by name, processes, nodes.

Every training path (``tinyzero-trl train``, ``reproduce``, the Docker entrypoint, the Slurm script) goes
through ``launch_command`` so that a dry run prints exactly what would be executed.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "accelerate_configs"


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


@dataclass
class LaunchPlan:
    """What to run: the accelerate options and the Hydra overrides for ``grpo.py``."""

    overrides: list[str]
    accelerate: str | None = None
    num_processes: int = 1
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    cpu: bool | None = None  # None: decide from torch.cuda.is_available()
    env: dict = field(default_factory=dict)

    def command(self) -> list[str]:
        """The argv of the launch: ``python -m accelerate.commands.launch [...] grpo.py OVERRIDES``."""
        cmd = [sys.executable, "-m", "accelerate.commands.launch"]
        if self.accelerate:
            cmd += ["--config_file", str(resolve_accelerate_config(self.accelerate))]
        cmd += ["--num_processes", str(self.num_processes), "--num_machines", str(self.num_machines)]
        if self.num_machines > 1:
            if not self.main_process_ip:
                raise ValueError("--num-machines > 1 needs --main-process-ip (the address of machine rank 0)")
            cmd += ["--machine_rank", str(self.machine_rank), "--main_process_ip", self.main_process_ip]
        if self.main_process_port:
            cmd += ["--main_process_port", str(self.main_process_port)]
        if self._use_cpu():
            # No GPU: bf16 autocast and NCCL are unavailable; gloo and fp32 run the same code path.
            cmd += ["--mixed_precision", "no"]
            if not self.accelerate or "zero" not in Path(self.accelerate).stem:
                cmd += ["--cpu"]
            if self.num_processes > 1 and not self.accelerate:
                cmd += ["--multi_gpu"]
        elif self.num_processes > 1 and not self.accelerate:
            cmd += ["--multi_gpu"]
        cmd += [str(Path(__file__).parent / "grpo.py"), *self.overrides]
        return cmd

    def _use_cpu(self) -> bool:
        if self.cpu is not None:
            return self.cpu
        import torch

        return not torch.cuda.is_available()

    def shell(self) -> str:
        """The command as one shell line, for dry runs and logs."""
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.command())
