"""The e2e check's own parts (docker/e2e.py and the modules it uses), without a Docker engine.

The image itself is built and run by ``nox -s docker`` and CI (``python docker/e2e.py --start-engine``); these
tests pin down what those runs rely on: the command lines, the entrypoint routing every subcommand the CLI
lists, that the checks catch a broken image, and the CUDA stack's resolution logic.
"""

from __future__ import annotations

import importlib
import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def mods():
    """docker/*.py as modules (they are scripts beside the Dockerfiles, not a package)."""
    sys.path.insert(0, str(DOCKER))
    try:
        yield {name: importlib.import_module(name)
               for name in ("checks", "cuda_stack", "engine", "sources", "substitute_base", "nox_docker")}
    finally:
        sys.path.remove(str(DOCKER))


def cli_commands() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "tinyzero_trl.cli", "--commands"], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def host_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("TINYZERO_RUNS", None)
    return env | extra


def entrypoint(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ENTRYPOINT), *args], cwd=ROOT, env=env or host_env(), capture_output=True,
                          text=True, timeout=300)


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# ---------------------------------------------------------------- the entrypoint routes the CLI's own list


def test_cli_lists_record_and_tiny_base():
    assert {"reproduce", "verify", "list", "record", "tiny-base"} <= set(cli_commands())


def test_entrypoint_routes_every_subcommand_the_cli_lists():
    for name in cli_commands():
        proc = entrypoint(name, "--help")
        assert proc.returncode == 0, f"{name}: {proc.stderr[-300:]}"
        assert f"usage: tinyzero-trl {name}" in proc.stdout, name


def test_entrypoint_takes_the_list_from_the_cli_not_its_own(tmp_path):
    """A CLI that lists other names: the entrypoint follows it, so no list in the script can drift."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_script(bin_dir / "tinyzero-trl", '#!/usr/bin/env bash\n'
                 'if [[ $* == --commands ]]; then printf "alpha\\nbeta-gamma\\n"; exit 0; fi\n'
                 'echo "cli got: $*"; exit 5\n')
    env = host_env(PATH=f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    routed = entrypoint("beta-gamma", "--x", env=env)
    assert (routed.returncode, routed.stdout) == (5, "cli got: beta-gamma --x\n")
    # `reproduce` is not in this CLI's list: it runs as a plain command, which does not exist.
    plain = entrypoint("reproduce", env=env)
    assert plain.returncode == 127 and "cli got" not in plain.stdout


# ---------------------------------------------------------------- command lines


def test_docker_run_command_line(mods, tmp_path):
    command = mods["checks"].run_command("img:1", ["verify", "countdown-tiny"], tmp_path, (1000, 1000))
    assert command == ["docker", "run", "--rm", "--network", "host", "--user", "1000:1000",
                       "--volume", f"{tmp_path}:/runs", "img:1", "verify", "countdown-tiny"]


def test_mapped_user_is_1000_as_root_else_our_own(mods):
    expected = (1000, 1000) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    assert mods["checks"].mapped_user() == expected


def test_private_dockerd_keeps_this_machines_network_rules(mods, tmp_path):
    command = mods["engine"].dockerd_command(tmp_path)
    assert command[0] == "dockerd"
    for flag in ("--bridge=none", "--iptables=false", "--ip6tables=false"):
        assert flag in command
    # Its own socket, data and exec roots: never the system daemon's.
    for flag, value in (("--host", f"unix://{tmp_path}/docker.sock"), ("--data-root", str(tmp_path / "data")),
                        ("--exec-root", str(tmp_path / "exec")), ("--pidfile", str(tmp_path / "dockerd.pid"))):
        assert command[command.index(flag) + 1] == value


def test_substitute_base_command_lines(mods):
    sub = mods["substitute_base"]
    boot = sub.debootstrap_command(Path("/x/rootfs"))
    assert boot[:2] == ["debootstrap", "--variant=minbase"] and boot[-3:] == ["bookworm", "/x/rootfs", sub.MIRROR]
    included = boot[2].removeprefix("--include=").split(",")
    assert {"python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd"} <= set(included)
    imported = sub.import_command("t:1")
    assert imported[:2] == ["docker", "import"] and imported[-2:] == ["-", "t:1"]
    changes = [imported[i + 1] for i, a in enumerate(imported) if a == "--change"]
    # Without a PATH the Dockerfile's ENV PATH="/opt/venv/bin:${PATH}" would lose /usr/bin; without PIP_CERT the
    # venv's pip would not trust this machine's CA bundle.
    assert "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in changes
    assert f"ENV PIP_CERT={sub.CA_IN_IMAGE}" in changes


def test_build_arg_default_reads_the_dockerfiles(mods):
    src = mods["sources"]
    assert src.build_arg_default(DOCKER / "Dockerfile.cpu", "BASE_IMAGE").startswith("python:3.11.14-slim-bookworm@")
    assert src.build_arg_default(DOCKER / "Dockerfile.cpu", "TORCH_INDEX_URL") == "https://download.pytorch.org/whl/cpu"
    assert src.pinned(ROOT / "constraints.txt", "torch") == "2.13.0"
    with pytest.raises(ValueError, match="NOPE"):
        src.build_arg_default(DOCKER / "Dockerfile.cpu", "NOPE")


def test_local_index_serves_the_wheel_to_pip_as_an_index(mods, tmp_path):
    """What the CPU build's `pip install --index-url $TORCH_INDEX_URL torch==X` sees."""
    import urllib.request

    wheel = tmp_path / "torch-9.9.9+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    assert mods["sources"].local_torch_wheel("9.9.9", "cp311", [tmp_path]) == wheel
    assert mods["sources"].local_torch_wheel("9.9.9", "cp312", [tmp_path]) is None
    with mods["sources"].LocalIndex(wheel, tmp_path / "index") as url:
        assert url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(f"{url}torch/", timeout=10).read().decode()
        assert f'href="{wheel.name.replace("+", "%2B")}"' in page
        assert urllib.request.urlopen(f"{url}torch/{wheel.name.replace('+', '%2B')}", timeout=10).read() == \
            b"not really a wheel"


# ---------------------------------------------------------------- the checks catch a broken image


FAKE_DOCKER = """#!/usr/bin/env bash
# docker run --rm --network host --user U:G [--volume R:/runs] IMAGE ARGS...: the entrypoint on the host.
[[ $1 == run ]] || exit 99
shift
while [[ $1 == --* ]]; do
    case $1 in
        --rm) shift ;;
        --volume) export TINYZERO_RUNS=${2%%:*}; shift 2 ;;
        *) shift 2 ;;
    esac
done
shift
exec bash "$FAKE_ENTRYPOINT" "$@"
"""


def quick_checks(mods, tmp_path, entry: Path) -> dict[str, bool]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    write_script(bin_dir / "docker", FAKE_DOCKER)
    old = dict(os.environ)
    os.environ.update(PATH=f"{bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{old.get('PATH', '')}",
                      FAKE_ENTRYPOINT=str(entry), PYTHONPATH=str(ROOT / "src"))
    try:
        runner = mods["checks"].Runner("img", tmp_path / "runs", log=lambda message: None)
        runner.user = (os.getuid(), os.getgid())
        runner.quick_checks(host_commands=cli_commands())
    finally:
        os.environ.clear()
        os.environ.update(old)
    return {r["name"]: r["ok"] for r in runner.results}


def test_quick_checks_pass_on_a_working_entrypoint(mods, tmp_path):
    results = quick_checks(mods, tmp_path, ENTRYPOINT)
    assert all(results.values()), [name for name, ok in results.items() if not ok]
    assert {"record --help", "tiny-base --help", "verify of a missing run exits 2 on the host"} <= set(results)


def test_quick_checks_catch_an_entrypoint_with_a_stale_list(mods, tmp_path):
    """The old entrypoint's hard-coded list (no fidelity, health, record, tiny-base): those subcommands must fail."""
    stale = tmp_path / "entrypoint.sh"
    stale.write_text(
        '#!/usr/bin/env bash\nset -euo pipefail\n'
        'names=" reproduce verify evaluate train list tiny-model "\n'
        'if [[ $1 == -* || $names == *" $1 "* ]]; then exec tinyzero-trl "$@"; fi\nexec "$@"\n')
    results = quick_checks(mods, tmp_path, stale)
    failed = sorted(name for name, ok in results.items() if not ok)
    assert failed == ["fidelity --help", "health --help", "record --help", "tiny-base --help"]


def test_ownership_check_names_foreign_files(mods, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("{}\n")
    mine = (os.getuid(), os.getgid())
    assert mods["checks"].owned_by_others(tmp_path, *mine) == []
    assert len(mods["checks"].owned_by_others(tmp_path, mine[0] + 1, mine[1])) == 3


# ---------------------------------------------------------------- the CUDA stack's resolution


def test_resolution_covers_every_manylinux_tag_of_ubuntu_24_04(mods):
    tags = mods["cuda_stack"].platforms()
    assert tags[0] == "manylinux_2_39_x86_64" and "manylinux_2_28_x86_64" in tags and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux_2_40_x86_64" not in tags


def test_resolution_command_line(mods, tmp_path):
    command = mods["cuda_stack"].resolve_command(["vllm==0.31.0"], tmp_path / "r.json", Path("/ca.crt"), tmp_path)
    assert command[1] == "-c" and "markers.default_environment" in command[2]
    for flag, value in (("--python-version", "3.12"), ("--implementation", "cp"), ("--report", str(tmp_path / "r.json")),
                        ("--index-url", "https://pypi.org/simple"), ("--cert", "/ca.crt"), ("--find-links", str(tmp_path)),
                        ("-c", str(ROOT / "constraints.txt"))):
        assert command[command.index(flag, 3) + 1] == value, flag
    assert "--dry-run" in command and "--only-binary=:all:" in command and "vllm==0.31.0" in command
    assert not any(k.startswith("PIP_") and k != "PIP_CONFIG_FILE" and k != "PIP_DISABLE_PIP_VERSION_CHECK"
                   for k in mods["cuda_stack"].clean_pip_env())


def test_pip_shim_evaluates_markers_for_python_3_12(mods):
    """pip alone evaluates `; python_version == "3.12"` against the interpreter it runs on; the shim must not."""
    if sys.version_info[:2] == (3, 12):
        pytest.skip("the host is 3.12 itself: nothing to tell apart")
    host = f"{sys.version_info[0]}.{sys.version_info[1]}"

    def dry_run(marker: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", mods["cuda_stack"].PIP_FOR_TARGET, "install", "--dry-run",
                               "--no-index", f"no-such-package-tz; python_version == '{marker}'"],
                              capture_output=True, text=True, timeout=120, env=mods["cuda_stack"].clean_pip_env())

    ignored = dry_run(host)
    assert ignored.returncode == 0 and "Ignoring no-such-package-tz" in ignored.stdout + ignored.stderr
    wanted = dry_run("3.12")
    assert wanted.returncode != 0 and "no-such-package-tz" in wanted.stdout + wanted.stderr


def test_deepspeed_requirements_include_what_setup_py_appends(mods, tmp_path):
    sdist = tmp_path / "deepspeed-0.19.8.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in (("requirements/requirements.txt", "einops\n# comment\ntorch>=2.0.0  # needs it\n\n"),
                           ("setup.py", "if cuda:\n    install_requires.append('nvidia-ml-py')\n")):
            data = text.encode()
            info = tarfile.TarInfo(f"deepspeed-0.19.8/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert mods["cuda_stack"].deepspeed_requirements(sdist) == ["einops", "torch>=2.0.0", "nvidia-ml-py"]


PIP_CONFLICT = """ERROR: Cannot install x
The conflict is caused by:
    mistral-common 1.13.1 depends on numpy<2.4 and >=1.25; python_version <= "3.12"
    The user requested (constraint) numpy==2.4.6

Additionally, some packages in these conflicts have no matching distributions available for your environment:
    numpy
    antlr4-python3-runtime

To fix this you could try to:
"""


def test_pip_output_parsing(mods):
    cs = mods["cuda_stack"]
    assert cs.sdist_only(PIP_CONFLICT) == ["numpy", "antlr4-python3-runtime"]
    assert cs.sdist_only("all fine") == []
    assert cs.conflict(PIP_CONFLICT) == ('mistral-common 1.13.1 depends on numpy<2.4 and >=1.25; python_version <= '
                                         '"3.12" | The user requested (constraint) numpy==2.4.6')


def test_check_flags_what_the_image_build_would_reject(mods, tmp_path):
    constraints = tmp_path / "c.txt"
    constraints.write_text('numpy==2.4.6; python_version != "3.12"\nnumpy==2.3.5; python_version == "3.12"\n'
                           "torch==2.13.0\n# comment\n")
    good = {"torch": "2.13.0", "vllm": "0.31.0", "transformers": "5.17.0", "trl": "1.16.0", "accelerate": "1.15.0",
            "numpy": "2.3.5", "nvidia-cuda-runtime": "13.0.96"}
    assert mods["cuda_stack"].check(good, constraints) == []
    problems = mods["cuda_stack"].check(good | {"vllm": "0.30.0", "numpy": "2.2.0", "nvidia-cuda-runtime": "12.9.1"},
                                        constraints)
    assert len(problems) == 3 and any(p.startswith("vllm:") for p in problems)
    assert any(p.startswith("numpy:") for p in problems) and any("CUDA 13.0" in p for p in problems)


def test_constraints_pin_numpy_per_python_for_the_cuda_image():
    """CPU (3.11) keeps numpy 2.4.6; the CUDA image's 3.12 needs <2.4 (mistral-common, a vLLM dependency)."""
    from packaging.requirements import Requirement

    reqs = [Requirement(line) for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line.lower().startswith("numpy")]
    def pin(version: str) -> list[str]:
        env = {"python_version": version, "python_full_version": f"{version}.0"}
        return [str(r.specifier) for r in reqs if r.marker is None or r.marker.evaluate(env)]
    assert pin("3.11") == ["==2.4.6"] and pin("3.12") == ["==2.3.5"] and pin("3.13") == ["==2.4.6"]


@pytest.mark.parametrize(("remote", "expected"), [
    ("git@github.com:org/tinyzero-trl.git", "https://github.com/org/tinyzero-trl"),
    ("https://github.com/org/tinyzero-trl.git", "https://github.com/org/tinyzero-trl"),
    ("/work/some/clone", "unknown"),
])
def test_source_label_is_a_url_or_unknown(mods, monkeypatch, remote, expected):
    monkeypatch.setattr(mods["nox_docker"], "_git", lambda *args, root=None: remote)
    assert mods["nox_docker"].source_url() == expected


def test_mounts_under_lists_deepest_first(mods, tmp_path, monkeypatch):
    table = (f"proc /proc proc rw 0 0\nnsfs {tmp_path}/exec/netns/default nsfs rw 0 0\n"
             f"overlay {tmp_path}/data overlay rw 0 0\nx {tmp_path}-other/y ext4 rw 0 0\n")
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: table if str(self) == "/proc/self/mounts"
                        else real_read(self, *a, **k))
    assert mods["engine"].mounts_under(tmp_path) == [f"{tmp_path}/exec/netns/default", f"{tmp_path}/data"]


@pytest.mark.parametrize("resolve_only, built", [(True, False), (False, True)])
def test_resolve_only_never_builds_the_cuda_image_even_where_its_base_is_there(mods, monkeypatch, tmp_path,
                                                                             resolve_only, built):
    """CI passes --resolve-only: on a machine whose engine holds (or could pull) the CUDA base, e2e.py --cuda would
    otherwise build the ~10 GB image (~9 min) and push CI past its hour."""
    import types

    sys.path.insert(0, str(DOCKER))
    try:
        e2e = importlib.import_module("e2e")
    finally:
        sys.path.remove(str(DOCKER))
    calls = []
    monkeypatch.setattr(e2e.engine, "reachable", lambda: True)
    monkeypatch.setattr(e2e.sources, "image_present", lambda image: True)
    monkeypatch.setattr(e2e, "build_and_run_cuda", lambda args, report: calls.append("build"))
    monkeypatch.setitem(sys.modules, "cuda_stack",
                        types.SimpleNamespace(resolve=lambda state, log: calls.append("resolve") or {}))
    args = types.SimpleNamespace(build=False, wrong_pin=[], resolve_only=resolve_only, state=tmp_path)
    e2e.cuda_image(args, {"timings_s": {}})
    assert calls == (["build"] if built else ["resolve"])


def test_resolve_only_goes_with_cuda_alone():
    for extra in (["--cuda", "--build"], [], ["--cuda", "--wrong-pin", "vllm==0.30.0"]):
        out = subprocess.run([sys.executable, str(DOCKER / "e2e.py"), "--resolve-only", *extra],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "--resolve-only goes with --cuda" in out.stderr, (extra, out.stderr)
