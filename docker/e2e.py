"""The images end to end, as a user runs them: build from the repository, reproduce countdown-tiny in one
container, verify it in a second, and check what a user relies on (exit codes on the host, file ownership in
the runs folder, every subcommand the entrypoint routes).

    python docker/e2e.py                  # CPU image, end to end (an engine must answer `docker info`)
    python docker/e2e.py --start-engine   # start a private dockerd when none answers; stopped at the end
    python docker/e2e.py --cuda --build   # also the CUDA image: built, its stack asserted, run (cuda_build.py)
    python docker/e2e.py --cuda           # also the CUDA image's stack: built only where its pinned base can be
                                          # pulled, else resolved for its Python (cuda_stack.py)
    python docker/e2e.py --no-reproduce   # build and the quick checks only
    python docker/e2e.py --no-cpu --cuda --build --wrong-pin vllm==0.30.0   # that pin must fail the build

Where a pinned base cannot be pulled, a substitute is made from Debian's mirror (substitute_base.py: bookworm
for the CPU image, trixie without any CUDA toolkit for the CUDA image), and where the CPU Dockerfile's torch
index does not answer, this machine's local torch wheel is served on 127.0.0.1; each is printed, and recorded in
the report (``STATE/report.json``). Exits 1 if any check failed.
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
import cuda_build  # noqa: E402
import engine  # noqa: E402
import sources  # noqa: E402
import substitute_base  # noqa: E402
from nox_docker import IMAGE, ROOT, build_commands, git_commit, project_version, source_url  # noqa: E402

CPU_DOCKERFILE = ROOT / "docker" / "Dockerfile.cpu"
CUDA_DOCKERFILE = ROOT / "docker" / "Dockerfile"
DEFAULT_STATE = Path(os.environ.get("TINYZERO_DOCKER_STATE", "/var/tmp/tinyzero-docker"))


def log(message: str) -> None:
    print(f"[e2e] {message}", flush=True)


def choose_base(state: Path, dockerfile: Path = CPU_DOCKERFILE,
                spec: substitute_base.Spec = substitute_base.CPU) -> tuple[str | None, str]:
    """(the BASE_IMAGE build arg, or None for the Dockerfile's default; what was used and why)."""
    default = sources.build_arg_default(dockerfile, "BASE_IMAGE")
    if sources.image_present(default):
        return None, f"pinned base {default} (already present)"
    pulled, line = sources.pull(default)
    if pulled:
        return None, f"pinned base {default} (pulled)"
    log(f"SUBSTITUTE BASE: the pinned base {default} cannot be pulled ({line})")
    tag = substitute_base.make(state / "substitute-base", log=log, spec=spec)
    return tag, f"SUBSTITUTE {tag}: {spec.summary}; the pinned {default} could not be pulled ({line})"


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
                             "for its Python (cuda_stack.py); with --build always built")
    parser.add_argument("--resolve-only", action="store_true",
                        help="with --cuda: resolve its stack (cuda_stack.py) even where its base can be pulled, "
                             "never build it (CI: the build takes ~9 min and ~10 GB)")
    parser.add_argument("--build", action="store_true",
                        help="with --cuda: build the CUDA image (on a substitute base where the pinned one cannot "
                             "be pulled) and run it: the checks, ds_report, countdown-tiny (cuda_build.py)")
    parser.add_argument("--wrong-pin", action="append", default=[], metavar="NAME==VERSION",
                        help="with --cuda: build the CUDA image from a copy of the context whose constraints.txt "
                             "pins this instead; the build must fail naming the package (repeatable)")
    args = parser.parse_args(argv)
    if (args.build or args.wrong_pin) and not args.cuda:
        parser.error("--build and --wrong-pin go with --cuda")
    if args.resolve_only and (args.build or args.wrong_pin or not args.cuda):
        parser.error("--resolve-only goes with --cuda, and not with --build or --wrong-pin")
    args.state.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "timings_s": {}}
    t0 = time.monotonic()
    log(f"load average at start: {load()}")
    with contextlib.ExitStack() as stack:
        if not args.no_cpu or args.build or args.wrong_pin:
            start_engine(args, report, stack)
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


def start_engine(args, report: dict, stack: contextlib.ExitStack) -> None:
    """A BuildKit docker CLI and an engine: the one answering, else (--start-engine) a private dockerd that
    ``stack`` stops."""
    use_buildkit_client(args.state)
    if not engine.reachable():
        if not args.start_engine:
            raise SystemExit("[e2e] no Docker engine answers `docker info` (--start-engine starts a private one)")
        stack.enter_context(engine.PrivateEngine(args.state / "engine", log=log))
        report["engine"] = "private dockerd started and stopped by this run"
    else:
        report["engine"] = "an engine that was already running"
    report["docker_version"] = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                              capture_output=True, text=True).stdout.strip()


def cpu_image(args, report: dict) -> None:
    """Build the CPU image and run the checks; results go into ``report``."""
    with contextlib.ExitStack() as stack:
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
            report["cpu_countdown_tiny"] = cuda_build.summary(runner.runs, "countdown-tiny")
        report["checks"] = runner.results
        report["timings_s"].update(runner.timings)


def cuda_image(args, report: dict) -> None:
    """The CUDA image: built and run (cuda_build.py) with --build, or where its pinned base can be pulled (unless
    --resolve-only); else its stack resolved for the real base's CPython 3.12 (cuda_stack.py), which it says."""
    default = sources.build_arg_default(CUDA_DOCKERFILE, "BASE_IMAGE")
    t = time.monotonic()
    if args.build or args.wrong_pin or (not args.resolve_only and engine.reachable()
                                        and (sources.image_present(default) or sources.pull(default)[0])):
        if args.build or not args.wrong_pin:
            build_and_run_cuda(args, report)
        for pin in args.wrong_pin:
            wrong_pin(args, report, pin)
        return
    import cuda_stack

    log(f"CUDA image not built: its base {default} cannot be had here (--build builds it on a substitute); "
        "resolving its stack for CPython 3.12 instead")
    report["cuda_stack"] = cuda_stack.resolve(args.state / "cuda-stack", log=log)
    report["timings_s"]["cuda_resolve"] = round(time.monotonic() - t, 1)


CUDA_NOT_CHECKED = [
    "a GPU: no CUDA kernel ran; vLLM's engine, DeepSpeed's ops, NCCL, and GRPO on a GPU were not run (no GPU here)",
    "the NVIDIA container runtime: --gpus all, the driver check of NVIDIA_REQUIRE_CUDA (>= R580), --ipc=host "
    "multi-GPU and multi-node runs",
]
SUBSTITUTE_NOT_CHECKED = [
    "the pinned nvidia/cuda:13.0.2-devel-ubuntu24.04 base and its digest (no container registry answers here): "
    "built on the substitute, whose differences are listed",
    "Python 3.12 and its cp312 wheels (the real base's): installed and run here under Python 3.13; cp312 only "
    "resolved (cuda_stack.py, `e2e.py --cuda` without --build)",
    "Ubuntu 24.04's apt packages (build-essential, python3-dev, tini): Debian trixie's ran instead",
    "nvcc 13.0 and the CUDA headers: DeepSpeed's JIT ops and any run-time CUDA compile (none in the substitute)",
]


def cuda_base(args, report: dict) -> tuple[str | None, str]:
    t = time.monotonic()
    base, why = choose_base(args.state, CUDA_DOCKERFILE, substitute_base.CUDA)
    report["timings_s"]["cuda_base"] = round(time.monotonic() - t, 1)
    return base, why


def cuda_build_command(base: str | None) -> list[str]:
    return build_commands(["cuda"], project_version(), git_commit(), source_url(),
                          extra_args={"BASE_IMAGE": base} if base else None, network="host")[0]


def build_and_run_cuda(args, report: dict) -> None:
    """Build docker/Dockerfile as it is (the substitute only through BASE_IMAGE), then the checks of
    cuda_build.CudaRunner with the network cut off, the wheels, and countdown-tiny on the CPU."""
    base, why = cuda_base(args, report)
    cuda = report["cuda_image"] = {"base": why}
    log(f"CUDA base: {why}")
    if base:
        cuda["differences_from_the_pinned_base"] = list(substitute_base.CUDA.differences)
    code, seconds, text = cuda_build.build(cuda_build_command(base), args.state / "build-cuda.log", log=log)
    report["timings_s"]["build_cuda"] = round(seconds, 1)
    cuda["build_log"] = str(args.state / "build-cuda.log")
    cuda["steps"] = cuda_build.parse_steps(text)
    cuda["not_checked"] = CUDA_NOT_CHECKED + (SUBSTITUTE_NOT_CHECKED if base else [])
    results = report["cuda_checks"] = []
    if code != 0:
        step, line = cuda_build.failure_line(text, "")
        results.append({"name": "the CUDA image builds", "ok": False, "detail": f"exit {code} at {step}: {line}"})
        log(f"FAIL the CUDA image builds: exit {code} at {step}")
        return
    image = f"{IMAGE}:{project_version()}-cuda"
    cuda["image"], cuda["size_bytes"] = image, image_size(image)
    cuda["version_assert"] = next((line for line in cuda_build.step_output(text, "RUN pip install --no-cache-dir "
                                   "-c constraints.txt \".[vllm]\"") if "pinned stack" in line), "(cached)")
    log(f"built {image} in {seconds:.0f} s, {cuda['size_bytes'] / 1e9:.2f} GB (load {load()}); {cuda['version_assert']}")

    runs = args.runs.with_name(args.runs.name + "-cuda") if args.runs else args.state / "runs-cuda"
    runner = cuda_build.CudaRunner(image, runs, log=log)
    runner.quick_checks(host_commands=checks.host_subcommands(ROOT))
    runner.cuda_checks(cuda)
    t = time.monotonic()
    wheels = cuda_build.installed_wheels(image)
    cuda["packages_installed"] = len(wheels)
    cuda["wheels"] = cuda_build.key_wheels(wheels, cuda_build.downloaded_wheels(text))
    runner.timings["wheels"] = round(time.monotonic() - t, 1)
    if not args.no_reproduce:
        runner.end_to_end("countdown-tiny")
        numbers = cuda["countdown_tiny"] = cuda_build.summary(runs, "countdown-tiny")
        cpu = report.get("cpu_countdown_tiny")
        if cpu and numbers:
            same = all(cpu[k] == numbers[k] for k in ("base_accuracy", "final_accuracy"))
            runner.check("countdown-tiny: the same held-out accuracies as in the CPU image", same,
                         f"CUDA image {numbers}, CPU image {cpu}")
    results.extend(runner.results)
    report["timings_s"].update({f"cuda_{k}": v for k, v in runner.timings.items()})


def wrong_pin(args, report: dict, pin: str) -> None:
    base = report.get("cuda_image", {}).get("base")
    tag = None if base is None or not base.startswith("SUBSTITUTE") else substitute_base.CUDA.tag
    if base is None:
        tag, _ = cuda_base(args, report)
    command = cuda_build_command(tag)
    # Never let a build that should fail take the real image's tags.
    command = [a for i, a in enumerate(command) if a != "--tag" and (i == 0 or command[i - 1] != "--tag")]
    command[-1:-1] = ["--tag", f"{IMAGE}:wrong-pin"]
    result = cuda_build.wrong_pin(pin, command, args.state, log=log)
    report.setdefault("wrong_pins", []).append(result)
    report["timings_s"][f"wrong_pin_{pin}"] = result["seconds"]
    where = "the version assert" if result["at_version_assert"] else f"step {result['failed_step']!r}"
    log(f"{'ok  ' if result['ok'] else 'FAIL'} wrong pin {pin}: build exit {result['exit_code']} at {where}: "
        f"{result['line']}")


def finish(args, report: dict, t0: float) -> int:
    """Write the report, print the summary; 1 if anything failed."""
    report["timings_s"]["total"] = round(time.monotonic() - t0, 1)
    report["load_average_at_end"] = load()
    (args.state / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    failed = [c for c in report.get("checks", []) + report.get("cuda_checks", []) if not c["ok"]]
    failed += [{"name": f"wrong pin {w['pin']} fails the build naming it", "detail": w}
               for w in report.get("wrong_pins", []) if not w["ok"]]
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
