"""What a launch may do in a run directory, decided before any work: start, resume, extend, or nothing.

``claim`` reads the directory (``run.json``, ``config.yaml``, checkpoints, ``metrics.jsonl``) and decides; it
writes nothing, so every rank of a launch can ask and get the same answer. ``start_run`` is the one write that
follows a claim (``open_run`` does both, for a launcher): set an old run aside if ``fresh``, then record the resolved config in ``config.yaml`` (its tokens
redacted: ``run.secrets``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tinyzero_trl.errors import RunDirError
from tinyzero_trl.run.files import read_yaml, write_yaml
from tinyzero_trl.run.secrets import redact
from tinyzero_trl.run.status import liveness, read_status

CONFIG_FILE = "config.yaml"
# Settings that say only how a launch runs (what it shows, where it finds its vLLM server), never what it trains.
LAUNCH_ONLY_KEYS = {("fresh",)} | {("training", key) for key in (
    "hub_token", "disable_tqdm", "report_to", "dataloader_num_workers", "vllm_server_base_url", "vllm_server_host",
    "vllm_server_port", "vllm_server_timeout")}
# Settings a relaunch may change without making the run directory describe two different runs: those, how long
# to train and how often to checkpoint.
RELAUNCH_KEYS = LAUNCH_ONLY_KEYS | {("stop_at_step",), ("stop_without_signal",)} | {("training", key) for key in (
    "max_steps", "num_train_epochs", "save_steps", "save_total_limit")}


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
    if fresh:
        moved = set_aside(run_dir)
        if moved:
            print(f"[tinyzero-trl] fresh start: previous run moved to {moved}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(run_dir / CONFIG_FILE, redact(resolved))  # tokens stay out of the file (run.secrets)


def open_run(run_dir: str | os.PathLike, resolved: dict, *, fresh: bool = False, write: bool = True) -> str | None:
    """``claim`` the run directory and, when there is work and this process is the launch's one writer (``write``),
    ``start_run`` it with ``resolved`` (saved with ``fresh`` off: the ranks must not move it again). Returns
    ``claim``'s line when there is nothing to do."""
    done = claim(run_dir, resolved, fresh=fresh)
    if done is None and write:
        start_run(Path(run_dir), {**resolved, "fresh": False}, fresh=fresh)
    return done


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
        changed = config_differences(before, redact(resolved))  # as written: a token is never shown
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
