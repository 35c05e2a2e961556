"""Impossible runs: what no honest run can log, so verify refuses to judge it (exit 2) instead of passing it.

A judged metric that is not a finite number, a loss or gradient norm that is NaN or infinite (a gradient norm of
a step the optimizer skipped, every weight still a number, aside), a reward mean
outside the values that reward can give, an accuracy that is not a number in [0, 1], and a run made with another
recipe or other pinned settings than the reproduction's. Each refusal names the file, the step and the value.
"""

from __future__ import annotations

import math
from pathlib import Path

from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.run.claim import CONFIG_FILE, LAUNCH_ONLY_KEYS, config_differences
from tinyzero_trl.run.health import GRAD_NORM, NONFINITE
from tinyzero_trl.run.metrics import METRICS_FILE

TRAINING_HEALTH = ("loss", "grad_norm")  # non-finite here means the weights themselves are no longer numbers,
# except a grad_norm at a step the optimizer skipped: the trainer then logged that every weight is still a number
# (health/nonfinite_weights 0; DeepSpeed's ZeRO optimizers and fp16 loss scaling skip such steps)
_SLACK = 1e-6  # float noise on a mean of scores at a bound


def _real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_metrics(rows: list[dict], judged: set[str], run_dir: Path) -> None:
    """Refuse NaN or infinite judged metrics, loss or grad_norm, and reward means outside their reward's bounds."""
    from tinyzero_trl.rewards import BOUNDS

    where = run_dir / METRICS_FILE
    must_be_finite = set(judged) | set(TRAINING_HEALTH)
    for row in rows:
        for key, value in row.items():
            if key == "step":
                continue
            skipped = key == GRAD_NORM and row.get(NONFINITE) == 0.0
            if key in must_be_finite and value is not None and not (_real(value) and math.isfinite(value)) \
                    and not skipped:
                kind = "a judged metric" if key in judged else "the training's health"
                raise UnusableRun(f"{where} step {row['step']}: {key} = {value!r}; {kind} must be a finite number "
                                  "(the run diverged or its log is corrupt)")
            name = key[len("rewards/"):-len("/mean")] if key.startswith("rewards/") and key.endswith("/mean") else None
            if name in BOUNDS and _real(value) and math.isfinite(value):
                low, high = BOUNDS[name]
                if not low - _SLACK <= value <= high + _SLACK:
                    raise UnusableRun(f"{where} step {row['step']}: {key} = {value!r}, outside [{low:g}, {high:g}], "
                                      f"the only values {name} can give")


def check_summary(summary: dict, judged: set[str], run_dir: Path) -> None:
    """Refuse summary figures that are not numbers, and accuracies outside [0, 1]."""
    where = run_dir / "summary.json"
    for key in sorted(set(judged) | {k for k in summary if k.endswith("accuracy")}):
        if key not in summary:
            continue
        value = summary[key]
        if not (_real(value) and math.isfinite(value)):
            raise UnusableRun(f"{where}: {key} = {value!r} is not a number")
        if key.endswith("accuracy") and not 0.0 <= value <= 1.0:
            raise UnusableRun(f"{where}: {key} = {value!r}; an accuracy lies in [0, 1]")


# What may differ between two runs of one reproduction: where it ran, its seed, and how this machine launched it.
NOT_PINNED = LAUNCH_ONLY_KEYS | {("seed",), ("training", "seed"), ("training", "output_dir"), ("training", "use_cpu")}


def check_recipe(saved: dict | None, pinned: dict, run_dir: Path, *, ignore: set = frozenset()) -> None:
    """Refuse a run whose config.yaml differs from the reproduction's pinned config, naming what differs."""
    where = run_dir / CONFIG_FILE
    if saved is None:
        raise UnusableRun(f"{where}: missing; without it nothing says which recipe and settings made the run")
    changed = config_differences(saved, pinned, ignore=NOT_PINNED | set(ignore))
    if changed:
        shown = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6 else "")
        raise UnusableRun(f"{where}: not this reproduction's pinned settings (run -> pinned: {shown})")
