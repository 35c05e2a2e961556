"""A Docker engine for the e2e check: the one already running, or a private ``dockerd`` started and stopped here.

The private daemon follows this machine's rules: no bridge network and no iptables rules
(``--bridge=none --iptables=false --ip6tables=false``), so every build and container uses ``--network host``.
It listens on its own socket with its own data and exec roots, so it never collides with a system daemon or
with another session's; ``DOCKER_HOST`` points the ``docker`` CLI (ours and every child's) at it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

# What the e2e check needs of this machine, named in one line each when missing (docker/README.md, Prerequisites).
INSTALL_HINT = "on Debian/Ubuntu: apt-get install -y docker.io debootstrap"


class MissingPrerequisite(RuntimeError):
    """Something this machine lacks for the e2e check: e2e.py says it in one line and exits 2, no traceback."""


def reachable(timeout: float = 60) -> bool:
    """True when a docker CLI exists and ``docker info`` reaches an engine (through ``DOCKER_HOST`` if set)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def buildkit_client() -> str:
    """A docker CLI whose ``docker build`` uses BuildKit (the Dockerfiles' COPY --chmod needs it): one with the
    buildx plugin, or an Engine-20.10-era CLI, which builds with its own BuildKit client under DOCKER_BUILDKIT=1.
    CLIs from 23 on without buildx fall back to the legacy builder. $TINYZERO_DOCKER_CLI, when set, is the only
    one tried; else the one on PATH, then /usr/bin/docker."""
    chosen = os.environ.get("TINYZERO_DOCKER_CLI")
    candidates = [chosen] if chosen else [shutil.which("docker"), "/usr/bin/docker"]
    tried = []
    for cli in dict.fromkeys(c for c in candidates if c and Path(c).is_file()):
        if subprocess.run([cli, "buildx", "version"], capture_output=True).returncode == 0:
            return cli
        out = subprocess.run([cli, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
        major = re.match(r"\d+", out.stdout.strip())
        if major and int(major.group()) < 23:
            return cli
        tried.append(f"{cli} ({out.stdout.strip() or '?'}, no buildx)")
    if not tried:
        raise MissingPrerequisite(f"no docker CLI found ({INSTALL_HINT})")
    raise MissingPrerequisite(f"no docker CLI that builds with BuildKit: {'; '.join(tried)}. Install the buildx "
                              f"plugin (docker-buildx-plugin), or Debian's docker.io CLI ({INSTALL_HINT}), or point "
                              "TINYZERO_DOCKER_CLI at one")


def dockerd_command(state: Path) -> list[str]:
    """The private daemon's command line: this machine's network rules, everything else under ``state``."""
    return [
        "dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",
        "--host", f"unix://{state / 'docker.sock'}",
        "--data-root", str(state / "data"),
        "--exec-root", str(state / "exec"),
        "--pidfile", str(state / "dockerd.pid"),
    ]


def mounts_under(folder: Path) -> list[str]:
    """Mount points at or below ``folder``, deepest first (from /proc/self/mounts; octal escapes decoded)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    root = str(folder.resolve())
    points = [line.split()[1].encode().decode("unicode_escape") for line in lines if len(line.split()) > 1]
    return sorted((p for p in points if p == root or p.startswith(root + "/")), key=len, reverse=True)


class PrivateEngine:
    """``with PrivateEngine(state) as engine:`` starts dockerd, points ``DOCKER_HOST`` at it, and stops it
    (and only it) on the way out, even after an error."""

    def __init__(self, state: Path, log=print, start_timeout: float = 120):
        self.state = state
        self.log = log
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self._old_host: str | None = None

    def __enter__(self) -> PrivateEngine:
        if shutil.which("dockerd") is None:
            raise MissingPrerequisite(f"no Docker engine answers and there is no dockerd to start ({INSTALL_HINT})")
        if os.geteuid() != 0:
            raise MissingPrerequisite("no Docker engine answers, and starting a private dockerd needs root: start "
                                      "your Docker engine (or run as root with --start-engine)")
        self.state.mkdir(parents=True, exist_ok=True)
        logfile = self.state / "dockerd.log"
        self._old_host = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = f"unix://{self.state / 'docker.sock'}"
        with open(logfile, "ab") as out:
            # A session of its own: a Ctrl-C meant for us reaches dockerd only through __exit__.
            self.process = subprocess.Popen(dockerd_command(self.state), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while not reachable(timeout=10):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                tail = logfile.read_text(errors="replace").splitlines()[-5:]
                raise RuntimeError("dockerd did not come up; last lines of " f"{logfile}:\n" + "\n".join(tail))
            time.sleep(1)
        self.log(f"started a private dockerd (pid {self.process.pid}, DOCKER_HOST={os.environ['DOCKER_HOST']}, "
                 f"log {logfile})")
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # dockerd stops its containers and its containerd
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log(f"stopped the dockerd started here (pid {self.process.pid})")
            for point in mounts_under(self.state):
                # dockerd leaves exec/netns/default mounted; without this the state folder cannot be removed.
                subprocess.run(["umount", point], capture_output=True)
        if self._old_host is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = self._old_host
