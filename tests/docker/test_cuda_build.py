"""The CUDA image's build and run checks (docker/cuda_build.py, the CUDA substitute base, the Dockerfile's version
assert), without a Docker engine.

The build itself is ``nox -s docker -- cuda`` / ``python docker/e2e.py --cuda --build`` (tens of minutes and
several GB); these tests pin down what that run relies on: the version assert's one line, reading BuildKit's
log, the wrong-pin context, the substitute's spec, and that every check container runs with the network cut off.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
from .test_docker_files import instructions  # noqa: E402

sys.path.insert(0, str(DOCKER))
import checks  # noqa: E402
import cuda_build  # noqa: E402
import substitute_base  # noqa: E402

sys.path.remove(str(DOCKER))


# ---------------------------------------------------------------- the Dockerfile's version assert


def assert_code() -> str:
    """The Python the CUDA Dockerfile's last pip step runs to assert the stack (its `python -c "..."`)."""
    run = next(rest for keyword, rest in instructions(DOCKER / "Dockerfile")
               if keyword == "RUN" and "pinned stack" in rest)
    return re.search(r'python -c "(.*)"\s*$', run, re.S).group(1)


STUBS = {"vllm": "0.31.0", "deepspeed": "0.19.8", "transformers": "5.17.0", "trl": "1.16.0", "accelerate": "1.15.0",
         "tinyzero_trl": "0.1.0"}


def run_assert(tmp_path: Path, torch_version: str = "2.13.0+cu130", cuda: str | None = "13.0", **versions: str):
    """The Dockerfile's assert against stand-in packages with the given versions (first on sys.path)."""
    for name, version in (STUBS | versions).items():
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "__init__.py").write_text(f"__version__ = {version!r}\n")
    (tmp_path / "torch").mkdir(exist_ok=True)
    (tmp_path / "torch" / "__init__.py").write_text(f"__version__ = {torch_version!r}\nfrom . import version\n")
    (tmp_path / "torch" / "version.py").write_text(f"cuda = {cuda!r}\n")
    return subprocess.run([sys.executable, "-c", assert_code()], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)))


def test_version_assert_passes_the_pinned_stack(tmp_path):
    """torch 2.13.0 from PyPI (its CUDA 13.0 build) reports 2.13.0+cu130: the first real build failed on a plain
    '2.13.0' here, so the assert could never have passed on any base."""
    proc = run_assert(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("pinned stack OK: {'vllm': '0.31.0'")


def test_version_assert_fails_with_one_line_naming_the_package(tmp_path):
    """vllm 0.30.0 where the image pins 0.31.0: the build's last line says so, and nothing else."""
    proc = run_assert(tmp_path, vllm="0.30.0")
    assert proc.returncode == 1
    assert proc.stderr == "pinned stack MISMATCH: vllm 0.30.0 (the image pins 0.31.0)\n"


def test_version_assert_catches_another_torch_build(tmp_path):
    """What pip cannot see: a +cpu torch 2.13.0 behind TORCH_INDEX_URL satisfies torch==2.13.0 but is no CUDA build."""
    proc = run_assert(tmp_path, torch_version="2.13.0+cpu", cuda=None, trl="1.15.0")
    assert proc.returncode == 1
    assert proc.stderr == ("pinned stack MISMATCH: torch 2.13.0+cpu (the image pins 2.13.0+cu130), trl 1.15.0 (the "
                           "image pins 1.16.0), cuda None (the image pins 13.0)\n")


# ---------------------------------------------------------------- the substitute for nvidia/cuda


def test_cuda_substitute_is_bare_debian_trixie_without_a_cuda_toolkit():
    spec = substitute_base.CUDA
    command = substitute_base.debootstrap_command(Path("/r"), spec.suite, substitute_base.MIRROR, spec.packages)
    assert command[-3:] == ["trixie", "/r", substitute_base.MIRROR]
    # No Python (the Dockerfile's own apt step installs it, as on NVIDIA's base) and nothing posing as CUDA.
    assert not any(p.startswith(("python", "nvidia", "cuda")) for p in spec.packages)
    assert set(spec.packages) == {"ca-certificates", "passwd"}
    # The real base's PATH, so the image's reads the same; the CUDA folders in it do not exist in the substitute.
    assert spec.env["PATH"].startswith("/usr/local/nvidia/bin:/usr/local/cuda/bin:")
    # The CA bundle outside every Debian package's files: the Dockerfile's `apt-get install ca-certificates`
    # must not be able to regenerate it away.
    assert not spec.ca_path.startswith(("/etc/ssl", "/usr/share/ca-certificates", "/usr/local/share/ca-certificates"))
    assert {spec.env[k] for k in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")} == {spec.ca_path}
    named = " ".join(spec.differences)
    for difference in ("Python 3.13", "nvcc", "NVIDIA_REQUIRE_CUDA", "Ubuntu 24.04", "digest", "ubuntu"):
        assert difference in named, difference


def test_cuda_substitute_import_command_carries_its_env():
    spec = substitute_base.CUDA
    command = substitute_base.import_command(spec.tag, spec.env, spec.cmd)
    changes = [command[i + 1] for i, a in enumerate(command) if a == "--change"]
    assert f"ENV PIP_CERT={spec.ca_path}" in changes and 'CMD ["bash"]' in changes
    assert command[-2:] == ["-", "tinyzero-trl-substitute/cuda-base:trixie"]


def test_cpu_substitute_is_what_it_was():
    assert substitute_base.SUITE == "bookworm" and substitute_base.TAG == "tinyzero-trl-substitute/python:3.11-bookworm"
    assert substitute_base.debootstrap_command(Path("/r")) == [
        "debootstrap", "--variant=minbase", "--include=python3,python3-venv,python-is-python3,ca-certificates,passwd",
        "bookworm", "/r", substitute_base.MIRROR]


# ---------------------------------------------------------------- reading BuildKit's plain log

LOG = """\
#4 [ 1/13] FROM docker.io/tinyzero-trl-substitute/cuda-base:trixie
#4 DONE 0.0s

#5 [ 2/13] RUN apt-get update     && apt-get install -y --no-install-recommends         build-essential
#5 0.412 Get:1 http://deb.debian.org/debian trixie InRelease [140 kB]
#5 DONE 16.0s

#10 [ 6/13] RUN pip install --no-cache-dir -c constraints.txt --index-url "https://pypi.org/simple"  torch==2.13.0
#10 7.940   Downloading torch-2.13.0-cp313-cp313-manylinux_2_28_x86_64.whl (915.2 MB)
#10 8.940   Downloading nvidia_nvshmem_cu13-3.4.5-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl (60.4 MB)
#10 DONE 250.5s

#11 [ 7/13] RUN DS_ACCELERATOR=cuda pip install --no-cache-dir --no-build-isolation -c constraints.txt deepspeed==0.19.8
#11 CACHED

#13 [11/13] RUN pip install --no-cache-dir -c constraints.txt ".[vllm]"     && DS_ACCELERATOR=cuda python -c "import sys"
#13 30.1   Created wheel for deepspeed: filename=deepspeed-0.19.8-py3-none-any.whl size=1 sha256=ab
#13 61.2 pinned stack MISMATCH: vllm 0.30.0 (the image pins 0.31.0)
#13 ERROR: executor failed running [/bin/sh -c pip install ...]: exit code: 1
------
 > [11/13] RUN pip install ...:
------
"""


def test_parse_steps_gives_each_steps_time_in_order():
    steps = cuda_build.parse_steps(LOG)
    assert [s["step"] for s in steps] == ["1/13", "2/13", "6/13", "7/13", "11/13"]
    assert steps[1]["seconds"] == 16.0 and steps[1]["instruction"].startswith("RUN apt-get update && apt-get install")
    assert steps[3]["cached"] and steps[3]["seconds"] is None
    assert steps[4]["error"].startswith("executor failed running") and steps[4]["seconds"] is None


def test_failure_line_prefers_the_version_assert():
    step, line = cuda_build.failure_line(LOG, "vllm")
    assert step.startswith("[11/13] RUN pip install --no-cache-dir -c constraints.txt")
    assert line == "pinned stack MISMATCH: vllm 0.30.0 (the image pins 0.31.0)"


def test_failure_line_falls_back_to_pips_line_naming_the_package():
    log = """\
#10 [ 6/13] RUN pip install --no-cache-dir -c constraints.txt torch==2.13.0 && pip install vllm==0.31.0
#10 40.1 ERROR: Cannot install vllm==0.31.0 because these package versions have conflicting dependencies.
#10 40.1 The conflict is caused by:
#10 40.1     The user requested vllm==0.31.0
#10 40.1     The user requested (constraint) vllm==0.30.0
#10 ERROR: executor failed running [/bin/sh -c pip install]: exit code: 1
"""
    step, line = cuda_build.failure_line(log, "vllm")
    assert step.startswith("[6/13] RUN pip install") and line == "The user requested (constraint) vllm==0.30.0"
    assert cuda_build.failure_line("#4 [ 1/2] FROM x\n#4 DONE 0.1s\n", "vllm") == (None, None)


def test_downloaded_wheels_are_pips_own_file_names():
    assert cuda_build.downloaded_wheels(LOG) == [
        "torch-2.13.0-cp313-cp313-manylinux_2_28_x86_64.whl",
        "nvidia_nvshmem_cu13-3.4.5-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "deepspeed-0.19.8-py3-none-any.whl (built here from its sdist)"]


# ---------------------------------------------------------------- what the image reports and how it is run


def test_wheels_snippet_names_each_installed_wheel():
    """The snippet the report's wheel list comes from, run here on this venv."""
    out = subprocess.run([sys.executable, "-c", cuda_build.WHEELS_SNIPPET], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    wheels = json.loads(out.stdout)
    pytest_wheel = wheels["pytest"]
    assert re.fullmatch(r"pytest-[\d.]+-py3-none-any\.whl", pytest_wheel["wheel"]), pytest_wheel
    installed = {"torch": {"version": "2.13.0", "wheel": "torch-2.13.0-cp313-cp313-x.whl"},
                 "nvidia-nccl-cu13": {"version": "2.29.7", "wheel": "n.whl"},
                 "vllm": {"version": "0.31.0", "wheel": "vllm-0.31.0-cp38-abi3-linux_x86_64.whl"},
                 "deepspeed": {"version": "0.19.8", "wheel": "d.whl"}, "pyyaml": {"version": "6", "wheel": "y.whl"}}
    # pip downloaded another torch while it backtracked: that one is not what got installed.
    downloaded = ["torch-2.12.0-cp313-cp313-manylinux_2_28_x86_64.whl", "vllm-0.31.0-cp38-abi3-manylinux_2_28_x86_64.whl",
                  "deepspeed-0.19.8-py3-none-any.whl (built here from its sdist)"]
    assert cuda_build.key_wheels(installed, downloaded) == {
        "deepspeed": "deepspeed-0.19.8-py3-none-any.whl (built here from its sdist)",
        "nvidia-nccl-cu13": "n.whl (from its installed WHEEL tags)",
        "torch": "torch-2.13.0-cp313-cp313-x.whl (from its installed WHEEL tags)",
        "vllm": "vllm-0.31.0-cp38-abi3-manylinux_2_28_x86_64.whl"}


def test_every_cuda_check_container_has_no_network(monkeypatch, tmp_path):
    """Nothing a user expects baked in may download at run time: each check runs with --network none."""
    seen: list[list[str]] = []

    def fake_run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, "usage: tinyzero-trl x\nDeepSpeed general environment info", "")

    monkeypatch.setattr(checks.subprocess, "run", fake_run)
    runner = cuda_build.CudaRunner("img", tmp_path / "runs", log=lambda message: None)
    runner.user = (os.getuid(), os.getgid())
    runner.cuda_checks({})
    runner.quick_checks(host_commands=None)
    assert len(seen) >= 6
    for command in seen:
        assert command[command.index("--network") + 1] == "none", command
    assert checks.Runner("img", tmp_path).network == "host"  # the CPU image's checks are unchanged


# ---------------------------------------------------------------- the wrong-pin build's context


def test_with_pin_replaces_every_line_of_that_package():
    text = 'numpy==2.4.6; python_version != "3.12"\n# a comment on numpy\nnumpy==2.3.5; python_version == "3.12"\ntorch==2.13.0\n'
    assert cuda_build.with_pin(text, "numpy==1.0") == "# a comment on numpy\ntorch==2.13.0\nnumpy==1.0\n"
    assert cuda_build.with_pin("torch==2.13.0\n", "vllm==0.30.0") == "torch==2.13.0\nvllm==0.30.0\n"
    assert cuda_build.with_pin("Torch==2.13.0\n", "torch==2.12.0") == "torch==2.12.0\n"


def test_context_copy_holds_what_the_dockerfile_copies(tmp_path):
    ctx = cuda_build.context_copy(tmp_path / "ctx")
    for needed in ("docker/Dockerfile", "docker/entrypoint.sh", ".dockerignore", "constraints.txt", "pyproject.toml",
                   "README.md", "src/tinyzero_trl/cli.py", "reproductions/countdown-tiny/expected.json"):
        assert (ctx / needed).is_file(), needed
    assert not (ctx / ".git").exists() and not (ctx / "tests").exists() and not (ctx / ".venv").exists()
    assert os.access(ctx / "docker" / "entrypoint.sh", os.X_OK)
