"""Run every benchmark and print one table; `nox -s bench` calls this.

    python benchmarks/run_all.py [--quick] [--only rewards,trainer,tiny] [--json OUT]

Each figure is a ratio (or a time) measured side by side in this one run on this machine; the JSON records
the machine, load and commit so figures from different machines are never compared silently.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).parent


def machine() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    return {"date": time.strftime("%Y-%m-%d"), "platform": platform.platform(), "cpus": len(os.sched_getaffinity(0)),
            "loadavg_1min": os.getloadavg()[0], "git_commit": commit.stdout.strip() or None,
            "gpu": "none on this machine: GPU step time not measured"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke check, not for the README)")
    parser.add_argument("--only", default="rewards,trainer,tiny")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import bench_rewards
    import bench_tiny
    import bench_trainer

    suites = {"rewards": bench_rewards.run, "trainer": bench_trainer.run, "tiny": bench_tiny.run}
    results = {"machine": machine()}
    for name in args.only.split(","):
        print(f"== {name} ...", flush=True)
        results[name] = suites[name](quick=args.quick)
    rows = [("figure", "value", "target")]
    if "rewards" in results:
        r = results["rewards"]
        for key, value in sorted(r.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append((f"rewards.{key}", f"{value:g}", ""))
    if "trainer" in results:
        t = results["trainer"]
        rows.append(("trainer overhead (ours / bare TRL step time)", f"{t['overhead_ratio']:.3f}", "<= 1.03"))
    if "tiny" in results:
        t = results["tiny"]
        rows += [("countdown-tiny wall seconds", f"{t['wall_seconds']}", "<= 1200"),
                 ("countdown-tiny final accuracy", f"{t['final_accuracy']}", ">= 0.40"),
                 ("countdown-tiny peak RSS MB", f"{t['peak_rss_mb']}", "")]
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{a.ljust(width)}  {b:>10}  {c}" for a, b, c in rows))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(HERE))
    sys.exit(main())
