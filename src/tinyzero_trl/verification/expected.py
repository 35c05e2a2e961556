"""expected.json, read and checked: the reference a run is judged against, every check citing its source.

A check is about a metric logged in metrics.jsonl (``metric``) or a figure of summary.json (``summary``). Its
``rule`` must fit that kind, and carry the numbers the rule needs; a check that could not be applied is an
error naming it, never a row silently left out of the verdict.

Metric rules: ``band`` (at each reference step, the mean over ``window`` logged steps lies in [low, high]),
``final_mean`` (the mean of the last ``window`` steps lies in [low, high]; either may be null), ``stays_below``
(every windowed mean stays at or below ``high``), ``rises`` (the last ``window`` steps beat the first ``window``),
``report`` (shown, never judged). Summary rules: ``at_least`` (>= low), ``between`` (within [low, high]),
``report``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tinyzero_trl.errors import UnusableRun

METRIC_RULES = ("band", "final_mean", "stays_below", "rises", "report")
SUMMARY_RULES = ("at_least", "between", "report")
RULES = tuple(dict.fromkeys(METRIC_RULES + SUMMARY_RULES))


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _bounds(where: str, holder: dict, need: tuple[str, ...], either: bool = False) -> None:
    present = [k for k in ("low", "high") if holder.get(k) is not None]
    for key in present:
        if not _number(holder[key]):
            raise UnusableRun(f"{where}: {key}={holder[key]!r} is not a number")
    missing = [k for k in need if k not in present]
    if (either and not present) or (not either and missing):
        raise UnusableRun(f"{where}: rule needs {' or '.join(need) if either else ' and '.join(need)}")
    if len(present) == 2 and holder["low"] > holder["high"]:
        raise UnusableRun(f"{where}: low {holder['low']} is above high {holder['high']}")


def validate_check(spec, where: str) -> None:
    """Raise ``UnusableRun`` naming ``where`` unless ``spec`` is a check that can be applied as written."""
    if not isinstance(spec, dict):
        raise UnusableRun(f"{where}: a check must be a JSON object")
    kinds = [k for k in ("metric", "summary") if k in spec]
    if len(kinds) != 1 or not isinstance(spec[kinds[0]], str) or not spec[kinds[0]]:
        raise UnusableRun(f"{where}: a check names exactly one 'metric' (metrics.jsonl) or 'summary' (summary.json)")
    kind, rule = kinds[0], spec.get("rule")
    allowed = METRIC_RULES if kind == "metric" else SUMMARY_RULES
    if rule not in allowed:
        other = "summary figures" if rule in SUMMARY_RULES else "metrics" if rule in METRIC_RULES else None
        fits = f"; {rule!r} applies to {other}" if other else ""
        raise UnusableRun(f"{where}: rule {rule!r} cannot judge the {kind} {spec[kind]!r}{fits}; a {kind} takes "
                          f"{', '.join(allowed)}")
    if not isinstance(spec.get("source"), str) or not spec["source"].strip():
        raise UnusableRun(f"{where}: no 'source': every reference number says where it comes from")
    window = spec.get("window", 1)
    if type(window) is not int or window < 1:
        raise UnusableRun(f"{where}: window={window!r} must be a whole number of steps >= 1")
    if rule == "band":
        points = spec.get("points")
        if not isinstance(points, list) or not points:
            raise UnusableRun(f"{where}: a band needs a non-empty list of points")
        for j, point in enumerate(points):
            at = f"{where} points[{j}]"
            if not isinstance(point, dict) or type(point.get("step")) is not int or point["step"] < 1:
                raise UnusableRun(f"{at}: each point needs an integer step >= 1")
            _bounds(at, point, ("low", "high"))
    elif rule == "final_mean":
        _bounds(where, spec, ("low", "high"), either=True)
    elif rule == "stays_below":
        _bounds(where, spec, ("high",))
    elif rule == "at_least":
        _bounds(where, spec, ("low",))
    elif rule == "between":
        _bounds(where, spec, ("low", "high"))


def load_expected(path: Path) -> dict:
    """Read ``expected.json`` and check every check in it; ``UnusableRun`` names the file and the check."""
    try:
        expected = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UnusableRun(f"{path}: unreadable reference ({err})") from err
    checks = expected.get("checks") if isinstance(expected, dict) else None
    if not isinstance(checks, list) or not checks:
        raise UnusableRun(f"{path}: no 'checks' list")
    for i, spec in enumerate(checks):
        validate_check(spec, f"{path} checks[{i}]")
    return expected
