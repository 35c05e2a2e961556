"""Stand-ins for base images that cannot be pulled: Debian from Debian's own mirror, as images.

Two substitutes, each a ``Spec``:

- ``CPU`` for ``python:3.11.14-slim-bookworm``: Debian bookworm with bookworm's own Python 3.11 (the real image
  has CPython 3.11 in /usr/local).
- ``CUDA`` for ``nvidia/cuda:13.0.2-devel-ubuntu24.04``: Debian trixie, bare like the real base (which has no
  Python: the CUDA Dockerfile's own apt step installs ``python3``, here trixie's 3.13, there Ubuntu's 3.12). No
  Python 3.12 is served by Debian's mirror; trixie's 3.13 has PyPI's CUDA wheels for the whole stack (torch
  2.13.0 cp313, vLLM's abi3). It has **no CUDA toolkit**: nothing is put in /usr/local/cuda (no nvcc, no headers),
  and nothing pretends to be one. ``CUDA.differences`` lists what the real base has that it lacks.

``debootstrap`` builds the root filesystem from Debian's package mirror and ``docker import`` turns it into an
image. Each carries this machine's CA bundle (the one the host's pip trusts), so pip inside the build reaches
PyPI through the same TLS setup the host uses.

Only the e2e check uses these; a user's ``docker build`` always starts from the pinned base.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from engine import INSTALL_HINT, MissingPrerequisite

MIRROR = "http://deb.debian.org/debian"
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Spec:
    """One substitute: the image it stands in for, the Debian suite and packages it is made of, its tag, ENV and
    CMD, where it keeps this machine's CA bundle, and what the real base has that it does not."""

    stands_in_for: str
    suite: str
    packages: tuple[str, ...]
    tag: str
    env: dict[str, str]
    cmd: str
    ca_path: str
    differences: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        return f"Debian {self.suite} from Debian's mirror ({', '.join(self.packages)}), this machine's CA bundle"


def _ca_env(path: str) -> dict[str, str]:
    """pip, Python's ssl and requests read the CA bundle from here."""
    return {"PIP_CERT": path, "SSL_CERT_FILE": path, "REQUESTS_CA_BUNDLE": path}


CA_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"

# What Dockerfile.cpu expects of python:3.11.14-slim-bookworm: python (3.11), venv, useradd, TLS roots; the
# environment that image sets (PATH, LANG), plus the CA bundle.
CPU = Spec(
    stands_in_for="python:3.11.14-slim-bookworm",
    suite="bookworm",
    packages=("python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd"),
    tag="tinyzero-trl-substitute/python:3.11-bookworm",
    env={"PATH": DEBIAN_PATH, "LANG": "C.UTF-8", **_ca_env(CA_IN_IMAGE)},
    cmd="python3",
    ca_path=CA_IN_IMAGE,
)

# nvidia/cuda:13.0.2-devel-ubuntu24.04 without NVIDIA's parts. Its PATH is kept (the Dockerfile prepends
# /opt/venv/bin to it, so the image's PATH reads the same); the two CUDA folders in it do not exist here.
# The CA bundle lives outside every Debian package's files, so the Dockerfile's `apt-get install ca-certificates`
# cannot regenerate it away.
CUDA_CA = "/opt/substitute-ca/ca-bundle.crt"
CUDA = Spec(
    stands_in_for="nvidia/cuda:13.0.2-devel-ubuntu24.04",
    suite="trixie",
    packages=("ca-certificates", "passwd"),
    tag="tinyzero-trl-substitute/cuda-base:trixie",
    env={"PATH": f"/usr/local/nvidia/bin:/usr/local/cuda/bin:{DEBIAN_PATH}", **_ca_env(CUDA_CA)},
    cmd="bash",
    ca_path=CUDA_CA,
    differences=(
        "Debian 13 (trixie, glibc 2.41, gcc 14 from build-essential) instead of Ubuntu 24.04 (noble, glibc 2.39, "
        "gcc 13); apt installs from Debian's archive, not Ubuntu's",
        "Python 3.13 (trixie's python3, installed by the Dockerfile's own apt step) instead of Ubuntu's 3.12: cp313 "
        "wheels of torch, triton and the other compiled packages instead of cp312, and numpy 2.4.6 instead of "
        "2.3.5 (constraints.txt's python_version marker)",
        "no CUDA toolkit: /usr/local/cuda does not exist (no nvcc 13.0, no CUDA headers or static libraries, no "
        "compat libraries), so the image's CUDA_HOME=/usr/local/cuda points nowhere: DeepSpeed's JIT ops and "
        "anything else that compiles CUDA code at run time cannot build, and ds_report says nvcc is missing",
        "none of NVIDIA's image environment: NVIDIA_REQUIRE_CUDA (the driver check, cuda>=13.0), "
        "NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES, CUDA_VERSION, LD_LIBRARY_PATH=/usr/local/nvidia/lib*",
        "no user `ubuntu` at uid 1000 (the Dockerfile's `userdel ubuntu` finds none; `zero` gets uid 1000 all the same)",
        f"this machine's CA bundle at {CUDA_CA}, with PIP_CERT, SSL_CERT_FILE and REQUESTS_CA_BUNDLE pointing at "
        "it: these three variables stay in the built image",
        "no digest to pin: a root filesystem made from the mirror on the day, `docker import`ed",
    ),
)

# The names the CPU path has always used.
SUITE, PACKAGES, TAG, IMAGE_ENV = CPU.suite, list(CPU.packages), CPU.tag, CPU.env


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


def debootstrap_command(rootfs: Path, suite: str = SUITE, mirror: str = MIRROR,
                        packages: tuple[str, ...] | list[str] = CPU.packages) -> list[str]:
    """The ``debootstrap`` command line for the root filesystem."""
    return ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(rootfs), mirror]


def import_command(tag: str = TAG, env: dict[str, str] | None = None, cmd: str = CPU.cmd) -> list[str]:
    """``docker import`` reading a tar of the root filesystem on stdin, with the image's ENV and CMD."""
    changes = [f"ENV {key}={value}" for key, value in (env or IMAGE_ENV).items()] + [f'CMD ["{cmd}"]']
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    return command + ["-", tag]


def make(work: Path, tag: str | None = None, log=print, spec: Spec = CPU) -> str:
    """Build the substitute base image for ``spec`` (reused when it already exists); return its tag."""
    tag = tag or spec.tag
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        log(f"substitute base {tag} already built here: reusing it")
        return tag
    if shutil.which("debootstrap") is None:
        raise MissingPrerequisite("the pinned base image cannot be pulled and debootstrap, which makes a substitute, "
                                  f"is not installed ({INSTALL_HINT})")
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / spec.suite
        log(f"debootstrap {spec.suite} from {MIRROR} into {rootfs} (a few minutes)")
        subprocess.run(debootstrap_command(rootfs, spec.suite, MIRROR, spec.packages), check=True,
                       stdout=subprocess.DEVNULL)
        bundle = host_ca_bundle()
        target = rootfs / spec.ca_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle, target)
        log(f"CA bundle: {bundle} -> {spec.ca_path}")
        # Package caches are not part of a slim image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(import_command(tag, spec.env, spec.cmd), stdin=tar.stdout, capture_output=True,
                                  text=True)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError(f"docker import failed: {imported.stderr.strip()}")
    log(f"substitute base built: {tag}")
    return tag
