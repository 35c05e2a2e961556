"""metrics.jsonl, read: one JSON object per logged step, and the series verify, record and curves draw from it.

Only the standard library: ``verify`` reads a run without loading torch or transformers. The writer, a
``TrainerCallback``, lives in ``train/callbacks.py``. ``read_curves`` is the one read a plot of a run needs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
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
    return _last_mean([v for s, v in series if s <= end_step], window)


def _last_mean(values: list[float], window: int) -> float | None:
    """The smoothing itself: the mean of the last ``window`` of ``values`` (None if there are none)."""
    tail = values[-window:]
    return sum(tail) / len(tail) if tail else None


def run_rewards(run_dir: str | os.PathLike) -> list[str]:
    """The names of the rewards a run trained with, in its recipe's order.

    Read from the run's ``config.yaml``; a run directory without one (an older run, a hand-made copy) gives the
    reward names in the order ``metrics.jsonl`` logged them (TRL logs them in the order of the reward functions).
    """
    from tinyzero_trl.run.claim import CONFIG_FILE
    from tinyzero_trl.run.files import read_yaml

    run_dir = Path(run_dir)
    config = run_dir / CONFIG_FILE
    if config.is_file():
        rewards = read_yaml(config).get("rewards") or {}
        if rewards:
            return list(rewards)
    names: list[str] = []
    rows = read_metrics(run_dir / METRICS_FILE, strict=False) if (run_dir / METRICS_FILE).is_file() else []
    for key in (rows[0] if rows else {}):
        if key.startswith("rewards/") and key.endswith("/mean") and key[8:-5] not in names:
            names.append(key[8:-5])
    return names


def moving_means(series: list[tuple[int, float]], window: int) -> list[float]:
    """``window_mean(series, step, window)`` at each logged step of ``series``: the same smoothing (``_last_mean``)."""
    values = [v for _, v in series]
    return [_last_mean(values[max(i + 1 - window, 0):i + 1], window) for i in range(len(values))]


@dataclass(frozen=True)
class Curves:
    """What a run logged, as a plot draws it: its rewards (``run_rewards``), the last logged step, and each metric's
    series (``metric_series``) with its moving mean over ``window`` steps (``window_mean`` at each step)."""

    rewards: list[str]
    last_step: int | None
    series: dict[str, list[tuple[int, float]]]
    means: dict[str, list[float]]


def read_curves(run_dir: str | os.PathLike, window: int) -> Curves:
    """Read a run's ``metrics.jsonl`` (leniently, as a run still writing it may have cut a line) and its rewards
    once, into ``Curves``."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir / METRICS_FILE, strict=False)
    names = dict.fromkeys(key for row in rows for key in row if key != "step")
    series = {name: metric_series(rows, name) for name in names}
    return Curves(rewards=run_rewards(run_dir), last_step=rows[-1]["step"] if rows else None,
                  series={name: s for name, s in series.items() if s},
                  means={name: moving_means(s, window) for name, s in series.items() if s})
