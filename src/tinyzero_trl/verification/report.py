"""What verify shows: the verdict table (text and ``verify.md``), the source of every reference point, and a plot
per judged metric with each run's curve over the reference bands."""

from __future__ import annotations

import re
from pathlib import Path

from tinyzero_trl.run.metrics import window_mean

COLUMNS = ("check", "step", "reference", "observed", "band", "verdict", "src")


def fmt_value(x) -> str:
    """A table cell: 3 decimals for a float, ``-`` for nothing."""
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)



def source_numbers(table) -> dict[str, int]:
    """Each distinct source, numbered in the order the table first cites it."""
    numbers: dict[str, int] = {}
    for row in table:
        numbers.setdefault(row.source, len(numbers) + 1)
    return numbers


def _cells(row, numbers) -> tuple[str, ...]:
    observed = fmt_value(row.observed)
    if row.runs and len(row.runs) > 1:
        observed += f" ({', '.join(fmt_value(v) for v in row.runs)})"
    return row.check, row.step, row.reference, observed, row.band, row.verdict, f"[{numbers[row.source]}]"


def format_table(table) -> str:
    """The verdict table as aligned text, each row's source as [n] with the sources listed below it."""
    numbers = source_numbers(table)
    body = [_cells(r, numbers) for r in table]
    widths = [max(len(str(x)) for x in col) for col in zip(COLUMNS, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in (COLUMNS, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"  note: {r.check} @ {r.step}: {r.detail}" for r in table if r.detail]
    lines += ["", "sources:"] + [f"  [{n}] {source}" for source, n in numbers.items()]
    return "\n".join(lines)


def value_range(metric: str) -> tuple[float, float] | None:
    """The lowest and highest value a metric can take, when it is a registered reward's mean (0 and 1 for the
    0/1 rewards), else None."""
    from tinyzero_trl.rewards import BOUNDS

    match = re.fullmatch(r"(?:eval_)?rewards/(.+)/mean", metric)
    return BOUNDS.get(match.group(1)) if match else None


def plot(path: Path, name: str, runs_series: list, specs: list[dict], verdict: str) -> None:
    """Each run's curve (raw and windowed) over every reference band and bound that the checks of one metric set.

    A reward's axis spans all the values the reward can take (0 to 1 for a 0/1 reward): zoomed to the values
    seen, a format reward drifting from 1.0 to 0.95 looked like a collapse."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    window = max(int(s.get("window", 1)) for s in specs)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, series in enumerate(runs_series):
        steps, values = zip(*series)
        label = "run" if len(runs_series) == 1 else f"run {k + 1}"
        ax.plot(steps, values, color=colors[k % len(colors)], alpha=0.3, lw=1, label=f"{label}, each step")
        ax.plot(steps, [window_mean(series, s, window) for s in steps], color=colors[k % len(colors)], lw=2,
                label=f"{label}, mean of the last {window} steps", marker="o" if len(steps) == 1 else None)
    for spec in specs:
        if spec["rule"] == "band":
            pts = spec["points"]
            xs = [p["step"] for p in pts]
            lo, hi = [p["low"] for p in pts], [p["high"] for p in pts]
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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    span = value_range(name)
    if span is not None:
        pad = 0.03 * (span[1] - span[0])
        ax.set_ylim(span[0] - pad, span[1] + pad)
    ax.set_ylabel(name)
    ax.set_title(f"{name}: {verdict}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(report_dir: Path, expected: dict, table, curves: dict, verdict: str, run_dirs: list[str],
                 heading: str | None = None) -> Path:
    """``verify.md`` and one ``verify-METRIC.png`` per judged metric in ``report_dir``; returns the report's path.
    ``heading``: a line put first (a rehearsal says so)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for name, (runs_series, specs) in curves.items():
        verdicts = {r.verdict for r in table if r.check == name}
        shown = ("FAIL" if "FAIL" in verdicts else "PASS" if "PASS" in verdicts
                 else "in band (a rehearsal: not a pass)" if "IN-BAND" in verdicts else "reported, no reference")
        image = report_dir / f"verify-{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}.png"
        plot(image, name, runs_series, specs, shown)
        images.append(image.name)
    numbers = source_numbers(table)
    lines = ([f"**{heading}**", ""] if heading else []) + [
             f"# Verification: {expected.get('reproduction', report_dir.name)}: **{verdict}**", "",
             f"Runs: {', '.join(f'`{d}`' for d in run_dirs)}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r, numbers)) + " |" for r in table]
    notes = [f"- {r.check} @ {r.step}: {r.detail}" for r in table if r.detail]
    lines += ["", *notes] if notes else []
    lines += ["", *[f"![{name}]({name})" for name in images], "", "Sources of the reference numbers:", ""]
    lines += [f"{n}. {source}" for source, n in numbers.items()]
    path = report_dir / "verify.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

