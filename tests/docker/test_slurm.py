"""docker/slurm/train.sbatch under a real Slurm: Debian's slurm-wlm 22.05 on this machine, two nodes, each a
network namespace with its own address, slurmd and Docker daemon (docker/slurm/cluster.py), the CPU image.

    pytest -m slurm tests/docker/test_slurm.py      # nox -s slurm; CI. Root; ~15-20 min on 2 cores

A plain ``pytest`` deselects these (``-m "not slurm"`` in pyproject.toml): they need root, install Debian
packages, build two images and start daemons. They skip when not root or when Slurm, munge or Docker are
neither installed nor installable with apt-get; under ``CI=true`` those are failures, never skips.

Environment: ``TINYZERO_DOCKER_STATE`` (where the images are built, default /var/tmp/tinyzero-slurm-images; CI
gives docker/e2e.py's folder, so the CPU image is a cache hit), ``TINYZERO_SLURM_STATE`` (the cluster's folder,
default a new /var/tmp/tinyzero-slurm-*; ``python docker/slurm/cluster.py down --state STATE/cluster`` stops
what a killed test left), ``TINYZERO_SLURM_REPORT`` (a JSON file for the timings), ``TINYZERO_SBATCH`` (the batch script to submit, default docker/slurm/train.sbatch: point it at an
altered copy to see a test fail when the handling it checks is switched off), ``TINYZERO_SLURM_IMAGES`` (an
images archive from an earlier run, instead of building one), ``TINYZERO_SLURM_CLUSTER`` (the ``--state`` of a
cluster stood up with ``cluster.py up --image-tar ...``: the tests run on it and leave it up, for reruns),
``TINYZERO_SLURM_VLLM=0`` (no vLLM image, the vLLM test skips), ``TINYZERO_SLURM_CPU_IMAGE`` (the image the training jobs run, default tinyzero-trl:0.1.0-cpu: one with a change to try).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docker" / "slurm"))
import cluster as slurm_cluster  # noqa: E402
import images  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.slurm, pytest.mark.timeout(3600)]

SBATCH = Path(os.environ.get("TINYZERO_SBATCH") or ROOT / "docker" / "slurm" / "train.sbatch").resolve()
IMAGE_STATE = Path(os.environ.get("TINYZERO_DOCKER_STATE") or "/var/tmp/tinyzero-slurm-images")
# The CPU form of a submission: the GPU settings emptied (docker/README.md, "Several nodes under Slurm").
CPU = {"SBATCH_GPUS_PER_NODE": "0", "DOCKER_GPUS": "", "DOCKER_MEMLOCK": "", "GPUS_PER_NODE": "1",
       "ACCELERATE": "ddp", "VLLM_NODES": "0", "IMAGE": os.environ.get("TINYZERO_SLURM_CPU_IMAGE") or images.CPU}
# The countdown recipe on countdown-tiny's packaged base, cut short. A random tiny-model scores 0 on every
# completion, so GRPO's advantages, loss and gradients are exactly 0 and its weights cannot move; this base
# solves some tasks from the start, so every step has a gradient.
RECIPE = ["+countdown=grpo-tiny-base", "model.name_or_path=/runs/tiny-base", "training.per_device_train_batch_size=16",
          "data.num_train=64", "data.num_test=8", "training.save_steps=1"]
TIMINGS: dict[str, float] = {}
# TINYZERO_SLURM_VLLM=0: no CPU+vLLM image (its build is ~15 min on 2 cores) and the VLLM_NODES=1 test skips; CI's
# short step (.ci/run) runs the 2-node job, the node-list check and the failed node only.
VLLM = os.environ.get("TINYZERO_SLURM_VLLM", "1") != "0"


def need(condition: bool, why: str) -> None:
    """Skip without ``condition``; under CI a missing prerequisite is a failure."""
    if not condition:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {why}")
        pytest.skip(why)


class Jobs:
    """Submitting train.sbatch to the test cluster from its shared folder (the jobs' $PWD, hence SHARED)."""

    def __init__(self, cluster: slurm_cluster.Cluster, shared: Path):
        self.cluster = cluster
        self.shared = shared
        self.runs = shared / "runs"

    def submit(self, args: list[str], *, nodes: int = 2, wait: bool = True, timeout: float = 1200,
               **env: str) -> tuple[int, str]:
        """(sbatch's exit code: the job's with ``wait``; the job id)."""
        command = ["sbatch", *(["--wait"] if wait else []), f"--nodes={nodes}", str(SBATCH), *args]
        proc = subprocess.run(command, cwd=self.shared, env={**self.cluster.env, **CPU, **env},
                              capture_output=True, text=True, timeout=timeout)
        match = re.search(r"Submitted batch job (\d+)", proc.stdout)
        assert match, f"sbatch: {proc.stdout}{proc.stderr}"
        return proc.returncode, match.group(1)

    def output(self, job: str) -> str:
        return (self.shared / f"tinyzero-grpo-{job}.out").read_text(errors="replace")

    def started(self, node: str, since: float) -> list[str]:
        """Names of the containers ``node``'s own Docker daemon started since ``since``."""
        out = subprocess.run(["docker", "events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                              "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}"],
                             capture_output=True, text=True, check=True,
                             env=dict(os.environ, DOCKER_HOST=self.cluster.docker_host(node)))
        return out.stdout.split()

    def leftover_containers(self) -> dict[str, list[str]]:
        return {node: names for node in self.cluster.node_names() if (names := self.cluster.containers(node))}

    def wait_gone(self, job: str, timeout: float) -> float:
        t0 = time.monotonic()
        while job in self.cluster.jobs():
            assert time.monotonic() - t0 < timeout, f"job {job} still in the queue after {timeout:.0f} s"
            time.sleep(1)
        return time.monotonic() - t0


def shared_folder(state: Path) -> Path:
    """A new shared folder (the jobs' $PWD and RUNS) with the two models the jobs train from."""
    shared = Path(tempfile.mkdtemp(prefix="shared-", dir=state))
    shared.chmod(0o755)
    (shared / "runs").mkdir()
    shutil.copytree(ROOT / "src" / "tinyzero_trl" / "tiny" / "assets" / "countdown-tiny-base", shared / "runs" / "tiny-base")
    from tinyzero_trl.tiny.random_model import build_tiny_model

    build_tiny_model("qwen2", shared / "runs" / "tiny-vllm", vllm=True)
    return shared


@pytest.fixture(scope="module")
def jobs():
    need(os.geteuid() == 0, "the test cluster (network namespaces, daemons) needs root")
    if os.environ.get("TINYZERO_SLURM_CLUSTER"):  # one stood up by `cluster.py up --image-tar`: used, left up
        cluster = slurm_cluster.Cluster(Path(os.environ["TINYZERO_SLURM_CLUSTER"]))
        cluster.attach()
        shared = shared_folder(cluster.state)
        yield Jobs(cluster, shared)
        shutil.rmtree(shared, ignore_errors=True)
        return
    missing = slurm_cluster.missing_tools(docker=True)
    if shutil.which("debootstrap") is None:
        missing.append("debootstrap")  # docker/e2e.py's substitute base, where the pinned one cannot be pulled
    if missing:
        ok, detail = slurm_cluster.install_packages(missing)
        need(ok, f"cannot install {' '.join(missing)} with apt-get: {detail}")
    t0 = time.monotonic()
    state = Path(os.environ.get("TINYZERO_SLURM_STATE") or tempfile.mkdtemp(prefix="tinyzero-slurm-", dir="/var/tmp"))
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)  # mkdtemp makes it 0700; munged wants the folders above its socket searchable by all
    given = os.environ.get("TINYZERO_SLURM_IMAGES")
    archive = Path(given) if given else state / "images.tar"
    if given:  # an archive images.build_and_save made before
        report = {"archive": given, "note": "given in TINYZERO_SLURM_IMAGES, not built by this run"}
    else:
        report = images.build_and_save(IMAGE_STATE, archive, vllm=VLLM, log=print)
        TIMINGS.update({f"images_{k}": v for k, v in report["timings_s"].items()})
    cluster = slurm_cluster.Cluster(state / "cluster", nodes=2, docker=True)
    try:
        cluster.up()
        TIMINGS["cluster_up"] = cluster.record["up_seconds"]
        TIMINGS["image_load"] = round(cluster.load_image(archive), 1)
        if not given:
            archive.unlink()
        shared = shared_folder(state)
        TIMINGS["setup_total"] = round(time.monotonic() - t0, 1)
        yield Jobs(cluster, shared)
    finally:
        t = time.monotonic()
        cluster.down()
        TIMINGS["cluster_down"] = round(time.monotonic() - t, 1)
        TIMINGS["total"] = round(time.monotonic() - t0, 1)
        print(f"slurm test timings (s): {TIMINGS}")
        if os.environ.get("TINYZERO_SLURM_REPORT"):
            Path(os.environ["TINYZERO_SLURM_REPORT"]).write_text(json.dumps(
                {"timings_s": TIMINGS, "images": report, "cluster": str(cluster.state),
                 "load_average_at_end": Path("/proc/loadavg").read_text().split()[:3]}, indent=2) + "\n")
        for leftover in state.glob("shared-*"):
            shutil.rmtree(leftover / "runs", ignore_errors=True)


def read_run(run_dir: Path) -> tuple[dict, list[dict]]:
    from tinyzero_trl.run.metrics import read_metrics
    from tinyzero_trl.run.status import read_status

    return read_status(run_dir), read_metrics(run_dir / "metrics.jsonl")  # strict: a repeated step raises


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def verify_style_checks(run_dir: Path, steps: int) -> None:
    """What verify checks of any run before judging it: completed, metrics complete and unrepeated, every loss,
    gradient norm and reward mean a possible number (sanity.check_metrics)."""
    from tinyzero_trl.verification.sanity import check_metrics

    status, rows = read_run(run_dir)
    assert status["status"] == "completed" and status["global_step"] == steps, status
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    check_metrics(rows, set(), run_dir)
    assert all(r["grad_norm"] > 0 for r in rows), [r["grad_norm"] for r in rows]  # every step had a gradient


def test_two_nodes_train_over_gloo(jobs):
    """sbatch --nodes=2: one container per node on that node's own engine, machine ranks 0 and 1 over gloo
    between the two namespaces, one run directory in the shared RUNS."""
    since = time.time()
    t0 = time.monotonic()
    rc, job = jobs.submit([*RECIPE, "training.max_steps=3", "training.output_dir=/runs/two-nodes"])
    TIMINGS["job_two_nodes"] = round(time.monotonic() - t0, 1)
    out = jobs.output(job)
    assert rc == 0, out[-4000:]
    assert "train.sbatch: training on node1,node2 (main " in out
    assert jobs.started("node1", since) == [f"tinyzero-{job}-train-0"]
    assert jobs.started("node2", since) == [f"tinyzero-{job}-train-1"]
    run = jobs.runs / "two-nodes"
    verify_style_checks(run, 3)
    assert read_run(run)[0]["host"] == "node1"  # the main process ran on machine rank 0's node
    # both ranks trained: each wrote its RNG state into every checkpoint, and the weights moved
    for step in (1, 2, 3):
        assert {p.name for p in (run / f"checkpoint-{step}").glob("rng_state_*.pth")} == {"rng_state_0.pth",
                                                                                          "rng_state_1.pth"}
    before, after = weights(jobs.runs / "tiny-base"), weights(run)
    assert any(not before[k].equal(after[k]) for k in before)
    assert jobs.leftover_containers() == {}


CANCELLED: dict = {}  # what the scancel test leaves for the resubmission test


def test_scancel_leaves_the_run_interrupted_and_no_container(jobs):
    """scancel mid-run (after the second checkpoint): run.json says interrupted, not running, and no container
    is left on any node when Slurm reports the job gone."""
    args = [*RECIPE, "training.max_steps=5", "training.output_dir=/runs/cancelled"]
    run = jobs.runs / "cancelled"
    t0 = time.monotonic()
    _, job = jobs.submit(args, wait=False)
    deadline = time.monotonic() + 900
    while not (run / "checkpoint-2" / "trainer_state.json").is_file():
        assert job in jobs.cluster.jobs(), "the job ended before its second checkpoint:\n" + jobs.output(job)[-3000:]
        assert time.monotonic() < deadline, "no checkpoint-2 after 900 s"
        time.sleep(1)
    subprocess.run(["scancel", job], env=jobs.cluster.env, check=True)
    TIMINGS["scancel_to_job_gone"] = round(jobs.wait_gone(job, timeout=120), 1)
    TIMINGS["job_cancelled"] = round(time.monotonic() - t0, 1)
    assert jobs.leftover_containers() == {}
    status = read_run(run)[0]
    assert status["status"] == "interrupted", (status, jobs.output(job)[-3000:])
    assert "SIGTERM" in status["error"]
    assert 2 <= status["global_step"] < 5, status
    CANCELLED.update(args=args, run=run, step=status["global_step"])


def test_a_resubmission_resumes_from_the_last_checkpoint(jobs):
    """The same command again resumes from the checkpoint the cancelled job saved last, and no step is logged
    twice (metrics.jsonl read strictly). Two CPU processes, one per node: the optimizer state loads to "cpu", not
    transformers' "cpu:0" (train.trainer.load_optimizer_on_cpu)."""
    if not CANCELLED:
        pytest.skip("needs the run the scancel test cancels")
    args, run, step = CANCELLED["args"], CANCELLED["run"], CANCELLED["step"]
    t0 = time.monotonic()
    rc, job = jobs.submit(args)
    TIMINGS["job_resumed"] = round(time.monotonic() - t0, 1)
    out = jobs.output(job)
    assert f"resuming from /runs/cancelled/checkpoint-{step}" in out, out[-4000:]
    assert rc == 0, out[-4000:]
    status, _ = read_run(run)
    assert status["resumed_from"] and Path(status["resumed_from"]).name == f"checkpoint-{step}", status
    verify_style_checks(run, 5)
    assert jobs.leftover_containers() == {}


# When one node's training task fails, the other's ends within this bound: srun --kill-on-bad-exit=1 sends it
# SIGTERM, its trap gives the container `docker stop -t 20`, and slurmstepd kills the task after KillWait (30 s).
FAILED_NODE_BOUND = 90  # from the failing node's exit to the job gone, with room for two loaded cores


def test_a_node_whose_launch_fails_ends_the_job_with_a_line_naming_it(jobs):
    """The image is on node1 only (a node that missed the `docker load`, against the script's stated
    assumption): node2's `docker run` fails at once, node1's trainer would wait to be joined. srun's
    --kill-on-bad-exit=1 ends node1's task within FAILED_NODE_BOUND, the script names node2, and no container is
    left. Without the flag node1 waits for the rendezvous (torch's 600 s) and the test fails."""
    only_node1 = f"{CPU['IMAGE']}-only-on-node1"
    env = dict(os.environ, DOCKER_HOST=jobs.cluster.docker_host("node1"))
    subprocess.run(["docker", "tag", CPU["IMAGE"], only_node1], env=env, check=True)
    try:
        since = time.time()
        t0 = time.monotonic()
        _, job = jobs.submit([*RECIPE, "training.max_steps=3", "training.output_dir=/runs/failed-node"], wait=False,
                             IMAGE=only_node1)
        out_file = jobs.shared / f"tinyzero-grpo-{job}.out"
        failed = None
        while job in jobs.cluster.jobs():
            text = out_file.read_text(errors="replace") if out_file.is_file() else ""
            if failed is None and "train.sbatch: machine rank 1 on node2 failed" in text:
                failed = time.monotonic()
            waited = time.monotonic() - (failed or t0)
            if waited > (FAILED_NODE_BOUND if failed else 600):
                subprocess.run(["scancel", job], env=jobs.cluster.env, check=False)
                jobs.wait_gone(job, timeout=120)
                pytest.fail(f"the job still ran {waited:.0f} s after node2 failed (bound {FAILED_NODE_BOUND} s); "
                            f"cancelled:\n{jobs.output(job)[-3000:]}")
            time.sleep(1)
        gone = time.monotonic()
        TIMINGS["job_failed_node"] = round(gone - t0, 1)
        out = jobs.output(job)
        if failed is None:  # node2 failed and the job ended between two polls
            failed = gone
        TIMINGS["failed_node_to_job_gone"] = round(gone - failed, 1)
        lines = [line for line in out.splitlines() if line.startswith("train.sbatch: machine rank")]
        assert len(lines) == 1 and lines[0].startswith("train.sbatch: machine rank 1 on node2 failed (exit 125"), out
        assert "srun --kill-on-bad-exit=1 stops the other nodes' trainers" in lines[0]
        # node1's container may have started or not when srun ended its task (node2 fails within a second):
        # either way nothing is left of it
        assert jobs.started("node1", since) in ([], [f"tinyzero-{job}-train-0"])
        assert jobs.started("node2", since) == []
        assert jobs.leftover_containers() == {}
    finally:
        subprocess.run(["docker", "rmi", only_node1], env=env, check=False, capture_output=True)


@pytest.mark.parametrize("nodes,vllm_nodes", [(1, "1"), (2, "2")])
def test_a_node_list_without_a_training_node_exits_2_with_one_line(jobs, nodes, vllm_nodes):
    since = time.time()
    rc, job = jobs.submit(["+countdown=grpo-tiny-base"], nodes=nodes, VLLM_NODES=vllm_nodes)
    out = jobs.output(job)
    assert rc == 2, out
    assert out.strip().splitlines() == [f"train.sbatch: {nodes} node(s) and VLLM_NODES={vllm_nodes} leave none to "
                                        "train"]
    assert all(jobs.started(node, since) == [] for node in jobs.cluster.node_names())


def test_a_vllm_node_serves_until_the_trainers_stop_at_the_weight_sync(jobs):
    """VLLM_NODES=1 with vLLM's CPU build: the last node serves, the script waits for /health, then trains on
    the other node, whose trainer stops at trl's NCCL-only weight sync with one line (exit 2); the server's
    container is stopped with the job."""
    since = time.time()
    t0 = time.monotonic()
    rc, job = jobs.submit(["+countdown=grpo-qwen-2.5-3b-instruct", "+smoke=cpu", "data.source=generate",
                           "model.name_or_path=/runs/tiny-vllm", "training.use_vllm=true",
                           "training.output_dir=/runs/vllm-server"],
                          VLLM_NODES="1", IMAGE=images.CPU_VLLM, SERVER_WAIT="900")
    TIMINGS["job_vllm_server"] = round(time.monotonic() - t0, 1)
    out = jobs.output(job)
    server_ip = jobs.cluster.record["node_ips"]["node2"]
    waiting = out.find(f"train.sbatch: waiting for vLLM on node2 ({server_ip}:8000)")
    healthy = out.find('"GET /health HTTP/1.1" 200')
    training = out.find("train.sbatch: training on node1 (main ")
    assert 0 <= waiting < healthy < training, out[-5000:]
    assert jobs.started("node2", since) == [f"tinyzero-{job}-vllm"]
    assert jobs.started("node1", since) == [f"tinyzero-{job}-train-0"]  # one trainer, on the one training node
    lines = [line for line in out.splitlines() if line.startswith("tinyzero-trl train: training.vllm_mode=server")]
    assert len(lines) == 1 and f"the vLLM server at http://{server_ip}:8000 answered" in lines[0] and "NCCL" in lines[0]
    assert rc == 2, out[-3000:]
    assert jobs.leftover_containers() == {}
