"""What the e2e check builds from: the Dockerfile's own build-arg defaults, or local stand-ins where those
cannot be reached (a base that cannot be pulled, a torch index that does not answer), said out loud.

Stdlib only, like the rest of docker/*.py: it runs before any project environment exists.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path


def build_arg_default(dockerfile: Path, name: str) -> str:
    """The default of ``ARG name=...`` in ``dockerfile`` (the first one: a global ARG before FROM counts)."""
    match = re.search(rf"^ARG {re.escape(name)}=(\S+)\s*$", dockerfile.read_text(encoding="utf-8"), re.M)
    if not match:
        raise ValueError(f"{dockerfile}: no `ARG {name}=<default>`")
    return match.group(1)


def pinned(constraints: Path, package: str) -> str:
    """The exact version ``constraints.txt`` pins ``package`` to."""
    match = re.search(rf"^{re.escape(package)}==(\S+)\s*$", constraints.read_text(encoding="utf-8"), re.M | re.I)
    if not match:
        raise ValueError(f"{constraints}: no `{package}==` pin")
    return match.group(1)


def image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def pull(image: str, timeout: float = 300) -> tuple[bool, str]:
    """``docker pull image``: (pulled, the engine's last line)."""
    try:
        out = subprocess.run(["docker", "pull", image], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"no answer in {timeout:.0f} s"
    lines = (out.stdout + out.stderr).strip().splitlines()
    return out.returncode == 0, lines[-1] if lines else ""


def index_answers(index_url: str, project: str = "torch", timeout: float = 15) -> tuple[bool, str]:
    """Whether the PEP 503 index serves a page for ``project`` (what pip asks first)."""
    url = f"{index_url.rstrip('/')}/{project}/"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"{url}: HTTP {response.status}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return False, f"{url}: {getattr(err, 'reason', err)}"


def find_links_dirs() -> list[Path]:
    """The local wheel folders this machine's pip is configured with ($PIP_FIND_LINKS, pip config)."""
    values = [os.environ.get("PIP_FIND_LINKS", "")]
    for key in ("global.find-links", "install.find-links"):
        try:
            out = subprocess.run([sys.executable, "-m", "pip", "config", "get", key], capture_output=True,
                                 text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0:
            values.append(out.stdout.strip())
    dirs = []
    for value in values:
        for item in value.split():
            path = Path(item.removeprefix("file://"))
            if path.is_dir() and path not in dirs:
                dirs.append(path)
    return dirs


def local_torch_wheel(version: str, python_tag: str, dirs: list[Path]) -> Path | None:
    """A ``torch-VERSION+cpu`` wheel for ``python_tag`` (e.g. cp311) on x86_64 Linux in one of ``dirs``."""
    for folder in dirs:
        for wheel in sorted(folder.glob(f"torch-{version}+cpu-{python_tag}-{python_tag}-*linux*_x86_64.whl")):
            return wheel
    return None


PORT = 38011


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class LocalIndex:
    """A one-project PEP 503 index on 127.0.0.1 serving ``wheel`` (``with LocalIndex(wheel, root) as url:``).

    Builds run with ``--network host``, so pip inside them reaches this loopback address; pip treats
    127.0.0.0/8 as a secure origin, so plain HTTP needs no ``--trusted-host``.
    """

    def __init__(self, wheel: Path, root: Path, project: str = "torch"):
        self.wheel, self.root, self.project = wheel, root, project
        self.server: http.server.ThreadingHTTPServer | None = None

    def __enter__(self) -> str:
        folder = self.root / self.project
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.wheel.name
        if not target.exists():
            target.symlink_to(self.wheel.resolve())
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        # A fixed port where free: the URL is a build arg, and a new value would rebuild every layer after it.
        try:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), handler)
        except OSError:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
