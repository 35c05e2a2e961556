"""Launch command construction: packaged configs, multi-node flags, CPU settings, the vLLM server plan."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from tinyzero_trl.cli import main as cli_main
from tinyzero_trl.errors import UserError
from tinyzero_trl.launch.plan import (
    CONFIG_DIR,
    LaunchPlan,
    Prepared,
    accelerate_configs,
    prepare,
    read_accelerate_config,
    resolve_accelerate_config,
)
from tinyzero_trl.launch.vllm_server import VLLMServer, split_gpus, vllm_server_for

CFG = "/runs/x"
SERVER_RECIPE = {"model": {"name_or_path": "Qwen/Qwen2.5-3B-Instruct", "dtype": "bfloat16", "revision": None},
                 "training": {"use_vllm": True, "vllm_mode": "server"}}


def _after(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_packaged_configs_exist_and_parse():
    assert accelerate_configs() == ["ddp", "fsdp", "zero1", "zero2", "zero3"]
    kinds = {name: read_accelerate_config(name)["distributed_type"] for name in accelerate_configs()}
    assert kinds == {"ddp": "MULTI_GPU", "fsdp": "FSDP", "zero1": "DEEPSPEED", "zero2": "DEEPSPEED",
                     "zero3": "DEEPSPEED"}
    for stage in (1, 2, 3):
        assert read_accelerate_config(f"zero{stage}")["deepspeed_config"]["zero_stage"] == stage
    assert read_accelerate_config("fsdp")["fsdp_config"]["fsdp_version"] == 2


def test_accelerate_can_load_every_packaged_config():
    from accelerate.commands.config.config_args import load_config_from_file

    for name in accelerate_configs():
        assert load_config_from_file(str(CONFIG_DIR / f"{name}.yaml")).num_machines == 1


def test_packaged_name_and_user_file(tmp_path):
    assert resolve_accelerate_config("zero3") == CONFIG_DIR / "zero3.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: MULTI_GPU\n")
    assert resolve_accelerate_config(str(own)) == own
    cmd = LaunchPlan(run_dir=CFG, accelerate=str(own), num_processes=2, cpu=False).command()
    assert _after(cmd, "--config_file") == str(own)


def test_bad_name_lists_packaged_ones():
    with pytest.raises(UserError) as err:
        resolve_accelerate_config("zero4")
    for name in ("ddp", "zero1", "zero2", "zero3", "fsdp"):
        assert name in str(err.value)


def test_gpu_command_single_node():
    plan = LaunchPlan(run_dir=CFG, accelerate="zero2", num_processes=2, cpu=False)
    cmd = plan.command()
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert _after(cmd, "--num_processes") == "2" and _after(cmd, "--num_machines") == "1"
    assert cmd[-3].endswith("grpo.py") and cmd[-2:] == ["--run", CFG]  # the ranks read the resolved config
    for flag in ("--cpu", "--mixed_precision", "--multi_gpu", "--machine_rank"):
        assert flag not in cmd
    assert plan.env == {}


def test_no_config_several_gpus_is_multi_gpu():
    assert "--multi_gpu" in LaunchPlan(run_dir=CFG, num_processes=4, cpu=False).command()
    assert "--multi_gpu" not in LaunchPlan(run_dir=CFG, num_processes=1, cpu=False).command()


def test_multi_node_flags():
    plan = LaunchPlan(run_dir=CFG, accelerate="zero3", num_processes=16, num_machines=2, machine_rank=1,
                      main_process_ip="10.0.0.1", main_process_port=29555, cpu=False)
    cmd = plan.command()
    assert _after(cmd, "--num_machines") == "2" and _after(cmd, "--machine_rank") == "1"
    assert _after(cmd, "--main_process_ip") == "10.0.0.1" and _after(cmd, "--main_process_port") == "29555"


def test_multi_node_join_wait_is_stated_and_a_setting(monkeypatch):
    """The machines wait for each other at torch's static rendezvous for $TINYZERO_JOIN_WAIT s (default 600)."""
    def plan():
        return LaunchPlan(run_dir=CFG, num_processes=2, num_machines=2, main_process_ip="10.0.0.1", cpu=True)

    monkeypatch.delenv("TINYZERO_JOIN_WAIT", raising=False)
    assert _after(plan().command(), "--rdzv_conf") == "timeout=600"
    monkeypatch.setenv("TINYZERO_JOIN_WAIT", "45")
    planned = plan()
    assert _after(planned.command(), "--rdzv_conf") == "timeout=45"
    monkeypatch.setenv("TINYZERO_JOIN_WAIT", "90")  # read once, when the launch is planned
    assert _after(planned.command(), "--rdzv_conf") == "timeout=45" and "waited 45 s" in planned.join_failure(
        "Timed out after 46 seconds waiting for clients. 1/2 clients joined.")
    monkeypatch.setenv("TINYZERO_JOIN_WAIT", "soon")
    with pytest.raises(UserError, match=r"\$TINYZERO_JOIN_WAIT='soon': a number of seconds >= 1 \(default 600\)"):
        LaunchPlan(run_dir=CFG, num_processes=2, num_machines=2, main_process_ip="10.0.0.1", cpu=True)
    single = LaunchPlan(run_dir=CFG, num_processes=2, cpu=True)
    assert "--rdzv_conf" not in single.command()


def test_a_machine_that_never_joined_is_named_from_torchs_words(monkeypatch):
    """What torch 2.13's launcher prints when the rendezvous wait ends (tests/distributed runs the real one)."""
    monkeypatch.delenv("TINYZERO_JOIN_WAIT", raising=False)
    three = LaunchPlan(run_dir=CFG, num_processes=3, num_machines=3, main_process_ip="10.0.0.1",
                       main_process_port=29555, cpu=True)
    said = "torch.distributed.DistStoreError: Timed out after 601 seconds waiting for clients. 2/3 clients joined."
    line = three.join_failure("Traceback ...\n" + said + "\n")
    assert line.startswith("1 of machine ranks 1-2 (torch does not say which) never joined this launch: machine "
                           "rank 0 waited 600 s for it at 10.0.0.1:29555 ($TINYZERO_JOIN_WAIT, default 600 s; "
                           "2 of 3 machines joined)"), line
    assert three.join_failure("RuntimeError: Connection closed by peer") is None
    other = LaunchPlan(run_dir=CFG, num_processes=3, num_machines=3, machine_rank=2, main_process_ip="10.0.0.1",
                       main_process_port=29555, cpu=True)
    assert other.join_failure(said) is None  # only machine rank 0 waits for clients
    assert other.join_failure("The client socket has timed out after 600000ms while trying to connect to "
                              "(10.0.0.1, 29555).").startswith("machine rank 0 at 10.0.0.1:29555 did not answer")


def test_multi_node_needs_ip_and_divisible_processes():
    with pytest.raises(UserError, match="main-process-ip"):
        LaunchPlan(run_dir=CFG, num_processes=2, num_machines=2, cpu=False)
    with pytest.raises(UserError, match="multiple"):
        LaunchPlan(run_dir=CFG, num_processes=3, num_machines=2, main_process_ip="h", cpu=False)


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3"])
def test_cpu_settings_with_config(name):
    plan = LaunchPlan(run_dir=CFG, accelerate=name, num_processes=2, cpu=True)
    cmd = plan.command()
    # --cpu would make accelerate ignore the config and start one process
    assert "--cpu" not in cmd and "--multi_gpu" not in cmd
    assert _after(cmd, "--mixed_precision") == "no"
    assert plan.env["DS_ACCELERATOR"] == "cpu"
    assert plan.shell().startswith("DS_ACCELERATOR=cpu ")


def test_cpu_settings_without_config():
    assert "--cpu" in LaunchPlan(run_dir=CFG, num_processes=1, cpu=True).command()
    several = LaunchPlan(run_dir=CFG, num_processes=2, cpu=True).command()
    assert "--multi_gpu" in several and "--cpu" not in several  # accelerate allows only one of them


def test_fsdp_refused_on_cpu():
    with pytest.raises(UserError, match="FSDP needs GPUs"):
        LaunchPlan(run_dir=CFG, accelerate="fsdp", num_processes=2, cpu=True)
    assert "--config_file" in LaunchPlan(run_dir=CFG, accelerate="fsdp", num_processes=2, cpu=False).command()


def test_user_env_wins_over_cpu_default():
    plan = LaunchPlan(run_dir=CFG, num_processes=1, cpu=True, env={"DS_ACCELERATOR": "xpu"})
    assert plan.env["DS_ACCELERATOR"] == "xpu"


def test_vllm_server_command_matches_trl():
    server = VLLMServer(model="Qwen/Qwen2.5-7B", gpus=["6", "7"], port=8001, dtype="bfloat16", max_model_len=2048)
    cmd = server.command()
    assert cmd[1:5] == ["-m", "vllm.entrypoints.cli.main", "serve", "Qwen/Qwen2.5-7B"]
    assert _after(cmd, "--tensor-parallel-size") == "2" and _after(cmd, "--port") == "8001"
    assert _after(cmd, "--dtype") == "bfloat16" and _after(cmd, "--max-model-len") == "2048"
    assert json.loads(_after(cmd, "--weight-transfer-config")) == {"backend": "nccl"}
    assert _after(cmd, "--logprobs-mode") == "processed_logprobs" and _after(cmd, "--max-logprobs") == "-1"
    assert server.env() == {"CUDA_VISIBLE_DEVICES": "6,7", "VLLM_SERVER_DEV_MODE": "1"}


def test_vllm_server_flags_equal_trls_build_command():
    """Our server flags are exactly what ``trl vllm-serve`` would exec (trl/scripts/vllm_serve.py)."""
    vllm_serve = pytest.importorskip("trl.scripts.vllm_serve")
    ours = VLLMServer(model="m", gpus=["0", "1"], port=8005, dtype="bfloat16").command()
    args = vllm_serve.ScriptArguments(model="m", port=8005, tensor_parallel_size=2, dtype="bfloat16")
    theirs = vllm_serve.build_command(args)
    pairs = lambda cmd: {(a, b) for a, b in zip(cmd, cmd[1:]) if a.startswith("--")}  # noqa: E731
    assert theirs[1:5] == ours[1:5]  # python -m vllm.entrypoints.cli.main serve MODEL
    assert pairs(theirs) <= pairs(ours)  # ours adds --enable-scale-out, which trl adds for vLLM >= 0.30
    assert {("--weight-transfer-config", '{"backend": "nccl"}'), ("--logprobs-mode", "processed_logprobs"),
            ("--max-logprobs", "-1")} <= pairs(ours)


def test_split_gpus():
    assert split_gpus(3, 1) == (["0", "1", "2"], ["3"])
    assert split_gpus(2, 2, "4,5,6,7") == (["4", "5"], ["6", "7"])
    with pytest.raises(UserError, match="visible"):
        split_gpus(4, 4, "0,1,2,3")


SERVER_ARGS = ["+countdown=grpo-qwen-2.5-3b-instruct", "training.output_dir=/tmp/never-written"]


def test_vllm_server_plan(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    prepared = prepare(SERVER_ARGS, accelerate="zero3", num_processes=3, cpu=False, vllm_gpus=1, vllm_port=8010)
    plan = prepared.plan
    assert plan.vllm_server.gpus == ["3"] and plan.gpus == ["0", "1", "2"]
    assert plan.env["CUDA_VISIBLE_DEVICES"] == "0,1,2"
    # the URL goes into the config the ranks read, not onto their command line
    assert prepared.resolved["training"]["vllm_server_base_url"] == "http://127.0.0.1:8010"
    assert "--dtype bfloat16" in plan.vllm_server.shell()
    assert plan.vllm_server.shell().startswith("CUDA_VISIBLE_DEVICES=3 VLLM_SERVER_DEV_MODE=1 ")


def test_vllm_server_plan_refuses_colocate_and_multi_node():
    with pytest.raises(UserError, match="vllm_mode=server"):
        prepare(["+countdown=grpo-qwen-2.5-3b-base", "training.output_dir=/tmp/x"], cpu=False, vllm_gpus=1)
    with pytest.raises(UserError, match="vllm-server-only"):
        prepare(SERVER_ARGS, num_processes=16, num_machines=2, main_process_ip="h", cpu=False, vllm_gpus=8)


def test_remote_vllm_server_url():
    prepared = prepare(SERVER_ARGS, accelerate="zero3", num_processes=16, num_machines=2, main_process_ip="h",
                       vllm_server_url="http://vllm-node:8000", cpu=False)
    assert prepared.resolved["training"]["vllm_server_base_url"] == "http://vllm-node:8000"
    assert vllm_server_for(SERVER_RECIPE, ["0"]).model == "Qwen/Qwen2.5-3B-Instruct"


def test_cpu_launch_writes_use_cpu_into_the_config():
    prepared = prepare(["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", "training.output_dir=/tmp/x"], cpu=True)
    assert prepared.resolved["training"]["use_cpu"] is True and prepared.plan.cpu


def test_cli_dry_run_prints_both_commands(tiny_model, capsys, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    code = cli_main(["train", "--dry-run", "--accelerate", "zero3", "--num-processes", "3", "--vllm-gpus", "1",
                     "+countdown=grpo-qwen-2.5-3b-instruct", f"model.name_or_path={tiny_model}",
                     "training.output_dir=/tmp/never-written"])
    out = capsys.readouterr().out
    assert code == 0
    assert "vLLM command : CUDA_VISIBLE_DEVICES=3 VLLM_SERVER_DEV_MODE=1" in out
    assert "--logprobs-mode processed_logprobs" in out
    assert "launch       :" in out and "CUDA_VISIBLE_DEVICES=0,1,2" in out
    assert "grpo.py --run /tmp/never-written" in out


def test_cli_dry_run_bad_config_name(capsys):
    code = cli_main(["train", "--dry-run", "--accelerate", "zero9", "+countdown=grpo-qwen-2.5-3b-base",
                     "model.name_or_path=Qwen/Qwen2.5-3B"])
    assert code == 2 and "packaged: ddp, fsdp, zero1, zero2, zero3" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["train", "+countdown=grpo-qwen-2.5-3b-base", "model.name_or_path=Qwen/x"],
                                     ["reproduce", "countdown-tiny"]])
def test_zero_processes_is_refused_not_taken_for_the_default(command, capsys):
    """--num-processes 0 planned the default (one process, or the folder's count) without a word, as if unset."""
    assert cli_main([*command, "--dry-run", "--num-processes", "0"]) == 2
    assert "--num-processes 0 / --num-machines 1: need >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("flags,says", [
    (["--machine-rank", "2", "--num-machines", "2", "--num-processes", "2", "--main-process-ip", "h"],
     "--machine-rank 2: need 0 <= rank < --num-machines 2"),  # planned, then waited for a rank that cannot join
    (["--main-process-port", "99999", "--num-machines", "2", "--num-processes", "2", "--main-process-ip", "h"],
     "--main-process-port 99999: not a TCP port"),
    (["--vllm-gpus", "-1"], "--vllm-gpus -1: need >= 0"),  # was planned as no server, without a word
    (["--vllm-server-url", "node2:8000"], "--vllm-server-url 'node2:8000': expected http://HOST:PORT"),
    (["--vllm-server-url", "http://node2:8000/v1"], "expected http://HOST:PORT"),
])
def test_launch_flags_that_cannot_work_are_refused_in_the_dry_run(flags, says, capsys):
    args = ["train", "--dry-run", "+countdown=grpo-qwen-2.5-3b-base", "model.name_or_path=Qwen/x", *flags]
    assert cli_main(args) == 2
    assert says in capsys.readouterr().err


def test_an_ipv6_or_https_server_url_is_accepted(capsys):
    for url in ("http://[fd00::2]:8000", "https://node2"):
        assert cli_main(["train", "--dry-run", "+countdown=grpo-qwen-2.5-3b-base", "model.name_or_path=Qwen/x",
                         "--vllm-server-url", url]) == 0
    capsys.readouterr()


SERVE_ONLY = ["+countdown=grpo-qwen-2.5-3b-base", "model.name_or_path=Qwen/x", "training.use_vllm=true",
              "training.vllm_mode=server"]


@pytest.mark.parametrize("args,vllm_installed,says", [
    (["+countdown=grpo-qwen-2.5-3b-base", "model.name_or_path=Qwen/x"], True, "this one starts no vLLM server"),
    (SERVE_ONLY, False, "--vllm-server-only: vLLM is not installed here"),  # was python's module-spec error
    (["+countdown=grpo-tiny-base", "training.use_vllm=true", "+training.vllm_mode=server"], True,
     "model.name_or_path is not set"),
    ([*SERVE_ONLY, "--vllm-port", "70000"], True, "--vllm-port 70000: not a TCP port"),
    ([*SERVE_ONLY, "--vllm-gpus", "-2"], True, "--vllm-gpus -2: a vLLM server needs at least 1 GPU"),
])
def test_a_server_only_node_that_cannot_serve_says_why(args, vllm_installed, says, capsys, monkeypatch):
    import importlib.util
    import subprocess

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if vllm_installed else None) if name == "vllm" else find_spec(name, *a))
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("a server was started"))
    assert cli_main(["train", "--vllm-server-only", *args]) == 2
    assert says in capsys.readouterr().err


def test_a_server_only_node_runs_the_recipes_server(capsys, monkeypatch):
    import importlib.util
    import subprocess

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else find_spec(name, *a))
    started = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, env: started.append((cmd, env["CUDA_VISIBLE_DEVICES"])) or 0)
    assert cli_main(["train", "--vllm-server-only", "--vllm-gpus", "2", "--vllm-port", "8011", *SERVE_ONLY]) == 0
    (cmd, gpus), = started
    assert "Qwen/x" in cmd and "8011" in cmd and gpus == "0,1"
    capsys.readouterr()


def test_execute_starts_waits_for_and_stops_the_server(tmp_path, monkeypatch):
    """execute: server up, /health answered, trainer runs against it, server stopped after."""
    from tinyzero_trl.launch import run as launch
    from tinyzero_trl.launch import vllm_server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pid_file = tmp_path / "server.pid"
    server_code = (
        "import http.server, os, pathlib\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/health' else 404); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )

    class FakeServer(VLLMServer):
        def command(self):
            return [sys.executable, "-c", server_code]

    trainer = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health')"
    plan = LaunchPlan(run_dir=CFG, cpu=False, vllm_server=FakeServer(model="m", gpus=["0"], port=port))
    prepared = Prepared(resolved={}, config=None, plan=plan, output_dir=Path(CFG),
                        command=[sys.executable, "-c", trainer], shell="trainer")
    real_sleep = time.sleep
    monkeypatch.setattr(vllm_server.time, "sleep", lambda s: real_sleep(min(s, 0.2)))  # poll faster than every 5 s
    assert launch.execute(prepared, server_timeout=60) == (0, None)
    server_pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)  # stopped (and reaped) after training


@pytest.mark.parametrize("processes", [1, 2])
def test_accelerate_finds_nothing_to_default_on_a_cpu_launch(processes, caplog, monkeypatch):
    """Before: every CPU run printed accelerate's "values were not passed ... run `accelerate config`" (dynamo
    backend, CPU threads). accelerate's own check of our command line now defaults nothing, and its thread count is
    what accelerate would have picked."""
    import logging

    import psutil
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cmd = LaunchPlan(run_dir=CFG, num_processes=processes, cpu=True).command()
    args = launch_command_parser().parse_args(cmd[cmd.index("accelerate.commands.launch") + 1:])
    with caplog.at_level(logging.WARNING):
        args, _, _ = _validate_launch_command(args)
    assert not [r for r in caplog.records if "were not passed" in r.getMessage()], caplog.text
    assert args.num_cpu_threads_per_process == max(psutil.cpu_count(logical=False) // processes, 1)


def test_one_process_picks_a_free_port_unless_the_user_exported_one(monkeypatch):
    """MASTER_PORT=0 lets trl pick a free port, so two one-process runs on one machine do not collide on accelerate's
    29500; a MASTER_PORT the user exported is theirs (the plan's env is laid over os.environ at launch)."""
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert LaunchPlan(run_dir=CFG, num_processes=1, cpu=True).env["MASTER_PORT"] == "0"
    monkeypatch.setenv("MASTER_PORT", "29600")
    assert "MASTER_PORT" not in LaunchPlan(run_dir=CFG, num_processes=1, cpu=True).env
