"""Two processes on CPU (gloo) through the packaged accelerate configs, and two "machines" on one host.

Each run is the CPU smoke profile (2 steps) on a random tiny model: the point is that the processes form one
group, train together, and that only the main process writes the run directory's metrics and status.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from support import LEARNING_SIGNAL, assert_every_parameter_moved
from tinyzero_trl.run.metrics import read_metrics
from tinyzero_trl.run.status import read_status

from .conftest import free_port, start_train, wait_all

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(600)]

RECIPE = ["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", "data.source=generate", *LEARNING_SIGNAL]


def _overrides(model: str, out: Path) -> list[str]:
    return [*RECIPE, f"model.name_or_path={model}", f"training.output_dir={out}"]


def _check_run(out: Path, logs: list[Path], codes: list[int]) -> None:
    """Both steps logged once, run completed, and the processes formed one world of 2."""
    if any(codes):
        tails = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-4000:]}" for log in logs)
        pytest.fail(f"exit codes {codes}\n{tails}")
    assert [row["step"] for row in read_metrics(out / "metrics.jsonl")] == [1, 2]  # strict: no step twice
    status = read_status(out)
    assert status["status"] == "completed" and status["global_step"] == 2
    assert json.loads((out / "env.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("config", ["ddp", "zero2", "zero3"])
def test_two_processes(config, dist_model, tmp_path):
    out, log = tmp_path / "run", tmp_path / "launch.log"
    start = time.monotonic()
    proc = start_train(["--accelerate", config, "--num-processes", "2", "--main-process-port", str(free_port()),
                        *_overrides(dist_model, out)], log)
    codes = wait_all([proc], [log])
    print(f"{config}: {time.monotonic() - start:.0f} s wall")
    _check_run(out, [log], codes)
    checkpoint = out / "checkpoint-2"
    if config == "ddp":
        assert (checkpoint / "optimizer.pt").is_file()  # plain torch optimizer: not DeepSpeed
    else:
        # DeepSpeed's layout: one optimizer shard per rank
        shards = sorted(p.name for p in (checkpoint / "global_step2").glob("*optim_states.pt"))
        assert [s.split("_mp_rank")[0] for s in shards] == ["zero_pp_rank_0", "zero_pp_rank_1"]
    # The saved model holds the trained weights (under ZeRO-3 consolidated from the shards, not a placeholder).
    assert_every_parameter_moved(dist_model, out)


def test_a_finished_rank_exits_0_whatever_the_interpreters_teardown_would_do(dist_model, tmp_path):
    """A rank whose run has finished ends with 0 before Python's teardown, where torch's surviving gloo threads made
    3 of 107 finished ZeRO-3 runs abort (-6): here a test plugin aborts every rank that reaches the teardown."""
    out, log = tmp_path / "run", tmp_path / "launch.log"
    proc = start_train(["--accelerate", "zero3", "--num-processes", "2", "--main-process-port", str(free_port()),
                        *_overrides(dist_model, out)], log, TINYZERO_TEST_ABORT_AT_TEARDOWN="1")
    _check_run(out, [log], wait_all([proc], [log]))


def test_two_machines_on_one_host(dist_model, tmp_path):
    """Machine ranks 0 and 1 started side by side train as one 2-process group.

    Both get the same training.output_dir, as on a cluster with a shared filesystem (what multi-node runs need:
    resuming reads one checkpoint on every rank). Rank 0 writes metrics, status and the model; machine 1 adds
    only its own RNG state to the checkpoint.
    """
    out, port = tmp_path / "run", free_port()
    logs = [tmp_path / f"machine{rank}.log" for rank in (0, 1)]
    start = time.monotonic()
    procs = [start_train(["--accelerate", "ddp", "--num-machines", "2", "--num-processes", "2", "--machine-rank",
                          str(rank), "--main-process-ip", "127.0.0.1", "--main-process-port", str(port),
                          *_overrides(dist_model, out)], logs[rank]) for rank in (0, 1)]
    codes = wait_all(procs, logs)
    print(f"two machines: {time.monotonic() - start:.0f} s wall")
    _check_run(out, logs, codes)
    assert "--machine_rank 1" in logs[1].read_text(errors="replace")
    checkpoint = out / "checkpoint-2"
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert_every_parameter_moved(dist_model, out)


def test_two_processes_resume_from_a_checkpoint(dist_model, tmp_path):
    """Two CPU processes stop at a checkpoint; the same command with a later max_steps resumes from it.

    On multi-process CPU, transformers loads optimizer.pt with map_location=args.device, which accelerate sets to
    the indexed device "cpu:0", a location torch.load cannot restore to (what a resubmitted 2-node CPU Slurm job
    met); train.trainer.load_optimizer_on_cpu loads it to plain "cpu".
    """
    out = tmp_path / "run"
    port = free_port()
    args = ["--accelerate", "ddp", "--num-processes", "2", "--main-process-port", str(port),
            *_overrides(dist_model, out), "training.save_steps=1"]
    logs = [tmp_path / "first.log", tmp_path / "resumed.log"]
    start = time.monotonic()
    codes = wait_all([start_train([*args, "training.max_steps=1"], logs[0])], logs[:1])
    assert codes == [0], logs[0].read_text(errors="replace")[-4000:]
    assert (out / "checkpoint-1" / "optimizer.pt").is_file()
    codes = wait_all([start_train([*args, "training.max_steps=2"], logs[1])], logs[1:])
    print(f"two processes, run + resume: {time.monotonic() - start:.0f} s wall")
    assert f"resuming from {out / 'checkpoint-1'}" in logs[1].read_text(errors="replace")
    _check_run(out, logs, codes)


JOIN_WAIT = 5  # $TINYZERO_JOIN_WAIT of the join tests; the default is launch.plan.JOIN_WAIT_SECONDS (600 s)
# What the surviving machine may take beyond the join wait: its own start (imports, compose, preflight,
# accelerate's launcher) on two loaded cores. The bound the test asserts; without the wait it waits 600 s.
START_SLACK = 75


@pytest.mark.parametrize("failing", [1, 0])
def test_a_machine_whose_launch_fails_ends_the_other_within_the_join_wait(failing, dist_model, tmp_path):
    """Two machines on loopback; one's launch fails before it joins (its model path exists only on the other's
    disk: exit 2). The other ends within $TINYZERO_JOIN_WAIT (plus its own start) with exit 1 and one last line
    that names the machine that never joined or never answered."""
    out, port = tmp_path / "run", free_port()
    logs = [tmp_path / f"machine{rank}.log" for rank in (0, 1)]

    def machine(rank: int) -> list[str]:
        model = str(tmp_path / "only-on-the-other-machine") if rank == failing else dist_model
        return ["--accelerate", "ddp", "--num-machines", "2", "--num-processes", "2", "--machine-rank", str(rank),
                "--main-process-ip", "127.0.0.1", "--main-process-port", str(port), *RECIPE,
                f"model.name_or_path={model}", f"training.output_dir={out}"]

    start = time.monotonic()
    procs = [start_train(machine(rank), logs[rank], TINYZERO_JOIN_WAIT=str(JOIN_WAIT)) for rank in (0, 1)]
    codes = wait_all(procs, logs, timeout=JOIN_WAIT + START_SLACK + 30)
    elapsed = time.monotonic() - start
    print(f"machine {failing} failed: the other ended after {elapsed:.0f} s")
    survivor = 1 - failing
    texts = [log.read_text(errors="replace") for log in logs]
    assert codes[failing] == 2 and "only-on-the-other-machine" in texts[failing], texts[failing][-2000:]
    assert codes[survivor] == 1, texts[survivor][-3000:]
    assert f"--rdzv_conf timeout={JOIN_WAIT}" in texts[survivor]
    last = texts[survivor].strip().splitlines()[-1]
    setting = "($TINYZERO_JOIN_WAIT, default 600 s"
    if failing == 1:
        assert last.startswith(f"tinyzero-trl train: machine rank 1 never joined this launch: machine rank 0 waited "
                               f"{JOIN_WAIT}"), last
        assert f"for it at 127.0.0.1:{port} {setting}; 1 of 2 machines joined)" in last, last
    else:
        assert last.startswith(f"tinyzero-trl train: machine rank 0 at 127.0.0.1:{port} did not answer: this machine "
                               f"(rank 1) waited {JOIN_WAIT} s to join it {setting})"), last
    assert "start every machine's command again" in last
    assert elapsed < JOIN_WAIT + START_SLACK, elapsed
