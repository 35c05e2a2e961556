"""Record a reproduction's reference curve from several seeds of our own runs (countdown-tiny, math-tiny).

    tinyzero-trl record countdown-tiny --seeds 0 1 2

Each seed runs the full reproduction (`reproduce NAME seed=K`) into ``runs/record/NAME-seedK``; the reference
points are the seeds' mean of the run's accuracy reward (the first reward of its recipe) at each checkpoint step,
and the tolerance band is the seeds' observed range widened by two standard deviations of the seeds (at least
``MIN_MARGIN``). The environment that produced the numbers goes into ``expected.json`` beside them. Recording
refuses a dirty git tree: a reference must name the exact code that made it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

from tinyzero_trl.errors import UserError
from tinyzero_trl.rewards import training_accuracy
from tinyzero_trl.run.environment import ENV_FILE, environment
from tinyzero_trl.run.metrics import metric_series, read_metrics, run_rewards, window_mean
from tinyzero_trl.run.summary import read_summary

MIN_MARGIN = 0.05


def _dirty(root: Path) -> str:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                             capture_output=True, text=True)
    except OSError:  # no git, or the folder is gone
        return "not a git checkout"
    return out.stdout.strip() if out.returncode == 0 else "not a git checkout"


def _band(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    margin = max(2 * sd, MIN_MARGIN)
    return {"value": round(mean, 4), "low": round(min(values) - margin, 4), "high": round(max(values) + margin, 4),
            "seeds": [round(v, 4) for v in values]}


def build_expected(name: str, run_dirs: list[Path], *, every: int, window: int, env: dict | None = None) -> dict:
    """The ``expected.json`` content from finished seed runs (pure: no training here).

    The runs' accuracy reward (``rewards.training_accuracy``; else their recipe's first) is judged by bands; the
    response length and the other rewards are reported. ``env``: the environment that produced the runs (read when the recording started);
    the current one if None.
    """

    rewards = run_rewards(run_dirs[0])
    if not rewards:
        raise RuntimeError(f"{run_dirs[0]}: no rewards in its config.yaml or metrics.jsonl; nothing to record")
    accuracy = training_accuracy(rewards) or rewards[0]
    metric = f"rewards/{accuracy}/mean"
    reported = ["completions/mean_length", *(f"rewards/{r}/mean" for r in rewards if r != accuracy)]

    seeds_rows = [read_metrics(d / "metrics.jsonl") for d in run_dirs]
    summaries = [read_summary(d) for d in run_dirs]
    last = min(rows[-1]["step"] for rows in seeds_rows)
    how = (f"recorded with `tinyzero-trl record {name}` from {len(run_dirs)} seeds of our own runs; reference = mean "
           f"of the seeds at each step (window {window}), band = the seeds' range widened by 2 standard deviations "
           f"of the seeds, at least {MIN_MARGIN}")
    points = []
    for step in range(every, last + 1, every):
        values = [window_mean(metric_series(rows, metric), step, window) for rows in seeds_rows]
        points.append({"step": step, **_band(values)})
    checks = [{"metric": metric, "rule": "band", "window": window, "points": points, "source": how}]
    for shown in reported:
        checks.append({"metric": shown, "rule": "report", "window": window,
                       "source": f"{how}; shown for the R1-Zero story, not judged"})
    finals = [s["final_accuracy"] for s in summaries]
    final_band = _band(finals)
    checks.append({"summary": "final_accuracy", "rule": "at_least", "value": final_band["value"],
                   "low": final_band["low"], "seeds": final_band["seeds"],
                   "source": f"{how}; checked as a lower bound: the seeds' lowest held-out accuracy minus the margin"})
    checks.append({"summary": "base_accuracy", "rule": "report",
                   "value": round(statistics.fmean(s["base_accuracy"] for s in summaries), 4),
                   "source": f"{how}; the base model is the same for every seed"})
    return {"reproduction": name, "recorded": {"seeds": len(run_dirs), "environment": env or environment(),
                                               "wall_seconds": [s.get("wall_seconds") for s in summaries]},
            "checks": checks}


def _run_commit(run_dir: Path) -> str | None:
    """The git commit a finished run was made at (its ``env.json``), or None if it did not say."""
    try:
        return json.loads((run_dir / ENV_FILE).read_text()).get("git_commit")
    except (OSError, ValueError):
        return None


def check_settings(seeds: list[int], *, every: int, window: int) -> None:
    """Refuse what would make a recording wrong, before any seed runs: a step spacing or window below 1 (a window
    of 0 averaged every step so far, and ``verify`` refuses the expected.json it wrote), no seed, or a seed twice
    (its one run would count as two seeds, narrowing the band)."""
    problems = [f"--{flag} {value}: need >= 1" for flag, value in (("every", every), ("window", window)) if value < 1]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if not seeds:
        problems.append("--seeds: give at least one seed")
    if repeated:
        problems.append(f"--seeds {' '.join(map(str, seeds))}: seed {', '.join(map(str, repeated))} given twice; each "
                        "seed is one run, and a band is only as wide as the runs are independent")
    if problems:
        raise UserError("; ".join(problems))


def record(name: str, seeds: list[int], *, every: int = 10, window: int = 5, out_root: str = "runs/record") -> Path:
    """Run ``name`` once per seed and write its ``expected.json``; return the file written."""
    from tinyzero_trl.reproduce.folders import Reproduction
    from tinyzero_trl.reproduce.pipeline import reproduce

    repro = Reproduction.load(name)
    check_settings(seeds, every=every, window=window)
    dirty = _dirty(repro.folder)
    if dirty:
        raise UserError(f"refusing to record from a dirty tree (commit first):\n{dirty}")
    env = environment()  # now, while the tree is known clean: edits made while the seeds run do not count
    run_dirs = []
    for seed in seeds:
        out = Path(out_root) / f"{name}-seed{seed}"
        if (out / "summary.json").is_file():
            # A finished seed is reused (a recording interrupted after seed 1 need not redo it), but only when it
            # was made at this commit: a run from older code must not stand in for this recording.
            made_at = _run_commit(out)
            if made_at != env.get("git_commit"):
                raise UserError(f"{out} holds a finished run from commit {made_at}, not {env.get('git_commit')}:"
                                " remove it to record this commit")
        else:
            code = reproduce(name, output_dir=str(out), extra=[f"seed={seed}"])
            if code != 0:
                raise RuntimeError(f"seed {seed} failed (exit {code}); see {out}")
        run_dirs.append(out)
    expected = build_expected(name, run_dirs, every=every, window=window, env=env)
    target = repro.folder / "expected.json"
    target.write_text(json.dumps(expected, indent=2) + "\n")
    from tinyzero_trl.verification.curves import plot_curves

    plot_curves({f"seed {s}": d for s, d in zip(seeds, run_dirs)}, repro.folder / "curves.png",
                title=f"{name}: {len(seeds)} recorded seeds")
    return target
