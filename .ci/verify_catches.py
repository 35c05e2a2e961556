"""verify on a real run: it passes it, and catches a degraded, a truncated, a missing, an impossible and another
recipe's run (issues 4 and 20).

    python .ci/verify_catches.py countdown-tiny runs/countdown-tiny
    python .ci/verify_catches.py math-tiny runs/math-tiny

Copies go to a temporary folder; the run itself is left untouched. Exits non-zero, saying which case went
wrong, if any exit code differs from the documented one (0 PASS, 1 FAIL, 2 unusable input).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def verify(name: str, run_dir: Path) -> tuple[int, str]:
    out = subprocess.run(["tinyzero-trl", "verify", name, "--run-dir", str(run_dir), "--json"],
                         capture_output=True, text=True)
    verdict = json.loads(out.stdout)["verdict"] if out.stdout.strip() else "?"
    return out.returncode, verdict


def degrade(run_dir: Path) -> None:
    """Cut every reward and accuracy figure to a third, as a run that learned a third as well would log them."""
    metrics = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    for row in rows:
        for key in row:
            if key.startswith("rewards/") and key.endswith("/mean") or key == "reward":
                row[key] /= 3
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("base_accuracy", "final_accuracy"):
        summary[key] /= 3
    (run_dir / "summary.json").write_text(json.dumps(summary))


def copy_run(run_dir: Path, dest: Path) -> Path:
    """A copy of a run without its weights (verify reads none), for a case to alter."""
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("checkpoint-*", "*.safetensors"))
    return dest


def main(name: str, run: str) -> int:
    run_dir = Path(run)
    results = []
    results.append(("honest run", verify(name, run_dir), (0, "PASS")))
    with tempfile.TemporaryDirectory() as tmp:
        degraded = copy_run(run_dir, Path(tmp) / "degraded")
        degrade(degraded)
        results.append(("figures cut to a third", verify(name, degraded), (1, "FAIL")))
        cut = copy_run(run_dir, Path(tmp) / "truncated")
        text = (cut / "metrics.jsonl").read_text()
        (cut / "metrics.jsonl").write_text(text[: len(text) // 2])  # cut mid-line, as a crash mid-write leaves it
        results.append(("metrics.jsonl truncated", verify(name, cut), (2, "UNUSABLE")))
        results.append(("missing run directory", verify(name, Path(tmp) / "no-such-run"), (2, "UNUSABLE")))
        nan = copy_run(run_dir, Path(tmp) / "nan")
        lines = (nan / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])
        last["loss"] = float("nan")  # a run whose weights stopped being numbers
        (nan / "metrics.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
        results.append(("NaN loss at the last step", verify(name, nan), (2, "UNUSABLE")))
        other = copy_run(run_dir, Path(tmp) / "other-recipe")
        config = (other / "config.yaml").read_text()
        (other / "config.yaml").write_text(config.replace("learning_rate:", "learning_rate: 1.0e-05 #", 1))
        results.append(("another learning rate", verify(name, other), (2, "UNUSABLE")))
    failed = 0
    for case, got, want in results:
        ok = got == want
        failed += not ok
        print(f"{'ok  ' if ok else 'BAD '} {case:<26} exit {got[0]} {got[1]:<9} (expected exit {want[0]} {want[1]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
