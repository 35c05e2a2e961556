"""Check runs against their reproduction's reference: a verdict per check, ``verify.md`` and a plot per metric.

Exit codes: 0 every check passed (PASS), 1 some check failed (FAIL), 2 a run cannot be judged (missing,
unfinished, corrupt or impossible files, another recipe's run, or an unusable reference: the message names the
file, the step and the value), 3 nothing was judged because no reference number exists (UNCHECKED, never a pass).
The rules are described in ``expected.py``; the impossible-run rules in ``sanity.py``.

One run passes a check when its value lies in the band. Several runs of one reproduction (different seeds) are
judged together, the way trusted benchmarks judge convergence, never by their best run:

- with 5 runs or more, the best and the worst are set aside (MLPerf's "olympic" mean);
- the mean of the rest passes when it lies in the band;
- a mean outside the band fails when it is significantly outside (one-sided test, alpha 0.05): with the
  reference's own seed-to-seed spread (``seed_spread``) as the standard deviation when the reference states it,
  as MLPerf judges with the reference's spread so that noisy runs cannot buy a pass; else with the runs' sample
  standard deviation (Student's t). Identical runs outside the band fail.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.run.claim import CONFIG_FILE
from tinyzero_trl.run.files import check_writable, read_yaml
from tinyzero_trl.run.metrics import METRICS_FILE, MetricsError, metric_series, read_metrics, window_mean
from tinyzero_trl.run.status import RUN_FILE, describe_unfinished, read_status
from tinyzero_trl.run.summary import read_summary
from tinyzero_trl.verification import sanity
from tinyzero_trl.verification.expected import RULES, load_expected
from tinyzero_trl.verification.rehearsal import heading, rehearsal_step, relabel
from tinyzero_trl.verification.report import fmt_value, write_report

__all__ = ["RULES", "Row", "UnusableRun", "judge", "load_run", "verify_run", "verify_runs"]

ALPHA = 0.05
OLYMPIC_FROM = 5  # runs needed before the best and the worst are set aside


@dataclass
class Target:
    """One number a check judges: where (check, step), the reference, the bounds, and where it comes from."""

    check: str
    step: str
    reference: str
    low: float | None
    high: float | None
    source: str
    strict_low: bool = False  # `rises`: the final window must beat the first, not equal it
    seed_spread: float | None = None
    judged: bool = True  # False for `report` checks


@dataclass
class Row:
    check: str
    step: str
    reference: str
    observed: float | None
    band: str
    verdict: str  # PASS, FAIL, INFO
    source: str = ""
    runs: list = field(default_factory=list)  # each run's value, when several runs are judged
    detail: str = ""


def _band(low, high, strict_low=False) -> str:
    if strict_low and high is None:
        return f"> {fmt_value(low)}"
    return f"[{fmt_value(low) if low is not None else '-inf'}, {fmt_value(high) if high is not None else '+inf'}]"


def _inside(value, target: Target) -> bool:
    if value is None:
        return False
    if target.low is not None and (value <= target.low if target.strict_low else value < target.low):
        return False
    return target.high is None or value <= target.high


def load_run(run_dir: Path, name: str = "NAME") -> tuple[list[dict], dict]:
    """Metrics rows and summary of a completed run, or ``UnusableRun`` saying what is wrong (``name``: the
    reproduction, for the command that makes the run)."""
    make = f"`tinyzero-trl reproduce {name} --output-dir {run_dir}`"
    if not run_dir.is_dir():
        raise UnusableRun(f"{run_dir}: no such run directory; make the run with {make}, or pass --run-dir DIR")
    if not (run_dir / RUN_FILE).is_file():
        what = "is empty" if not any(run_dir.iterdir()) else f"holds no {RUN_FILE}, so no run was started there"
        raise UnusableRun(f"{run_dir}: the directory {what}; make the run with {make}, or pass --run-dir DIR")
    status = read_status(run_dir)
    if status.get("status") != "completed":
        raise UnusableRun(f"{run_dir / 'run.json'}: the run {describe_unfinished(status)}")
    try:
        rows = read_metrics(run_dir / METRICS_FILE)
    except MetricsError as err:
        raise UnusableRun(str(err)) from err
    last = rows[-1]["step"] if rows else 0
    expected_last = status.get("global_step")
    if expected_last is not None and last < expected_last:
        raise UnusableRun(f"{run_dir / METRICS_FILE}: ends at step {last} but the run reached step {expected_last} "
                          "(the file was truncated)")
    return rows, read_summary(run_dir)


def observe(spec: dict, rows: list[dict], summary: dict, where: str,
            rehearsal: dict | None = None) -> tuple[list[tuple[Target, float | None]], list]:
    """The targets of one check and this run's value for each; plus the series it looked at (for the plot).
    ``rehearsal``: the run's rehearsal record; reference steps are read at the same share of it."""
    rule, source = spec["rule"], spec["source"]
    name = spec.get("metric") or spec.get("summary")
    spread = spec.get("seed_spread")
    if "summary" in spec:
        value = summary.get(spec["summary"])
        if value is None:
            raise UnusableRun(f"{where}: summary.json has no {spec['summary']!r} (did the reproduction finish?)")
        high = spec.get("high") if rule == "between" else None
        return [(Target(name, "final", fmt_value(spec.get("value")), spec.get("low"), high, source, seed_spread=spread,
                        judged=rule != "report"), value)], []
    series = metric_series(rows, name)
    if not series:
        raise UnusableRun(f"{where}: metric {name!r} never logged in {METRICS_FILE}")
    window, last_step = spec.get("window", 1), series[-1][0]
    out = []
    if rule == "band":
        for point in spec["points"]:
            step, label = point["step"], str(point["step"])
            if rehearsal is not None:
                step = rehearsal_step(point["step"], rehearsal, [s for s, _ in series], where)
                label = f"{point['step']} (at {step})"
            if step > last_step:
                raise UnusableRun(f"{where}: reference step {point['step']} is past the run's last step {last_step}")
            target = Target(name, label, fmt_value(point.get("value")), point["low"], point["high"],
                            point.get("source", source), seed_spread=point.get("seed_spread", spread))
            out.append((target, window_mean(series, step, window)))
    elif rule in ("final_mean", "report"):
        target = Target(name, f"last {window}", fmt_value(spec.get("value")), spec.get("low"), spec.get("high"), source,
                        seed_spread=spread, judged=rule != "report")
        out.append((target, window_mean(series, last_step, window)))
    elif rule == "stays_below":
        worst = max(window_mean(series, s, window) for s, _ in series)
        out.append((Target(name, "all", fmt_value(spec["high"]), None, spec["high"], source, seed_spread=spread), worst))
    elif rule == "rises":  # judged on the gain, so that several runs can be averaged
        first = sum(v for _, v in series[:window]) / len(series[:window])
        gain = window_mean(series, last_step, window) - first
        out.append((Target(name, f"last {window} - first {window}", "gain", 0.0, None, source, strict_low=True,
                           seed_spread=spread), gain))
    return out, series


def judge(target: Target, values: list[float | None]) -> Row:
    """The verdict on one target from one run's value or several runs' values (see the module docstring)."""
    band = _band(target.low, target.high, target.strict_low)
    if not target.judged:
        shown = values[0] if len(values) == 1 else _mean([v for v in values if v is not None])
        return Row(target.check, target.step, target.reference, shown, band, "INFO", target.source, values)
    if len(values) == 1:
        verdict = "PASS" if _inside(values[0], target) else "FAIL"
        return Row(target.check, target.step, target.reference, values[0], band, verdict, target.source)
    kept = sorted(values)[1:-1] if len(values) >= OLYMPIC_FROM else list(values)
    mean = _mean(kept)
    if _inside(mean, target):
        return Row(target.check, target.step, target.reference, mean, band, "PASS", target.source, values,
                   f"mean of {len(kept)} runs")
    bound = target.low if target.low is not None and mean <= target.low else target.high
    p, how = _p_outside(kept, mean, bound, target.seed_spread)
    verdict = "FAIL" if p < ALPHA else "PASS"
    detail = (f"mean of {len(kept)} runs is outside the band; p = {p:.3g} ({how}) "
              f"{'<' if p < ALPHA else '>='} {ALPHA}: {'significantly outside' if p < ALPHA else 'within noise'}")
    return Row(target.check, target.step, target.reference, mean, band, verdict, target.source, values, detail)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _p_outside(values: list[float], mean: float, bound: float, spread: float | None) -> tuple[float, str]:
    """One-sided p-value of "the true mean is on the band's side of ``bound``" given the runs' mean."""
    gap = abs(mean - bound)
    if spread:
        z = gap / (spread / math.sqrt(len(values)))
        return 1 - statistics.NormalDist().cdf(z), f"z-test with the reference's seed spread {spread:g}"
    sd = statistics.stdev(values)
    if sd == 0:
        return 0.0, "identical runs"
    from scipy import stats

    t = gap / (sd / math.sqrt(len(values)))
    return float(stats.t.sf(t, len(values) - 1)), f"t-test, {len(values) - 1} degrees of freedom"


def _saved_config(run_dir: Path) -> dict | None:
    """The run's config.yaml, None when it has none."""
    path = run_dir / CONFIG_FILE
    return read_yaml(path, error=UnusableRun) if path.is_file() else None


def judged_names(expected: dict) -> tuple[set[str], set[str]]:
    """The metrics and summary figures that some check of ``expected`` judges (``report`` checks judge nothing)."""
    metrics = {c["metric"] for c in expected["checks"] if "metric" in c and c["rule"] != "report"}
    summary = {c["summary"] for c in expected["checks"] if "summary" in c and c["rule"] != "report"}
    return metrics, summary


def _usable_run(expected: dict, run_dir: Path, pinned: dict | None, not_pinned: set) -> tuple[list[dict], dict]:
    rows, summary = load_run(run_dir, expected.get("reproduction", "NAME"))
    metrics, figures = judged_names(expected)
    sanity.check_metrics(rows, metrics, run_dir)
    sanity.check_summary(summary, figures, run_dir)
    if pinned is not None:
        sanity.check_recipe(_saved_config(run_dir), pinned, run_dir, ignore=not_pinned)
    return rows, summary


def verify_runs(expected_path: Path, run_dirs: list[Path], *, pinned: dict | None = None,
                not_pinned: set = frozenset(), report_dir: Path | None = None,
                rehearsal: dict | None = None) -> tuple[str, list[Row]]:
    """Judge one run or several runs of one reproduction; write ``verify.md`` and plots; return (verdict, rows).

    ``pinned``: the reproduction's resolved config; each run's config.yaml must match it except for the keys
    ``sanity.NOT_PINNED`` and ``not_pinned`` name. Every run must be usable, or none is judged. ``rehearsal``:
    the runs are a rehearsal with this record (``verification.rehearsal``): never a PASS.
    """
    expected = load_expected(expected_path)
    runs = [_usable_run(expected, Path(d), pinned, not_pinned) for d in run_dirs]
    # Checked before judging: a report that cannot be written was an OSError, exit 1, which reads as FAIL.
    target_dir = Path(report_dir) if report_dir else Path(run_dirs[0])
    check_writable(target_dir, key="--report-dir" if report_dir else "--report-dir (by default the run directory)",
                   hint="--report-dir DIR")
    table: list[Row] = []
    curves: dict[str, tuple[list, list[dict]]] = {}  # metric -> (each run's series, the specs that judge it)
    for i, spec in enumerate(expected["checks"]):
        where = f"{expected_path} checks[{i}]"
        seen = [observe(spec, rows, summary, where, rehearsal) for rows, summary in runs]
        for k, (target, _) in enumerate(seen[0][0]):
            table.append(judge(target, [observed[k][1] for observed, _ in seen]))
        if "metric" in spec:
            entry = curves.setdefault(spec["metric"], ([series for _, series in seen], []))
            entry[1].append(spec)
    verdicts = {r.verdict for r in table}
    # Nothing judged (every check is `report`) is not a pass: there was no reference number to meet.
    verdict = "FAIL" if "FAIL" in verdicts else "PASS" if "PASS" in verdicts else "UNCHECKED"
    if rehearsal is not None:
        verdict, table = relabel(table)
    write_report(target_dir, expected, table, curves, verdict, [str(d) for d in run_dirs],
                 heading=heading(expected.get("reproduction", ""), rehearsal) if rehearsal is not None else None)
    return verdict, table


def verify_run(expected_path: Path, run_dir: Path, *, pinned: dict | None = None,
               not_pinned: set = frozenset()) -> tuple[str, list[Row]]:
    """Verify one run directory (its report goes into it); see ``verify_runs``."""
    return verify_runs(expected_path, [run_dir], pinned=pinned, not_pinned=not_pinned)
