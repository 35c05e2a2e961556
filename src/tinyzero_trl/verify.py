"""Check a run against its reproduction's reference: a table, ``verify.md`` and a plot per metric.

Exit codes: 0 every check passed (PASS), 1 some check failed (FAIL), 2 the run cannot be judged (missing,
unfinished, corrupt or impossible files, another recipe's run, or an unusable reference: the message names the
file, the step and the value), 3 nothing was judged because no reference number exists (UNCHECKED, never a pass).
The rules are described in ``expected.py``; the impossible-run rules in ``sanity.py``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from tinyzero_trl import sanity
from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.expected import RULES, load_expected
from tinyzero_trl.metrics import METRICS_FILE, MetricsError, metric_series, read_metrics, window_mean
from tinyzero_trl.run_dir import CONFIG_FILE, describe_unfinished, read_json, read_status

__all__ = ["RULES", "Row", "UnusableRun", "check", "format_table", "load_run", "verify_run"]


@dataclass
class Row:
    check: str
    step: str
    reference: str
    observed: float | None
    band: str
    verdict: str  # PASS, FAIL, INFO



def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def _band(low, high) -> str:
    return f"[{_fmt(low) if low is not None else '-inf'}, {_fmt(high) if high is not None else '+inf'}]"


def _inside(value, low, high) -> bool:
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def load_run(run_dir: Path) -> tuple[list[dict], dict]:
    """Metrics rows and summary of a completed run, or ``UnusableRun`` saying what is wrong."""
    if not run_dir.is_dir():
        raise UnusableRun(f"{run_dir}: no such run directory (run `tinyzero-trl reproduce NAME` first)")
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
    return rows, read_json(run_dir / "summary.json")


def check(spec: dict, rows: list[dict], summary: dict, where: str) -> tuple[list[Row], list]:
    """Apply one check; return its table rows and the series it looked at (for the plot)."""
    rule = spec["rule"]
    name = spec.get("metric") or spec.get("summary")
    if "summary" in spec:
        value = summary.get(spec["summary"])
        if value is None:
            raise UnusableRun(f"{where}: summary.json has no {spec['summary']!r} (did the reproduction finish?)")
        low = spec.get("low")
        high = spec.get("high") if rule == "between" else None
        verdict = "INFO" if rule == "report" else ("PASS" if _inside(value, low, high) else "FAIL")
        return [Row(name, "final", _fmt(spec.get("value")), value, _band(low, high), verdict)], []
    series = metric_series(rows, name)
    if not series:
        raise UnusableRun(f"{where}: metric {name!r} never logged in {METRICS_FILE}")
    window = int(spec.get("window", 1))
    last_step = series[-1][0]
    out = []
    if rule == "band":
        for point in spec["points"]:
            if point["step"] > last_step:
                raise UnusableRun(f"{where}: reference step {point['step']} is past the run's last step {last_step}")
            obs = window_mean(series, point["step"], window)
            ok = _inside(obs, point.get("low"), point.get("high"))
            out.append(Row(name, str(point["step"]), _fmt(point.get("value")), obs,
                           _band(point.get("low"), point.get("high")), "PASS" if ok else "FAIL"))
    elif rule in ("final_mean", "report"):
        obs = window_mean(series, last_step, window)
        low, high = spec.get("low"), spec.get("high")
        verdict = "INFO" if rule == "report" else ("PASS" if _inside(obs, low, high) else "FAIL")
        out.append(Row(name, f"last {window}", _fmt(spec.get("value")), obs, _band(low, high), verdict))
    elif rule == "stays_below":
        means = [window_mean(series, s, window) for s, _ in series]
        worst = max(means)
        out.append(Row(name, "all", _fmt(spec.get("high")), worst, _band(None, spec["high"]),
                       "PASS" if worst <= spec["high"] else "FAIL"))
    elif rule == "rises":
        first = sum(v for _, v in series[:window]) / len(series[:window])
        final = window_mean(series, last_step, window)
        out.append(Row(name, f"last {window} vs first {window}", _fmt(first), final, f"> {first:.3f}",
                       "PASS" if final > first else "FAIL"))
    return out, series


def plot(path: Path, name: str, series, specs: list[dict], verdict: str) -> None:
    """The run's curve over every reference band and bound that the checks of one metric set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    steps, values = zip(*series)
    ax.plot(steps, values, color="#1f77b4", alpha=0.35, lw=1, label="run (per step)")
    window = max(int(s.get("window", 1)) for s in specs)
    smooth = [window_mean(series, s, window) for s in steps]
    ax.plot(steps, smooth, color="#1f77b4", lw=2, label=f"run (mean of {window})")
    for spec in specs:
        if spec["rule"] == "band":
            pts = spec["points"]
            xs = [p["step"] for p in pts]
            lo = [p.get("low", -math.inf) for p in pts]
            hi = [p.get("high", math.inf) for p in pts]
            ax.fill_between(xs, lo, hi, color="#ff7f0e", alpha=0.25, label="reference band")
            ax.errorbar(xs, [(a + b) / 2 for a, b in zip(lo, hi)], yerr=[(b - a) / 2 for a, b in zip(lo, hi)],
                        fmt="none", ecolor="#ff7f0e", capsize=4)
            if all("value" in p for p in pts):
                ax.plot(xs, [p["value"] for p in pts], "o--", color="#ff7f0e", lw=1, label="reference")
        if spec["rule"] in ("stays_below", "final_mean") and spec.get("high") is not None:
            ax.axhline(spec["high"], color="#d62728", ls="--", label="upper bound")
        if spec["rule"] == "final_mean" and spec.get("low") is not None:
            ax.axhline(spec["low"], color="#2ca02c", ls="--", label="lower bound")
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    ax.set_title(f"{name}: {verdict}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _saved_config(run_dir: Path) -> dict | None:
    """The run's config.yaml, None when it has none."""
    import yaml

    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UnusableRun(f"{path}: unreadable ({str(err).splitlines()[0]})") from err
    return config if isinstance(config, dict) else {}


def judged_names(expected: dict) -> tuple[set[str], set[str]]:
    """The metrics and summary figures that some check of ``expected`` judges (``report`` checks judge nothing)."""
    metrics = {c["metric"] for c in expected["checks"] if "metric" in c and c["rule"] != "report"}
    summary = {c["summary"] for c in expected["checks"] if "summary" in c and c["rule"] != "report"}
    return metrics, summary


def verify_run(expected_path: Path, run_dir: Path, *, pinned: dict | None = None,
               not_pinned: set = frozenset()) -> tuple[str, list[Row]]:
    """Verify ``run_dir`` against ``expected_path``; write ``verify.md`` and plots; return (verdict, rows).

    ``pinned``: the reproduction's resolved config; the run's config.yaml must match it except for the keys
    ``sanity.NOT_PINNED`` and ``not_pinned`` name.
    """
    expected = load_expected(expected_path)
    rows, summary = load_run(run_dir)
    metrics, figures = judged_names(expected)
    sanity.check_metrics(rows, metrics, run_dir)
    sanity.check_summary(summary, figures, run_dir)
    if pinned is not None:
        sanity.check_recipe(_saved_config(run_dir), pinned, run_dir, ignore=not_pinned)
    table: list[Row] = []
    per_metric: dict[str, tuple[list, list[dict], list[Row]]] = {}
    for i, spec in enumerate(expected["checks"]):
        found, series = check(spec, rows, summary, f"{expected_path} checks[{i}]")
        table += found
        if series:
            entry = per_metric.setdefault(spec["metric"], (series, [], []))
            entry[1].append(spec)
            entry[2].extend(found)
    images = []
    for name, (series, specs, found) in per_metric.items():
        verdicts = {r.verdict for r in found}
        verdict = "FAIL" if "FAIL" in verdicts else "PASS" if "PASS" in verdicts else "reported, no reference"
        image = run_dir / f"verify-{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}.png"
        plot(image, name, series, specs, verdict)
        images.append(image.name)
    verdicts = {r.verdict for r in table}
    # Nothing judged (every check is `report`) is not a pass: there was no reference number to meet.
    verdict = "FAIL" if "FAIL" in verdicts else "PASS" if "PASS" in verdicts else "UNCHECKED"
    _write_report(run_dir / "verify.md", expected, table, images, verdict)
    return verdict, table


def format_table(table: list[Row]) -> str:
    """The verification table as aligned text."""
    head = ("check", "step", "reference", "observed", "band", "verdict")
    body = [(r.check, r.step, r.reference, _fmt(r.observed), r.band, r.verdict) for r in table]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _write_report(path: Path, expected: dict, table: list[Row], images: list[str], verdict: str) -> None:
    lines = [f"# Verification: {expected.get('reproduction', path.parent.name)}: **{verdict}**", "",
             "| check | step | reference | observed | band | verdict |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.check} | {r.step} | {r.reference} | {_fmt(r.observed)} | {r.band} | {r.verdict} |" for r in table]
    lines += ["", *[f"![{name}]({name})" for name in images], "", "Sources of the reference numbers:", ""]
    for spec in expected.get("checks", []):
        lines.append(f"- {spec.get('metric') or spec.get('summary')}: {spec.get('source', 'no source given')}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
