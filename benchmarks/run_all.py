"""Run every benchmark and print one table; `nox -s bench` calls this.

    python benchmarks/run_all.py [--quick] [--only rewards,trainer,tiny,vllm] [--json OUT]

The vllm suite needs the vLLM environment (README "vLLM on CPU"); `nox -s bench` runs it there.

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

    def bench_vllm(quick):
        import bench_vllm

        return bench_vllm.run(quick=quick)

    suites = {"rewards": bench_rewards.run, "trainer": bench_trainer.run, "tiny": bench_tiny.run, "vllm": bench_vllm}
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
    if "vllm" in results:
        v, e = results["vllm"], results["vllm"]["evaluation"]
        rows += [("GRPO step time, HF generate / vLLM colocate", f"{v['grpo_step_ratio']:.2f}", "> 1: vLLM faster"),
                 ("evaluation throughput, vLLM / HF generate", f"{e['throughput_ratio']:.2f}", "> 1: vLLM faster"),
                 ("  the same with vLLM's engine start-up", f"{e['throughput_ratio_with_start_up']:.2f}", ""),
                 ("  greedy agreement vLLM vs HF", f"{e['greedy_agreement']:.3f}", "1.0")]
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{a.ljust(width)}  {b:>10}  {c}" for a, b, c in rows))
    if args.json:
        old = json.loads(Path(args.json).read_text()) if Path(args.json).is_file() else {}
        if set(results) - {"machine"} == {"vllm"}:  # the vllm suite alone (nox bench_vllm) adds to the others
            results = {**old, "vllm": results["vllm"], "machine_vllm": results["machine"]}
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(HERE))
    sys.exit(main())
