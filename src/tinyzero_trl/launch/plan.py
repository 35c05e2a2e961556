"""From overrides to a launch plan: compose, check once, and say what ``accelerate launch`` will run.

``prepare`` composes the recipe and overrides, checks them into one ``RunConfig`` (counting the processes the
plan will start, so that trl's batch checks see them) and builds the ``LaunchPlan``: the ``accelerate launch`` of
``grpo.py --run RUN_DIR`` on every rank, which reads back the config the launcher checked and wrote. What it
returns, ``Prepared``, is plain data: the run directory, the launch's argv and shell line, and the dry run's text
(``render``), each worked out once here; ``launch.run`` carries it out reading those fields.

On a machine without CUDA the same packaged configs run on CPU (gloo). What that takes, found by running them
(accelerate 1.15, deepspeed 0.19.8):

- never ``--cpu`` together with a config file: accelerate then ignores the config's distributed type and starts
  a single process; the config's launcher (torchrun / deepspeed) must start the processes;
- ``training.use_cpu=true``: transformers then builds a gloo ``MULTI_CPU`` process group. Without it accelerate
  finds no backend on a GPU-less machine and every DeepSpeed rank believes it is alone (world size 1);
- ``DS_ACCELERATOR=cpu``: DeepSpeed's CPU accelerator, which falls back to gloo when oneCCL is not installed
  (auto-detection lands there too, after a warning); ZeRO-3 with ``zero3_init_flag: true`` works as is;
- ``--mixed_precision no``: fp32, as the CPU smoke profile trains;
- FSDP is turned on by accelerate only for GPU process groups: on gloo it would quietly train DDP, so it is refused.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tinyzero_trl.config.compose import resolve
from tinyzero_trl.config.schema import RunConfig
from tinyzero_trl.errors import UserError
from tinyzero_trl.launch.vllm_server import DEFAULT_VLLM_PORT, VLLMServer, split_gpus, vllm_server_for
from tinyzero_trl.run.claim import CONFIG_FILE

# How long the machines of a multi-machine launch wait for each other to join (torch's static rendezvous, which
# accelerate's launcher uses: machine rank 0 hosts it, the others connect). A machine whose own launch failed never
# joins, and the others end after this many seconds with one line naming it. torch's default is 600 s, and it is
# ours: the other machines' preflight (model and data checks) runs before they join. Override with
# $TINYZERO_JOIN_WAIT (seconds); the launch passes it on as accelerate's --rdzv_conf timeout=N.
JOIN_WAIT_ENV = "TINYZERO_JOIN_WAIT"
JOIN_WAIT_SECONDS = 600
# What torch 2.13 says when the wait ends: on machine rank 0 (TCPStore's server) and on the others (its clients).
_NOT_JOINED = re.compile(r"Timed out after (\d+) seconds waiting for clients\. (\d+)/(\d+) clients joined")
_NO_ANSWER = re.compile(r"timed out after \d+ms while trying to connect to \(([^,()]+), (\d+)\)")

PACKAGE = Path(__file__).resolve().parents[1]
CONFIG_DIR = PACKAGE / "accelerate_configs"
GRPO_SCRIPT = PACKAGE / "grpo.py"


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
    raise UserError(f"--accelerate {name_or_path!r}: neither a file nor a packaged config; packaged: "
                    f"{', '.join(accelerate_configs())}")


def read_accelerate_config(name_or_path: str | None) -> dict:
    """The accelerate config as a mapping (``{}`` for none: accelerate's defaults)."""
    if not name_or_path:
        return {}
    return yaml.safe_load(resolve_accelerate_config(name_or_path).read_text()) or {}


def join_wait() -> int:
    """Seconds the machines of a launch wait for each other (``$TINYZERO_JOIN_WAIT``, default 600)."""
    value = os.environ.get(JOIN_WAIT_ENV, str(JOIN_WAIT_SECONDS))
    try:
        seconds = int(float(value))
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise UserError(f"${JOIN_WAIT_ENV}={value!r}: a number of seconds >= 1 (default {JOIN_WAIT_SECONDS})")
    return seconds


def _server_url(url: str) -> bool:
    """Whether ``url`` is a server's base URL trl can call: http(s), a host, a valid port if any, no path."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path in ("", "/") and not parts.query


def check_port(port: int, flag: str) -> None:
    """Refuse a ``flag`` value that is no TCP port a server can listen on."""
    if not 1 <= port <= 65535:
        raise UserError(f"{flag} {port}: not a TCP port (1-65535)")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@dataclass
class LaunchPlan:
    """What to run: the accelerate options, the run directory every rank trains (its config.yaml), and an optional
    vLLM server."""

    run_dir: Path
    accelerate: str | None = None
    num_processes: int = 1
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    cpu: bool = False
    env: dict = field(default_factory=dict)  # extra environment of the launch (CPU settings are added here)
    gpus: list[str] | None = None  # CUDA_VISIBLE_DEVICES of the trainer; None: all
    vllm_server: VLLMServer | None = None  # started here, before the trainer, stopped after it
    vllm_server_url: str | None = None  # a server started elsewhere (another node)
    join_wait_s: int | None = None  # several machines: how long they wait for each other ($TINYZERO_JOIN_WAIT)

    def __post_init__(self):
        if self.num_processes < 1 or self.num_machines < 1:
            raise UserError(f"--num-processes {self.num_processes} / --num-machines {self.num_machines}: need >= 1")
        if not 0 <= self.machine_rank < self.num_machines:
            raise UserError(f"--machine-rank {self.machine_rank}: need 0 <= rank < --num-machines {self.num_machines} "
                            "(rank 0 is the main machine)")
        if self.main_process_port:  # 0 (or none) leaves the port to accelerate
            check_port(self.main_process_port, "--main-process-port")
        if self.num_machines > 1 and not self.main_process_ip:
            raise UserError("--num-machines > 1 needs --main-process-ip (the address of machine rank 0)")
        if self.num_machines > 1:  # read once; a bad $TINYZERO_JOIN_WAIT is refused before anything is started
            self.join_wait_s = join_wait()
        if self.num_processes % self.num_machines:
            raise UserError(f"--num-processes {self.num_processes} is not a multiple of --num-machines "
                            f"{self.num_machines} (accelerate starts num_processes / num_machines per machine)")
        if self.cpu:
            if read_accelerate_config(self.accelerate).get("distributed_type") == "FSDP":
                raise UserError(f"--accelerate {self.accelerate}: FSDP needs GPUs (on CPU accelerate would quietly "
                                "run DDP instead); on CPU use ddp, zero2 or zero3")
            self.env.setdefault("DS_ACCELERATOR", "cpu")
        if self.gpus is not None:
            self.env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        if self.num_processes == 1 and not self.main_process_port:
            # One process gets no port from accelerate, and on CPU accelerate then sets MASTER_PORT=29500 for the
            # colocated vLLM engine's process group; "0" makes trl pick a free one (trl.trainer.utils
            # ensure_master_addr_port), so two runs on one machine do not collide. A port the user exported is kept
            # (the launch's environment is os.environ with this one laid over it).
            if "MASTER_PORT" not in os.environ:
                self.env.setdefault("MASTER_PORT", "0")

    def command(self) -> list[str]:
        """The argv of the launch: ``python -m accelerate.commands.launch [...] grpo.py --run RUN_DIR``."""
        cmd = [sys.executable, "-m", "accelerate.commands.launch"]
        if self.accelerate:
            cmd += ["--config_file", str(resolve_accelerate_config(self.accelerate))]
        cmd += ["--num_processes", str(self.num_processes), "--num_machines", str(self.num_machines)]
        if self.num_machines > 1:
            cmd += ["--machine_rank", str(self.machine_rank), "--main_process_ip", self.main_process_ip,
                    "--rdzv_conf", f"timeout={self.join_wait_s}"]  # static rendezvous: how long to wait
        several = self.num_processes > 1 or self.num_machines > 1
        if self.main_process_port:
            cmd += ["--main_process_port", str(self.main_process_port)]
        elif several and self.num_machines == 1 and "main_process_port" not in read_accelerate_config(self.accelerate):
            # A free port rather than accelerate's fixed 29500: two runs on one machine must not collide.
            cmd += ["--main_process_port", "0"]
        if self.accelerate is None:
            # Without a config file accelerate warns "run `accelerate config`" for each value it defaults; these
            # are the values it would pick itself (no dynamo; on CPU one thread per physical core, shared by the
            # processes of a machine), given, so the run is the same and the warning never shows.
            cmd += ["--dynamo_backend", "no"]
            if self.cpu and not os.environ.get("OMP_NUM_THREADS"):
                import psutil

                per_machine = max(self.num_processes // self.num_machines, 1)
                threads = max((psutil.cpu_count(logical=False) or 1) // per_machine, 1)
                cmd += ["--num_cpu_threads_per_process", str(threads)]
        if self.cpu:
            cmd += ["--mixed_precision", "no"]
            # --cpu would override the config's launcher with a single process; multi-process CPU runs go
            # through torchrun (--multi_gpu) and get gloo from training.use_cpu (see the module docstring).
            if self.accelerate is None:
                cmd += ["--multi_gpu"] if several else ["--cpu"]
        elif self.accelerate is None and several:
            cmd += ["--multi_gpu"]
        return cmd + [str(GRPO_SCRIPT), "--run", str(self.run_dir)]

    def main_address(self) -> str:
        """Machine rank 0's ``IP:PORT`` for a multi-machine launch (accelerate's port 29500 when none is given)."""
        return f"{self.main_process_ip}:{self.main_process_port or 29500}"

    def join_failure(self, stderr: str) -> str | None:
        """The line for a multi-machine launch that ended because a machine never joined, from what torch's
        launcher printed; None when it ended for another reason."""
        if self.num_machines < 2:
            return None
        main = self.main_address()
        setting = f"${JOIN_WAIT_ENV}, default {JOIN_WAIT_SECONDS} s"
        again = ("mend that and start every machine's command again (a run with a checkpoint resumes from it)")
        if self.machine_rank == 0 and (found := _NOT_JOINED.findall(stderr)):
            _, joined, total = (int(x) for x in found[-1])  # torch's seconds: the wait rounded up, plus one
            missing = total - joined
            who = ("machine rank 1" if total == 2 else
                   f"{missing} of machine ranks 1-{total - 1} (torch does not say which)")
            return (f"{who} never joined this launch: machine rank 0 waited {self.join_wait_s} s for it at {main} ({setting}; "
                    f"{joined} of {total} machines joined). Its own `tinyzero-trl train` output says why (it failed "
                    f"or was never started); {again}")
        if self.machine_rank != 0 and _NO_ANSWER.search(stderr):
            return (f"machine rank 0 at {main} did not answer: this machine (rank {self.machine_rank}) waited "
                    f"{self.join_wait_s} s to join it ({setting}). Its own `tinyzero-trl train` output says why (it failed, "
                    f"was never started, or listens elsewhere); {again}")
        return None

    def server_url(self) -> str | None:
        """Where the trainer finds vLLM: the server started here (loopback) or the one given."""
        if self.vllm_server is not None:
            return f"http://127.0.0.1:{self.vllm_server.port}"
        return self.vllm_server_url

    def shell(self) -> str:
        """The trainer command as one shell line, for dry runs and logs."""
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.command())


@dataclass
class Prepared:
    """A launch ready to go, as plain data: the resolved config (what config.yaml will hold), its checked form, the
    plan, and what is read from them: the run directory, the launch's argv and shell line, the dry run's text.
    ``checked``: the launch's preflight has run (a rehearsal runs it before loading its data), so ``launch.run``
    does not run it again."""

    resolved: dict
    config: RunConfig
    plan: LaunchPlan
    output_dir: Path
    command: list[str]
    shell: str
    text: str = ""
    checked: bool = False


def prepare(overrides: list[str], *, accelerate: str | None = None, num_processes: int | None = None,
            num_machines: int = 1, machine_rank: int = 0, main_process_ip: str | None = None,
            main_process_port: int | None = None, cpu: bool | None = None, vllm_gpus: int = 0,
            vllm_port: int = DEFAULT_VLLM_PORT, vllm_server_url: str | None = None, header: list[str] = (),
            sized_for_cpu: bool = False) -> Prepared:
    """Compose ``overrides``, check them once, and plan their launch; every error is a ``UserError`` naming the
    field. ``header`` and ``sized_for_cpu`` shape the dry run's text (``render``).

    What the launch adds to the config is written into it before the check (``training.use_cpu`` on a machine
    without CUDA, the vLLM server's URL), so config.yaml records what the trainer really runs with.
    """
    if vllm_gpus < 0:
        raise UserError(f"--vllm-gpus {vllm_gpus}: need >= 0 (0: no server started here)")
    if vllm_gpus > 0:
        check_port(vllm_port, "--vllm-port")
    if vllm_server_url is not None and not _server_url(vllm_server_url):
        raise UserError(f"--vllm-server-url {vllm_server_url!r}: expected http://HOST:PORT, e.g. http://node2:8000")
    cpu = (not cuda_available()) if cpu is None else cpu
    training = {"use_cpu": True} if cpu else {}
    url = f"http://127.0.0.1:{vllm_port}" if vllm_gpus > 0 else vllm_server_url
    if url:
        training["vllm_server_base_url"] = url
    processes = num_machines if num_processes is None else num_processes
    # Bad input (a key, a value, a local model path without a model) is reported before anything is planned.
    resolved, config = resolve(overrides, training=training, processes=processes)
    plan = LaunchPlan(run_dir=config.output_dir, accelerate=accelerate, num_processes=processes,
                      num_machines=num_machines, machine_rank=machine_rank, main_process_ip=main_process_ip,
                      main_process_port=main_process_port, cpu=cpu, vllm_server_url=vllm_server_url)
    if vllm_gpus > 0:
        if not (config.training.use_vllm and config.training.vllm_mode == "server"):
            raise UserError("--vllm-gpus needs a recipe with training.use_vllm=true and training.vllm_mode=server")
        if plan.num_machines > 1:
            raise UserError("--vllm-gpus starts the server on this machine; on several machines run it on its own "
                            "node (--vllm-server-only) and pass --vllm-server-url to the trainers")
        train_ids, vllm_ids = split_gpus(plan.num_processes, vllm_gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
        plan.gpus = train_ids
        plan.env["CUDA_VISIBLE_DEVICES"] = ",".join(train_ids)
        plan.vllm_server = vllm_server_for(resolved, vllm_ids, vllm_port)
    prepared = Prepared(resolved=resolved, config=config, plan=plan, output_dir=config.output_dir,
                        command=plan.command(), shell=plan.shell())
    prepared.text = render(prepared, header, sized_for_cpu=sized_for_cpu)
    return prepared


def render(prepared: Prepared, header: list[str] = (), *, sized_for_cpu: bool = False) -> str:
    """The dry run's text (``train --dry-run`` and ``reproduce --dry-run`` alike, ``Prepared.text``): what would
    run, where, on what.

    The memory and GPU lines describe GPU nodes, even when the plan is shown on a machine without CUDA, unless the
    run is ``sized_for_cpu`` (a CPU reproduction, whose model states live in host memory).
    """
    from tinyzero_trl.launch.scale import resource_lines

    plan = prepared.plan
    per_machine = plan.num_processes // max(plan.num_machines, 1)
    lines = list(header)
    lines += resource_lines(plan, prepared.resolved, read_accelerate_config(plan.accelerate), cpu=sized_for_cpu)
    lines.insert(len(header) + 2, f"processes    : {plan.num_processes} training process(es) on {plan.num_machines} "
                 f"machine(s), {per_machine} per machine" + (
                     f"; this is machine rank {plan.machine_rank}, main {plan.main_address()}"
                     if plan.num_machines > 1 else ""))
    lines.append(f"run dir      : {prepared.output_dir} (the resolved config is written to "
                 f"{prepared.output_dir / CONFIG_FILE})")
    lines.append("launch       : " + prepared.shell)
    if plan.cpu:
        lines.append("note         : no CUDA here: CPU/gloo settings added (DS_ACCELERATOR=cpu, --mixed_precision "
                     "no, training.use_cpu=true); on GPU nodes they are absent")
    return "\n".join(lines)
