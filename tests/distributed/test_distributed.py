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
