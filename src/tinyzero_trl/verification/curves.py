"""The R1-Zero story as one picture: reward, format and response length over training, for one or more runs.

``reproduce`` draws it for every run (``curves.png`` in the run directory) and ``record`` draws it for all the
recorded seeds together (``reproductions/NAME/curves.png``, the plot the reproduction's README shows). It is a
picture of what a run logged, not a check: ``verify`` judges, with its own per-metric plots.
"""

from __future__ import annotations

from pathlib import Path

from tinyzero_trl.rewards import ACCURACY_OF, training_accuracy
from tinyzero_trl.run.metrics import METRICS_FILE, read_curves
from tinyzero_trl.run.summary import read_summary

# How the first panel names a run's accuracy reward (1 for a correct answer): the training accuracy.
ACCURACY_LABELS = {"countdown_equation": "equation reward", "math_accuracy": "math-verify reward"}
SMOOTH = 5  # steps per moving average: one step is only a few prompts, too noisy to read alone


def panels(rewards: list[str]) -> list[tuple[str, str]]:
    """(metric in metrics.jsonl, panel title): the accuracy reward (``training_accuracy``), the first reward that
    judges no answer (the format), the response length."""
    accuracy = training_accuracy(rewards) or (rewards[0] if rewards else "accuracy")
    fmt = next((r for r in rewards if r != accuracy and r not in ACCURACY_OF), "format")
    return [(f"rewards/{accuracy}/mean", f"training accuracy ({ACCURACY_LABELS.get(accuracy, accuracy + ' reward')})"),
            (f"rewards/{fmt}/mean", "format reward"),
            ("completions/mean_length", "mean response length (tokens)")]


def plot_curves(runs: dict[str, str | Path], path: str | Path, title: str = "",
                summaries: dict[str, dict] | None = None) -> Path:
    """Draw the ``panels`` of the first run's rewards for each run (label -> run directory) into ``path``.

    Each run's held-out greedy accuracy before and after training (``summary.json``; ``summaries``, label ->
    summary, when the caller holds them already) is marked on the first panel when the run has one, so the
    training curve and the headline numbers are read together.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    logged = {label: read_curves(run_dir, SMOOTH) for label, run_dir in runs.items()}  # each run read once
    shown = panels(next(iter(logged.values())).rewards if logged else [])
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, run_dir) in enumerate(runs.items()):
        curves = logged[label]
        summary = (summaries or {}).get(label)
        summary = read_summary(run_dir) if summary is None else summary
        color = colors[k % len(colors)]
        for ax, (metric, _) in zip(axes, shown):
            if metric not in curves.series:
                continue
            steps, values = zip(*curves.series[metric])
            ax.plot(steps, values, color=color, alpha=0.2, lw=0.8, label=f"{label}: each step")
            ax.plot(steps, curves.means[metric], color=color, lw=1.8,
                    label=f"{label}: mean of the last {SMOOTH} steps",
                    marker="o" if len(steps) == 1 else None)  # a line through one point draws nothing
        if "base_accuracy" in summary and "final_accuracy" in summary and curves.last_step is not None:
            last = curves.last_step
            # Two measurements, before and after: two points, no line (a line would read as measured between).
            axes[0].plot([0, last], [summary["base_accuracy"], summary["final_accuracy"]], "D", ls="none",
                         color=color, ms=6, label=f"{label}: held-out greedy, step 0 and {last}: "
                                                  f"{summary['base_accuracy']:.2f} -> {summary['final_accuracy']:.2f}")
    for ax, (metric, name) in zip(axes, shown):
        if not ax.lines:  # say so, rather than leave an empty frame that reads like a flat curve
            ax.text(0.5, 0.5, f"{metric}\nnot in {METRICS_FILE}", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("GRPO step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(0, 1.05)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
