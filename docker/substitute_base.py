"""A stand-in for a base image that cannot be pulled: Debian bookworm from Debian's own mirror, as an image.

``python:3.11.14-slim-bookworm`` is Debian bookworm with CPython 3.11 in /usr/local; where no container
registry answers, ``debootstrap`` builds bookworm's own Python 3.11 from Debian's package mirror instead, and
``docker import`` turns that root filesystem into an image. It carries this machine's CA bundle (the one the
host's pip trusts), so pip inside the build reaches PyPI through the same TLS setup the host uses.

Only the e2e check uses this; a user's ``docker build`` always starts from the pinned base.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

from engine import INSTALL_HINT, MissingPrerequisite

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the Dockerfiles expect of the real base: python (3.11), venv, useradd, TLS roots.
PACKAGES = ["python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd"]
TAG = "tinyzero-trl-substitute/python:3.11-bookworm"
CA_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
# The environment the real python image sets (PATH, LANG), plus the CA bundle for pip and Python's ssl.
IMAGE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PIP_CERT": CA_IN_IMAGE,
    "SSL_CERT_FILE": CA_IN_IMAGE,
    "REQUESTS_CA_BUNDLE": CA_IN_IMAGE,
}


def host_ca_bundle() -> Path:
    """The CA bundle this machine's pip trusts: $PIP_CERT, else ``pip config get global.cert``, else
    Python's default, else Debian's path."""
    candidates = [os.environ.get("PIP_CERT")]
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.cert"], capture_output=True,
                             text=True, timeout=60)
        candidates.append(out.stdout.strip() if out.returncode == 0 else None)
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += [ssl.get_default_verify_paths().cafile, CA_IN_IMAGE]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("no CA bundle found (set PIP_CERT to the bundle pip should trust)")


def debootstrap_command(rootfs: Path, suite: str = SUITE, mirror: str = MIRROR) -> list[str]:
    """The ``debootstrap`` command line for the root filesystem."""
    return ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(rootfs), mirror]


def import_command(tag: str = TAG) -> list[str]:
    """``docker import`` reading a tar of the root filesystem on stdin, with the image's ENV and CMD."""
    changes = [f"ENV {key}={value}" for key, value in IMAGE_ENV.items()] + ['CMD ["python3"]']
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    return command + ["-", tag]


def make(work: Path, tag: str = TAG, log=print) -> str:
    """Build the substitute base image ``tag`` (reused when it already exists); return the tag."""
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        log(f"substitute base {tag} already built here: reusing it")
        return tag
    if shutil.which("debootstrap") is None:
        raise MissingPrerequisite("the pinned base image cannot be pulled and debootstrap, which makes a substitute, "
                                  f"is not installed ({INSTALL_HINT})")
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / SUITE
        log(f"debootstrap {SUITE} from {MIRROR} into {rootfs} (a few minutes)")
        subprocess.run(debootstrap_command(rootfs), check=True, stdout=subprocess.DEVNULL)
        bundle = host_ca_bundle()
        shutil.copyfile(bundle, rootfs / CA_IN_IMAGE.lstrip("/"))
        log(f"CA bundle: {bundle} -> {CA_IN_IMAGE}")
        # Package caches are not part of a slim image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(import_command(tag), stdin=tar.stdout, capture_output=True, text=True)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError(f"docker import failed: {imported.stderr.strip()}")
    log(f"substitute base built: {tag}")
    return tag
