"""metrics.jsonl, read: one JSON object per logged step, and the series verify, record and curves draw from it.

Only the standard library: ``verify`` reads a run without loading torch or transformers. The writer, a
``TrainerCallback``, lives in ``metrics_callback.py``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class MetricsError(ValueError):
    """A metrics file that cannot be used; the message names the file and line."""


def read_metrics(path: str | os.PathLike, *, strict: bool = True) -> list[dict]:
    """Read metrics.jsonl into a list of step records sorted by step.

    ``strict`` raises ``MetricsError`` (file and line named) on a corrupt or truncated line or a repeated step;
    non-strict skips such lines, which is what a resuming writer needs after a crash mid-write.
    """
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"{path}: no such file (has the run started? is this a run directory?)")
    rows: dict[int, dict] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not line.endswith("\n"):
                    raise ValueError("line is not terminated (the file was cut mid-write)")
                if not isinstance(row, dict) or type(row.get("step")) is not int:
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


def window_mean(series: list[tuple[int, float]], end_step: int, window: int) -> float | None:
    """Mean of the last ``window`` values logged at or before ``end_step`` (None if there are none).

    One logged step is a handful of prompts, too noisy to judge or draw alone; every reference point, plot and
    recording smooths with this one definition.
    """
    values = [v for s, v in series if s <= end_step][-window:]
    return sum(values) / len(values) if values else None
