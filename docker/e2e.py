"""The CPU image end to end, as a user runs it: build it from the repository, reproduce countdown-tiny in one
container, verify it in a second, and check what a user relies on (exit codes on the host, file ownership in
the runs folder, every subcommand the entrypoint routes).

    python docker/e2e.py                  # CPU image, end to end (an engine must answer `docker info`)
    python docker/e2e.py --start-engine   # start a private dockerd when none answers; stopped at the end
    python docker/e2e.py --cuda           # also resolve the CUDA image's stack for its Python (cuda_stack.py)
    python docker/e2e.py --no-reproduce   # build and the quick checks only

Where the pinned base cannot be pulled, a substitute is made from Debian's mirror (substitute_base.py), and
where the Dockerfile's torch index does not answer, this machine's local torch wheel is served on 127.0.0.1;
both are printed, and recorded in the report (``STATE/report.json``). Exits 1 if any check failed.
Stdlib only: it runs before any project environment exists (CI calls it right after installing the engine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checks  # noqa: E402
import engine  # noqa: E402
import sources  # noqa: E402
import substitute_base  # noqa: E402
from nox_docker import IMAGE, ROOT, build_commands, git_commit, project_version, source_url  # noqa: E402

CPU_DOCKERFILE = ROOT / "docker" / "Dockerfile.cpu"
DEFAULT_STATE = Path(os.environ.get("TINYZERO_DOCKER_STATE", "/var/tmp/tinyzero-docker"))


def log(message: str) -> None:
    print(f"[e2e] {message}", flush=True)


def choose_base(state: Path) -> tuple[str | None, str]:
    """(the BASE_IMAGE build arg, or None for the Dockerfile's default; what was used and why)."""
    default = sources.build_arg_default(CPU_DOCKERFILE, "BASE_IMAGE")
    if sources.image_present(default):
        return None, f"pinned base {default} (already present)"
    pulled, line = sources.pull(default)
    if pulled:
        return None, f"pinned base {default} (pulled)"
    log(f"SUBSTITUTE BASE: the pinned base {default} cannot be pulled ({line})")
    tag = substitute_base.make(state / "substitute-base", log=log)
    return tag, f"SUBSTITUTE {tag}: Debian {substitute_base.SUITE} + python3 from Debian's mirror, this " \
                f"machine's CA bundle; the pinned {default} could not be pulled ({line})"


@contextlib.contextmanager
def torch_source(state: Path):
    """Yields (the TORCH_INDEX_URL build arg or None for the default, what was used and why)."""
    default = sources.build_arg_default(CPU_DOCKERFILE, "TORCH_INDEX_URL")
    ok, detail = sources.index_answers(default)
    if ok:
        yield None, f"torch from {default}"
        return
    version = sources.pinned(ROOT / "constraints.txt", "torch")
    wheel = sources.local_torch_wheel(version, "cp311", sources.find_links_dirs())
    if wheel is None:
        raise engine.MissingPrerequisite(f"the torch index {default} does not answer ({detail}) and no local "
                                         f"torch-{version}+cpu cp311 wheel is in pip's find-links folders to serve "
                                         "instead")
    log(f"SUBSTITUTE TORCH SOURCE: {default} does not answer ({detail}); serving {wheel}")
    with sources.LocalIndex(wheel, state / "torch-index") as url:
        yield url, f"SUBSTITUTE torch {wheel.name} served at {url}; {default} did not answer ({detail})"


def build_cpu(base: str | None, torch_url: str | None) -> tuple[str, float]:
    """Build the CPU image; return its tag and the build's wall time."""
    extra = {"BASE_IMAGE": base, "TORCH_INDEX_URL": torch_url}
    version = project_version()
    command = build_commands(["cpu"], version, git_commit(), source_url(),
                             extra_args={k: v for k, v in extra.items() if v}, network="host")[0]
    log("$ " + " ".join(command))
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True)
    return f"{IMAGE}:{version}-cpu", time.monotonic() - start


def image_size(image: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip())


def load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the CPU and/or CUDA parts, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE,
                        help=f"work folder: substitute base, runs, report (default {DEFAULT_STATE})")
    parser.add_argument("--runs", type=Path, default=None,
                        help="the runs folder mounted at /runs (default STATE/runs); kept after the checks, so the "
                             "host can verify the container's run again (CI does)")
    parser.add_argument("--start-engine", action="store_true",
                        help="start a private dockerd when no engine answers (stopped at the end)")
    parser.add_argument("--no-reproduce", action="store_true", help="skip the ~5 minute reproduction")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU image (with --cuda: only that)")
    parser.add_argument("--cuda", action="store_true",
                        help="the CUDA image: built where its pinned base can be pulled, else its stack resolved "
                             "for its Python (cuda_stack.py)")
    args = parser.parse_args(argv)
    args.state.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "timings_s": {}}
    t0 = time.monotonic()
    log(f"load average at start: {load()}")
    if not args.no_cpu:
        cpu_image(args, report)
    if args.cuda:
        cuda_image(args, report)
    return finish(args, report, t0)


def use_buildkit_client(state: Path) -> None:
    """Put a BuildKit-capable docker CLI first on PATH (for us and every child) and turn BuildKit on."""
    shim = state / "bin"
    if os.environ.get("DOCKER_BUILDKIT") == "1" and os.environ.get("PATH", "").startswith(str(shim)):
        return  # already done in this process
    cli = os.path.realpath(engine.buildkit_client())
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "docker"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(cli)
    os.environ["PATH"] = f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["DOCKER_BUILDKIT"] = "1"
    log(f"docker CLI: {cli} (BuildKit)")


def cpu_image(args, report: dict) -> None:
    """Build the CPU image and run the checks; results go into ``report``."""
    use_buildkit_client(args.state)
    with contextlib.ExitStack() as stack:
        if not engine.reachable():
            if not args.start_engine:
                raise SystemExit("[e2e] no Docker engine answers `docker info` (--start-engine starts a private one)")
            stack.enter_context(engine.PrivateEngine(args.state / "engine", log=log))
            report["engine"] = "private dockerd started and stopped by this run"
        else:
            report["engine"] = "an engine that was already running"
        report["docker_version"] = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                                  capture_output=True, text=True).stdout.strip()

        t = time.monotonic()
        base, report["base"] = choose_base(args.state)
        report["timings_s"]["base"] = round(time.monotonic() - t, 1)
        torch_url, report["torch_source"] = stack.enter_context(torch_source(args.state))
        log(f"base: {report['base']}")
        log(f"torch: {report['torch_source']}")

        image, seconds = build_cpu(base, torch_url)
        report["image"], report["timings_s"]["build_cpu"] = image, round(seconds, 1)
        report["image_size_bytes"] = image_size(image)
        log(f"built {image} in {seconds:.0f} s, {report['image_size_bytes'] / 1e9:.2f} GB (load {load()})")

        runner = checks.Runner(image, args.runs or args.state / "runs", log=log)
        runner.quick_checks(host_commands=checks.host_subcommands(ROOT))
        if not args.no_reproduce:
            runner.end_to_end("countdown-tiny")
        report["checks"] = runner.results
        report["timings_s"].update(runner.timings)


def cuda_image(args, report: dict) -> None:
    """Build the CUDA image where an engine answers and its pinned base can be pulled; else (this machine:
    no registry, no Python 3.12 base) resolve its stack for CPython 3.12 and say exactly that."""
    import cuda_stack

    default = sources.build_arg_default(ROOT / "docker" / "Dockerfile", "BASE_IMAGE")
    t = time.monotonic()
    if engine.reachable() and (sources.image_present(default) or sources.pull(default)[0]):
        use_buildkit_client(args.state)
        command = build_commands(["cuda"], project_version(), git_commit(), source_url(), network="host")[0]
        log("$ " + " ".join(command))
        subprocess.run(command, cwd=ROOT, check=True)  # the build asserts the pinned versions itself
        image = f"{IMAGE}:{project_version()}-cuda"
        report["cuda_image"] = {"image": image, "size_bytes": image_size(image), "built_on": default}
        report["timings_s"]["build_cuda"] = round(time.monotonic() - t, 1)
        return
    log(f"CUDA image not built: its base {default} cannot be had here (and Debian has no Python 3.12 to stand "
        "in for it); resolving its stack for CPython 3.12 instead")
    report["cuda_stack"] = cuda_stack.resolve(args.state / "cuda-stack", log=log)
    report["timings_s"]["cuda_resolve"] = round(time.monotonic() - t, 1)


def finish(args, report: dict, t0: float) -> int:
    """Write the report, print the summary; 1 if anything failed."""
    report["timings_s"]["total"] = round(time.monotonic() - t0, 1)
    report["load_average_at_end"] = load()
    (args.state / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    failed = [c for c in report.get("checks", []) if not c["ok"]]
    if report.get("cuda_stack", {}).get("problems"):
        failed.append({"name": "CUDA stack resolution", "detail": report["cuda_stack"]["problems"]})
    log(f"timings (s): {report['timings_s']}; load average at end: {report['load_average_at_end']}")
    log(f"report: {args.state / 'report.json'}")
    for check in failed:
        log(f"FAILED: {check['name']}: {check['detail']}")
    log("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    shutil.rmtree(args.state / "torch-index", ignore_errors=True)
    return 1 if failed else 0


def run(argv: list[str] | None = None) -> int:
    """``main``, with a missing prerequisite said in one line (exit 2) instead of a traceback."""
    try:
        return main(argv)
    except engine.MissingPrerequisite as err:
        print(f"[e2e] missing prerequisite: {err} (docker/README.md, Prerequisites)", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(run())
