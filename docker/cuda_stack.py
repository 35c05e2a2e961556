"""The CUDA image's Python stack, resolved for its base's Python where that base cannot be built here.

    python docker/cuda_stack.py [WORK_DIR]

``nvidia/cuda:13.0.2-devel-ubuntu24.04`` has Python 3.12; with no registry and no 3.12 in Debian, this asks
pip to resolve everything ``docker/Dockerfile`` installs for CPython 3.12 on manylinux x86_64 (glibc 2.39, as
in Ubuntu 24.04), with ``pip install --dry-run --report``, against PyPI alone (this machine's pip config and
local wheels are switched off, as inside the image): torch and setuptools, vllm, DeepSpeed's own requirements
(read from its sdist, which publishes no wheel), and the project's wheel with its ``[vllm]`` extra, all under
``-c constraints.txt``. It then checks the pins the Dockerfile's build asserts.

What this does not do, and says so in its result: install or import anything for 3.12, build DeepSpeed's sdist,
check the base digest, nvcc, or a GPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from substitute_base import host_ca_bundle  # noqa: E402

PYTHON = "3.12"
GLIBC_MINOR = 39  # Ubuntu 24.04
INDEX = "https://pypi.org/simple"
# What docker/Dockerfile's build asserts (its `want`), besides DeepSpeed, which comes from its sdist.
WANT = {"torch": "2.13.0", "vllm": "0.31.0", "transformers": "5.17.0", "trl": "1.16.0", "accelerate": "1.15.0"}
DEEPSPEED = "0.19.8"
NOT_CHECKED = [
    "nothing was installed or imported under Python 3.12 (no 3.12 base can be made here): only resolved",
    f"DeepSpeed {DEEPSPEED} is an sdist: its requirements were resolved, its build (DS_BUILD_OPS=0) was not run",
    "the nvidia/cuda base image and its digest (no registry), apt packages of Ubuntu 24.04, nvcc",
    "a GPU: no CUDA kernel, vLLM engine or DeepSpeed op ran",
]


def clean_pip_env() -> dict[str, str]:
    """This environment without pip settings or config files: only what a fresh image's pip would see."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


# pip evaluates environment markers (``numpy==X; python_version == "3.12"``, a dependency's
# ``; python_version <= "3.12"``) against the interpreter it runs on, even under --python-version: a 3.11 pip
# would resolve 3.11's answers. This runs pip itself with the marker environment of Ubuntu 24.04's CPython.
# (.ci/resolve_install.py uses the same shim for the README's install on every promised Python.)
TARGET_MARKERS = {"python_version": PYTHON, "python_full_version": "3.12.3", "implementation_version": "3.12.3"}


def pip_with_markers(markers: dict[str, str]) -> str:
    """``python -c`` code that runs pip with ``markers`` in place of this interpreter's marker environment."""
    return ("import sys; from pip._vendor.packaging import markers; host = markers.default_environment; "
            f"markers.default_environment = lambda: {{**host(), **{markers!r}}}; "
            "from pip._internal.cli.main import main; sys.exit(main())")


PIP_FOR_TARGET = pip_with_markers(TARGET_MARKERS)


# The interpreter whose pip runs the resolution: a venv of its own with the newest pip (set by resolve()), so
# the answer does not depend on the caller's pip (23.x could not report which names had no wheel).
PIP_PYTHON = sys.executable


def pip(*args: str, cert: Path, target: bool = False) -> list[str]:
    """A pip command line on PyPI alone; ``target``: with the 3.12 marker environment."""
    runner = ["-c", PIP_FOR_TARGET] if target else ["-m", "pip"]
    return [PIP_PYTHON, *runner, *args, "--cert", str(cert), "--index-url", INDEX]


def fresh_pip(venv: Path, cert: Path, env: dict) -> str:
    """A venv at ``venv`` with the newest pip from PyPI; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip", "--cert", str(cert),
                    "--index-url", INDEX], env=env, check=True)
    return python


def platforms(glibc_minor: int = GLIBC_MINOR) -> list[str]:
    """Every manylinux tag a glibc 2.<minor> x86_64 system accepts (pip does not expand --platform itself)."""
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 16, -1)]
    return tags + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def deepspeed_requirements(sdist: Path) -> list[str]:
    """DeepSpeed's install requirements from its sdist: requirements/requirements.txt, plus what setup.py
    appends (nvidia-ml-py when the accelerator is CUDA, as in the image: DS_ACCELERATOR=cuda)."""
    with tarfile.open(sdist) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        reqs = tar.extractfile(f"{prefix}/requirements/requirements.txt").read().decode()
        setup = tar.extractfile(f"{prefix}/setup.py").read().decode()
    lines = [line.split("#")[0].strip() for line in reqs.splitlines()]
    return [line for line in lines if line] + re.findall(r"install_requires\.append\(['\"]([^'\"]+)['\"]\)", setup)


def resolve_command(requirements: list[str], report: Path, cert: Path, wheels: Path) -> list[str]:
    """The ``pip install --dry-run --report`` line for CPython 3.12 on manylinux x86_64 (``wheels``: pure
    wheels built here from sdists, which a dry run for another platform cannot build itself)."""
    # --target (nothing is written: --dry-run): pip before 23.3 refuses --platform and friends without it.
    return pip("install", "--dry-run", "--target", str(report.parent / "target"), "--report", str(report),
               *target_args(),
               "--find-links", str(wheels), "-c", str(ROOT / "constraints.txt"), *requirements, cert=cert,
               target=True)


def sdist_only(stderr: str) -> list[str]:
    """The names pip found no wheel of (``--only-binary=:all:``): "no matching distributions ... : NAME"."""
    match = re.search(r"no matching distributions available for your environment:\n((?:[ \t]+\S+[ \t]*(?:\n|$))+)", stderr)
    return match.group(1).split() if match else []


def target_args() -> list[str]:
    """pip's options for CPython 3.12 on manylinux x86_64 (wheels only: pip cannot build for another Python)."""
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON]
    for tag in platforms():
        args += ["--platform", tag]
    return args


def has_target_wheel(name: str, constraints: Path, cert: Path, env: dict) -> bool:
    """Whether PyPI has a 3.12 manylinux wheel of ``name`` at its pin: then pip's "no matching distribution"
    means the pins conflict, not that only an sdist exists."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(pip("download", "--quiet", "--no-deps", "--dest", tmp, *target_args(), "-c",
                                 str(constraints), name, cert=cert, target=True), env=env, capture_output=True)
    return out.returncode == 0


def conflict(output: str) -> str:
    """pip's own account of a failed resolution: from "The conflict is caused by" to the first blank line."""
    match = re.search(r"The conflict is caused by:\n(.*?)(?:\n\n|$)", output, re.S)
    if match:
        return " | ".join(line.strip() for line in match.group(1).splitlines())
    errors = [line.strip() for line in output.splitlines() if line.startswith("ERROR:")]  # e.g. Requires-Python
    return " | ".join(errors) if errors else output.strip()[-2000:]


def pure_wheel(name: str, constraints: Path, wheels: Path, cert: Path, env: dict) -> str | None:
    """Build ``name`` at its constraints.txt pin into ``wheels``; a problem unless it is pure Python (a wheel
    that fits any platform is exactly what the image's pip would build from the same sdist)."""
    before = set(wheels.glob("*.whl"))
    out = subprocess.run(pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), "-c", str(constraints),
                             name, cert=cert), env=env, capture_output=True, text=True)
    built = set(wheels.glob("*.whl")) - before
    if out.returncode != 0 or not built:
        return f"{name}: no wheel on PyPI and its sdist did not build here: {out.stderr.strip()[-300:]}"
    platform_specific = [w.name for w in built if not w.name.endswith("-none-any.whl")]
    if platform_specific:
        for wheel in built:
            wheel.unlink()
        return f"{name}: only an sdist, and it builds a platform wheel here ({platform_specific}): not resolvable " \
               "for 3.12 without a 3.12 interpreter"
    return None


def check(resolved: dict[str, str], constraints: Path) -> list[str]:
    """Problems: a pin the image's build asserts that did not come out, or a constraints.txt pin not kept."""
    problems = [f"{name}: resolved {resolved.get(name)}, the image wants {want}"
                for name, want in WANT.items() if resolved.get(name) != want]
    pins: dict[str, set[str]] = {}  # a package may have one pin per Python version (environment markers)
    for line in constraints.read_text().splitlines():
        name, sep, rest = line.split("#")[0].strip().partition("==")
        if sep:
            pins.setdefault(re.sub(r"[-_.]+", "-", name).lower(), set()).add(rest.split(";")[0].strip())
    for key, versions in pins.items():
        if key in resolved and resolved[key] not in versions:
            problems.append(f"{key}: resolved {resolved[key]}, constraints.txt pins {' or '.join(sorted(versions))}")
    cuda = sorted(f"{n}=={v}" for n, v in resolved.items() if n.startswith("nvidia-cuda-runtime"))
    if not any("==13.0" in c for c in cuda):
        problems.append(f"no CUDA 13.0 runtime wheel among {cuda or 'none'}")
    return problems


def resolve(work: Path, log=print) -> dict:
    """Resolve the CUDA image's stack for CPython 3.12; return the result (versions, problems, not checked)."""
    shutil.rmtree(work, ignore_errors=True)  # nothing left over from an earlier resolution
    work.mkdir(parents=True)
    cert, env = host_ca_bundle(), clean_pip_env()
    global PIP_PYTHON
    PIP_PYTHON = fresh_pip(work / "pip-venv", cert, env)
    pip_version = subprocess.run([PIP_PYTHON, "-m", "pip", "--version"], capture_output=True, text=True,
                                 env=env).stdout.split()[1]

    def failed(problem: str) -> dict:
        log(f"CUDA stack: PROBLEM {problem}")
        return {"python": PYTHON, "resolved": {}, "problems": [problem], "not_checked": NOT_CHECKED}

    wheels, sdists = work / "wheels", work / "sdists"
    log(f"CUDA stack: pip {pip_version}; the project's wheel and DeepSpeed {DEEPSPEED}'s sdist (PyPI only, "
        "pip config off)")
    subprocess.run(pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT), cert=cert),
                   env=env, check=True)
    subprocess.run(pip("download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", str(sdists),
                       f"deepspeed=={DEEPSPEED}", cert=cert), env=env, check=True)
    project = max(wheels.glob("tinyzero_trl-*.whl"), key=lambda p: p.stat().st_mtime)
    ds_reqs = deepspeed_requirements(next(sdists.glob(f"deepspeed-{DEEPSPEED}.tar.gz")))
    # What docker/Dockerfile installs, step by step, in one resolution.
    requirements = ["setuptools==80.9.0", f"torch=={WANT['torch']}", f"vllm=={WANT['vllm']}", *ds_reqs, f"{project}[vllm]"]
    report = work / "resolution.json"
    log(f"CUDA stack: resolving for CPython {PYTHON}, manylinux_2_{GLIBC_MINOR}_x86_64: {' '.join(requirements)}")
    built_here: list[str] = []
    for _attempt in range(10):
        out = subprocess.run(resolve_command(requirements, report, cert, wheels), env=env, capture_output=True,
                             text=True)
        # Not --quiet: pip says which names had no wheel only in its explanation of the conflict.
        missing = [name for name in sdist_only(out.stdout + out.stderr) if name not in built_here]
        if out.returncode == 0 or not missing:
            break
        for name in missing:
            if has_target_wheel(name, ROOT / "constraints.txt", cert, env):
                return failed(f"the pins conflict for Python {PYTHON}: {conflict(out.stdout + out.stderr)}")
            log(f"CUDA stack: {name} publishes only an sdist: building its wheel here")
            problem = pure_wheel(name, ROOT / "constraints.txt", wheels, cert, env)
            if problem:
                return failed(problem)
            built_here.append(name)
    if out.returncode != 0:
        return failed(f"pip could not resolve for Python {PYTHON}: {conflict(out.stdout + out.stderr)}")
    items = json.loads(report.read_text())["install"]
    resolved = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"] for i in items}
    files = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["download_info"]["url"].rsplit("/", 1)[-1]
             for i in items}
    problems = check(resolved, ROOT / "constraints.txt")
    result = {
        "python": PYTHON, "platform": f"manylinux_2_{GLIBC_MINOR}_x86_64", "index": INDEX, "pip": pip_version,
        "key_versions": {name: resolved.get(name) for name in [*WANT, "triton"]} | {"deepspeed": f"{DEEPSPEED} (sdist)"},
        "cuda_wheels": {n: v for n, v in resolved.items() if n.startswith("nvidia-")},
        "files": {name: files[name] for name in ("torch", "vllm", "triton") if name in files},
        "deepspeed_requirements": ds_reqs, "sdist_only_built_here": built_here,
        "packages": len(resolved), "resolved": resolved, "problems": problems, "not_checked": NOT_CHECKED,
    }
    log(f"CUDA stack: {len(resolved)} packages resolved; key versions {result['key_versions']}")
    for problem in problems:
        log(f"CUDA stack: PROBLEM {problem}")
    return result


if __name__ == "__main__":
    work_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/var/tmp/tinyzero-docker/cuda-stack")
    outcome = resolve(work_dir)
    (work_dir / "result.json").write_text(json.dumps(outcome, indent=2) + "\n")
    sys.exit(1 if outcome["problems"] else 0)
