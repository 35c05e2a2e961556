"""What the Docker path needs of a machine, said in one line when missing (issue 32: a docker CLI without buildx
ended docker/e2e.py in a raw traceback), and the one tag scheme its docs run."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _fake_docker(folder: Path, version: str) -> Path:
    """A docker CLI of ``version`` with no buildx plugin: ``docker buildx version`` fails as such a CLI's does."""
    path = folder / "docker"
    path.write_text(f'#!/bin/sh\ncase "$1" in\n  buildx) echo "docker: \'buildx\' is not a docker command." >&2; '
                    f'exit 1 ;;\n  version) echo "{version}" ;;\n  *) exit 1 ;;\nesac\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_docker_cli_without_buildx_is_named_in_one_line(tmp_path):
    cli = _fake_docker(tmp_path, "27.3.1")
    env = {**os.environ, "TINYZERO_DOCKER_CLI": str(cli)}
    proc = subprocess.run([sys.executable, str(ROOT / "docker" / "e2e.py"), "--no-reproduce", "--state",
                           str(tmp_path / "state")], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[e2e] missing prerequisite: no docker CLI that builds with "
                                                   "BuildKit"), proc.stderr
    assert "buildx" in lines[0] and "apt-get install -y docker.io debootstrap" in lines[0]


def test_the_readme_names_the_prerequisites_and_restarts_the_private_engine_as_e2e_starts_it():
    readme = (ROOT / "docker" / "README.md").read_text()
    assert "## Prerequisites" in readme and "apt-get install -y docker.io debootstrap" in readme
    sys.path.insert(0, str(ROOT / "docker"))
    try:
        import engine
    finally:
        sys.path.remove(str(ROOT / "docker"))
    shown = re.search(r"\ndockerd (.*?) > ", readme.replace("\\\n", " "), re.S).group(1).split()
    flags = [a.replace(str(Path("/S")), "$S") for a in engine.dockerd_command(Path("/S"))[1:]]
    assert [a for a in shown if a] == flags
