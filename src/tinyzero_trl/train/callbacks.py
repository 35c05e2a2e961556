"""The trainer callbacks of every run: metrics.jsonl written step by step, and a stop at a chosen step.

``MetricsCallback``: metrics.jsonl is append-only. A process killed in the middle of a write can leave a partial last line; the next
writer (a resumed run) moves those bytes to ``metrics.jsonl.cut`` before appending, so a new line is never
glued onto a broken one. Steps logged after the checkpoint a run resumes from were made by weights that are
gone; the resumed run trains those steps again, so their old lines move to ``metrics.jsonl.cut`` too and the
curve describes one run. Nothing is deleted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import TrainerCallback

from tinyzero_trl.run.metrics import METRICS_FILE, read_metrics

# Trainer's end-of-training summary shares the last step's number; it belongs in run.json, not the curve.
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}


def repair_partial_line(path: Path) -> int:
    """Move an unterminated last line of ``path`` aside (to ``PATH.cut``); return the number of bytes moved."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep == len(data):
            return 0
        with open(path.with_name(path.name + ".cut"), "ab") as cut:
            cut.write(data[keep:] + b"\n")
        fh.truncate(keep)
    return len(data) - keep


def _step_of(line: str):
    try:
        step = json.loads(line).get("step")
    except (ValueError, AttributeError):  # not a step record: left in place for the reader to name
        return None
    return step if type(step) is int else None


def set_aside_steps_after(path: Path, step: int) -> list[int]:
    """Move the lines of ``path`` for steps after ``step`` to ``PATH.cut``; return those steps."""
    if not path.is_file():
        return []
    keep, cut, moved = [], [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        logged = _step_of(line)
        if logged is not None and logged > step:
            cut.append(line)
            moved.append(logged)
        else:
            keep.append(line)
    if not cut:
        return []
    with open(path.with_name(path.name + ".cut"), "a", encoding="utf-8") as fh:
        fh.writelines(cut)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(keep), encoding="utf-8")
    os.replace(tmp, path)
    return moved


class MetricsCallback(TrainerCallback):
    """Append every logged step (train and eval metrics merged) to ``<output_dir>/metrics.jsonl``.

    Logs for one step (train, then eval) are merged and written when the step is over, so each step is one
    line. ``resume_step`` is the step training restarts from (the checkpoint's, 0 without one): lines for later
    steps are set aside, since this run trains them again. Steps still in the file are never logged twice.
    """

    def __init__(self, output_dir: str | os.PathLike, *, is_writer: bool = True, resume_step: int | None = None):
        self.path = Path(output_dir) / METRICS_FILE
        self.pending: dict | None = None
        self.summary: dict = {}
        self.logged_steps: set[int] = set()
        if is_writer and self.path.exists():
            cut = repair_partial_line(self.path)
            if cut:
                print(f"[tinyzero-trl] {self.path}: set aside a partial last line ({cut} bytes, cut by a crash "
                      f"mid-write) in {self.path.name}.cut")
            if resume_step is not None:
                redone = set_aside_steps_after(self.path, resume_step)
                if redone:
                    print(f"[tinyzero-trl] {self.path}: steps {redone[0]}-{redone[-1]} were logged after the "
                          f"step training restarts from ({resume_step}); their lines are set aside in "
                          f"{self.path.name}.cut and the steps are trained again")
            self.logged_steps = {row["step"] for row in read_metrics(self.path, strict=False)}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        clean = {k: _jsonable(v) for k, v in logs.items()}
        if _SUMMARY_KEYS & clean.keys():
            self.summary.update(clean)
            return
        if self.pending is not None and self.pending["step"] != state.global_step:
            self._flush()
        if self.pending is None:
            self.pending = {"step": state.global_step}
        self.pending.update(clean)

    def on_step_begin(self, args, state, control, **kwargs):
        self._flush()

    def on_save(self, args, state, control, **kwargs):
        self._flush()

    def on_train_end(self, args, state, control, **kwargs):
        self._flush()

    def _flush(self) -> None:
        row, self.pending = self.pending, None
        if row is None or row["step"] in self.logged_steps:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, allow_nan=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.logged_steps.add(row["step"])


class StopAtStep(TrainerCallback):
    """Ends training after ``step`` (saving a checkpoint there) while the schedule keeps the whole run's length."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
            control.should_save = True
        return control


def _jsonable(value):
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
