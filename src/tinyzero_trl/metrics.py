"""metrics.jsonl: one JSON object per logged step, appended and flushed as training goes.

The writer is a ``TrainerCallback``; the reader is what ``verify`` trusts, so it reports the file and line of
anything it cannot use instead of guessing.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from transformers import TrainerCallback

METRICS_FILE = "metrics.jsonl"
# Trainer's end-of-training summary shares the last step's number; it belongs in run.json, not the curve.
_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}


class MetricsError(ValueError):
    """A metrics file that cannot be used; the message names the file and line."""


class MetricsCallback(TrainerCallback):
    """Append every logged step (train and eval metrics merged) to ``<output_dir>/metrics.jsonl``.

    Logs for one step (train, then eval) are merged and written when the step is over, so each step is one
    line. Steps already in the file are skipped, so a resumed run never logs a step twice.
    """

    def __init__(self, output_dir: str | os.PathLike):
        self.path = Path(output_dir) / METRICS_FILE
        self.pending: dict | None = None
        self.summary: dict = {}
        self.logged_steps = {row["step"] for row in read_metrics(self.path, strict=False)} if self.path.exists() else set()

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


def _jsonable(value):
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def read_metrics(path: str | os.PathLike, *, strict: bool = True) -> list[dict]:
    """Read metrics.jsonl into a list of step records sorted by step.

    ``strict`` raises ``MetricsError`` (file and line named) on a corrupt or truncated line or a repeated step;
    non-strict skips such lines, which is what a resuming writer needs after a crash mid-write.
    """
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"{path}: no such file (has the run started? is this a run directory?)")
    rows: dict[int, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not line.endswith("\n"):
                    raise ValueError("line is not terminated (the file was cut mid-write)")
                if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                    raise ValueError("each line must be a JSON object with an integer 'step'")
                if row["step"] in rows:
                    raise ValueError(f"step {row['step']} appears twice")
            except ValueError as err:
                if strict:
                    raise MetricsError(f"{path}:{lineno}: {err}") from err
                continue
            rows[row["step"]] = row
    return [rows[s] for s in sorted(rows)]


def metric_series(rows: list[dict], name: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one metric, skipping steps where it is missing or not finite."""
    out = []
    for row in rows:
        value = row.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.append((row["step"], float(value)))
    return out
