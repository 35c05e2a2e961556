"""The CUDA image built and run here, as a user would, on a machine with no GPU and no NVIDIA registry.

``docker/e2e.py --cuda --build`` uses this: ``docker build -f docker/Dockerfile`` exactly as written, from the
pinned base where it can be pulled, else from ``substitute_base.CUDA`` (Debian trixie, no CUDA toolkit) passed
as ``BASE_IMAGE``, the only build argument it needs here (``TORCH_INDEX_URL`` keeps its default, PyPI). Every
step runs, the version assert included; the build log gives each step's time. Then, in containers with the
network cut off (``--network none``), as ``docker run --rm --user 1000:1000 -v RUNS:/runs IMAGE ...``:
the quick checks (checks.Runner), ``reproduce countdown-3b --dry-run``, ``python -c "import vllm, deepspeed,
trl"``, ``ds_report``, what vLLM's CUDA build does without a GPU, the exact wheels installed, and countdown-tiny
reproduced and verified on the CPU (the CUDA build of torch trains on a CPU).

``wrong_pin`` builds the same Dockerfile from a copy of the build context whose constraints.txt carries a
deliberately wrong pin, and reports where the build stopped and the line that names the package.

Stdlib only, like the rest of docker/*.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import checks

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Packages whose exact wheels the report names (besides every nvidia-* one).
KEY_WHEELS = ("torch", "vllm", "deepspeed", "triton", "transformers", "trl", "accelerate", "numpy", "flashinfer-python")

# BuildKit's plain progress: "#10 [ 6/13] RUN pip install ...", "#10 DONE 123.4s", "#10 CACHED", "#10 ERROR: ...".
STEP = re.compile(r"^#(\d+) \[\s*(\d+/\d+)\] (.*)$")
EXPORT = re.compile(r"^#(\d+) (exporting to image)$")
DONE = re.compile(r"^#(\d+) DONE ([\d.]+)s$")
CACHED = re.compile(r"^#(\d+) CACHED$")
ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
OUTPUT = re.compile(r"^#(\d+) [\d.]+ (.*)$")


def parse_steps(log: str) -> list[dict]:
    """The Dockerfile's steps in order, each {step, instruction, seconds, cached, error}, from a plain-progress
    build log (plus the export of the image)."""
    steps: dict[str, dict] = {}
    for line in log.splitlines():
        if m := STEP.match(line):
            steps.setdefault(m.group(1), {"step": m.group(2), "instruction": re.sub(r"\s+", " ", m.group(3)),
                                          "seconds": None, "cached": False, "error": None})
        elif m := EXPORT.match(line):
            steps.setdefault(m.group(1), {"step": "export", "instruction": m.group(2), "seconds": None,
                                          "cached": False, "error": None})
        elif (m := DONE.match(line)) and m.group(1) in steps:
            steps[m.group(1)]["seconds"] = float(m.group(2))
        elif (m := CACHED.match(line)) and m.group(1) in steps:
            steps[m.group(1)]["cached"] = True
        elif (m := ERROR.match(line)) and m.group(1) in steps:
            steps[m.group(1)]["error"] = m.group(2)
    order = sorted(steps.values(), key=lambda s: (s["step"] == "export", int(s["step"].split("/")[0])
                                                  if s["step"] != "export" else 0))
    return order


def step_output(log: str, instruction_start: str) -> list[str]:
    """The output lines of the step whose instruction starts with ``instruction_start``."""
    number = next((m.group(1) for line in log.splitlines()
                   if (m := STEP.match(line)) and re.sub(r"\s+", " ", m.group(3)).startswith(instruction_start)), None)
    return [m.group(2) for line in log.splitlines() if (m := OUTPUT.match(line)) and m.group(1) == number]


def downloaded_wheels(log: str) -> list[str]:
    """The wheel files pip downloaded during the build, and the ones it built (DeepSpeed's), as pip named them."""
    names = re.findall(r"Downloading (\S+\.whl)", log)
    names += [f"{m} (built here from its sdist)" for m in re.findall(r"Created wheel for \S+: filename=(\S+\.whl)", log)]
    return list(dict.fromkeys(names))


def failure_line(log: str, package: str) -> tuple[str | None, str | None]:
    """(the failed step, "[N/M] INSTRUCTION"; the line of its output that names ``package``): the version
    assert's own line when the build got that far, else pip's."""
    failed = next((s for s in parse_steps(log) if s["error"]), None)
    if failed is None:
        return None, None
    lines = step_output(log, failed["instruction"][:60])
    where = f"[{failed['step']}] {failed['instruction']}"
    assert_line = next((line for line in lines if "pinned stack MISMATCH" in line), None)
    if assert_line:
        return where, assert_line
    named = [line.strip() for line in lines if package.lower() in line.lower()]
    return where, (next((line for line in named if "constraint" in line), None) or (named[-1] if named else None))


def build(command: list[str], log_path: Path, cwd: Path = ROOT, log=print) -> tuple[int, float, str]:
    """Run a ``docker build`` with plain progress into ``log_path`` (echoing step lines); (exit code, seconds,
    the log)."""
    command = command[:2] + ["--progress", "plain"] + command[2:]
    log("$ " + " ".join(command))
    start = time.monotonic()
    with open(log_path, "w") as out, subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            out.write(line)
            if STEP.match(line) or DONE.match(line) or ERROR.match(line) or "pinned stack" in line:
                log("  build: " + line.rstrip()[:160])
        code = proc.wait()
    return code, time.monotonic() - start, log_path.read_text(errors="replace")


# Run in the image: every installed distribution's wheel file name, put together from its WHEEL file's tags.
WHEELS_SNIPPET = r"""
import json, re
from importlib import metadata
out = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    text = dist.read_text("WHEEL") or ""
    tags = [l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("Tag:")]
    parts = [[], [], []]
    for tag in tags:
        for i, part in enumerate(tag.split("-")):
            if part not in parts[i]:
                parts[i].append(part)
    stem = re.sub(r"[-_.]+", "_", name).lower()
    gen = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("Generator:")), "")
    out[re.sub(r"[-_.]+", "-", name).lower()] = {
        "version": dist.version, "generator": gen,
        "wheel": f"{stem}-{dist.version}-" + "-".join(".".join(p) for p in parts) + ".whl"}
print(json.dumps(out))
"""


def installed_wheels(image: str) -> dict[str, dict]:
    out = subprocess.run(checks.run_command(image, ["python", "-c", WHEELS_SNIPPET], network="none"),
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"listing the image's wheels failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def key_wheels(wheels: dict[str, dict], downloaded: list[str] = ()) -> dict[str, str]:
    """torch, vllm, deepspeed, ... and every nvidia-* package: name -> wheel file name. pip's own name from the
    build log where it downloaded (or built) the file; else put together from the installed WHEEL file's tags,
    said so (those can differ from the file's name: vLLM's says linux_x86_64, its file manylinux_2_28)."""
    def pips(name: str) -> str | None:
        # Name and version: pip may download other versions of a package while it backtracks.
        prefix = f"{name.replace('-', '_')}-{wheels[name]['version']}-".lower()
        return next((file for file in downloaded if file.lower().startswith(prefix)), None)

    keep = [n for n in wheels if n in KEY_WHEELS or n.startswith("nvidia-")]
    return {n: pips(n) or wheels[n]["wheel"] + " (from its installed WHEEL tags)" for n in sorted(keep)}


# vLLM's CUDA build asked to start an engine on a tiny Qwen2 built in the container: what it says without a GPU.
VLLM_ATTEMPT = (
    "tinyzero-trl tiny-model --arch qwen2 --vllm --out /tmp/tiny-vllm >/dev/null && "
    "python -c 'from vllm.platforms import current_platform as p; "
    "print(\"vllm platform:\", type(p).__name__, repr(p.device_type))' && "
    "python -c 'from vllm import LLM; LLM(model=\"/tmp/tiny-vllm\", enforce_eager=True)'"
)


class CudaRunner(checks.Runner):
    """checks.Runner on the CUDA image, every container with the network cut off: a check that needs the network
    fails, which is the point (nothing a user expects baked in may download at run time)."""

    network = "none"

    def cuda_checks(self, report: dict) -> None:
        start = time.monotonic()
        code, out = self.docker_run(["reproduce", "countdown-3b", "--dry-run"])
        self.check("reproduce countdown-3b --dry-run", code == checks.EXIT_OK and "countdown-3b" in out,
                   f"exit {code}: {out[-300:]}")
        report["countdown_3b_dry_run"] = out.strip().splitlines()[-12:]
        code, out = self.docker_run(["python", "-c", "import vllm, deepspeed, trl; "
                                     "print('vllm', vllm.__version__, 'deepspeed', deepspeed.__version__, "
                                     "'trl', trl.__version__)"])
        self.check('python -c "import vllm, deepspeed, trl"', code == checks.EXIT_OK, f"exit {code}: {out[-500:]}")
        report["import_vllm_deepspeed_trl"] = out.strip().splitlines()[-1:] if code == 0 else out[-1000:]
        code, out = self.docker_run(["ds_report"])
        self.check("ds_report", code == checks.EXIT_OK and "DeepSpeed general environment info" in out,
                   f"exit {code}: {out[-500:]}")
        report["ds_report"] = ANSI.sub("", out).rstrip().splitlines()
        # Without a GPU DeepSpeed picks its CPU accelerator; what a GPU user's ds_report looks at is CUDA's.
        code, out = self.docker_run(["env", "DS_ACCELERATOR=cuda", "ds_report"])
        report["ds_report_cuda_accelerator"] = {"exit_code": code, "lines": ANSI.sub("", out).rstrip().splitlines()}
        code, out = self.docker_run(["bash", "-c", VLLM_ATTEMPT], timeout=900)
        lines = [line for line in ANSI.sub("", out).strip().splitlines() if line.strip()]
        report["vllm_without_gpu"] = {
            "command": VLLM_ATTEMPT, "exit_code": code,
            "platform": next((line for line in lines if line.startswith("vllm platform:")), None),
            "last_lines": lines[-6:]}
        self.timings["cuda_checks"] = round(time.monotonic() - start, 1)


def summary(runs: Path, name: str) -> dict | None:
    path = runs / name / "summary.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {k: data.get(k) for k in ("base_accuracy", "final_accuracy", "wall_seconds")}


def context_copy(dest: Path, root: Path = ROOT) -> Path:
    """What .dockerignore lets through to the daemon (its allowlist's paths), copied to ``dest``, with the
    .dockerignore itself and the Dockerfile; outputs inside (runs/, caches) are still dropped by the daemon."""
    dest.mkdir(parents=True, exist_ok=True)
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line.startswith("!") or "*" in line:
            continue
        source = root / line[1:]
        if source.is_dir():
            shutil.copytree(source, dest / line[1:], symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "runs", "outputs"))
        elif source.is_file():
            (dest / line[1:]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / line[1:])
    for name in (".dockerignore", "docker/Dockerfile"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)
    return dest


def with_pin(constraints: str, pin: str) -> str:
    """constraints.txt with ``pin`` (NAME==VERSION) instead of every line pinning NAME (added if none does)."""
    name = re.split(r"[=<>!~;\s]", pin, maxsplit=1)[0]
    key = re.sub(r"[-_.]+", "-", name).lower()
    kept = [line for line in constraints.splitlines()
            if re.sub(r"[-_.]+", "-", re.split(r"[=<>!~;\s]", line.strip(), maxsplit=1)[0]).lower() != key
            or line.lstrip().startswith("#")]
    return "\n".join([*kept, pin]) + "\n"


def wrong_pin(pin: str, build_command: list[str], work: Path, log=print) -> dict:
    """Build docker/Dockerfile from a copy of the context whose constraints.txt pins ``pin``; the build must fail.
    Returns {pin, ok, exit_code, seconds, failed_step, line, at_version_assert}."""
    package = re.split(r"[=<>!~;\s]", pin, maxsplit=1)[0]
    with tempfile.TemporaryDirectory(dir=work, prefix="wrong-pin-") as tmp:
        ctx = context_copy(Path(tmp) / "context")
        (ctx / "constraints.txt").write_text(with_pin((ROOT / "constraints.txt").read_text(), pin))
        log(f"wrong pin: building docker/Dockerfile with {pin} in a copy of constraints.txt (it must fail)")
        code, seconds, text = build(build_command, work / f"build-wrong-pin-{package}.log", cwd=ctx, log=log)
    step, line = failure_line(text, package)
    result = {"pin": pin, "exit_code": code, "seconds": round(seconds, 1), "failed_step": step, "line": line,
              "at_version_assert": bool(line and "pinned stack MISMATCH" in line)}
    result["ok"] = code != 0 and bool(line)
    return result
