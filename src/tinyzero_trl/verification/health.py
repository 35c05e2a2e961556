"""``tinyzero-trl health RUN_DIR``: a run, live or finished, judged by the health rules (``run.health``).

Verdicts and exit codes as verify's: HEALTHY (0, no rule fired), UNHEALTHY (1, a rule fired: its line says what to
check first), 2 a run that cannot be read (``UnusableRun``), UNCHECKED (3, no rule has the logged steps it needs
yet: never reported as healthy).
"""

from __future__ import annotations

import json
from pathlib import Path

from tinyzero_trl.errors import EXIT_FAILED, EXIT_OK, EXIT_UNCHECKED, UnusableRun, report
from tinyzero_trl.run.health import judge_run
from tinyzero_trl.run.metrics import MetricsError
from tinyzero_trl.run.status import describe_unfinished, read_status

VERDICT_EXIT = {"HEALTHY": EXIT_OK, "UNHEALTHY": EXIT_FAILED, "UNCHECKED": EXIT_UNCHECKED}


def health(run_dir: Path, *, as_json: bool = False) -> int:
    """Print the verdict on ``run_dir`` and return its exit code: the rules' states as a table (or JSON), each fired
    rule's line, the verdict. ``UnusableRun`` (file and line named, exit 2) when the run cannot be read."""
    code, text = judge(run_dir, as_json=as_json)
    print(text)
    if code == EXIT_UNCHECKED:  # on stderr: --json output must stay one JSON document
        report("health", f"{run_dir}: no rule has the logged steps it needs yet: reported only, not healthy")
    return code


def judge(run_dir: Path, *, as_json: bool = False) -> tuple[int, str]:
    """The exit code of the verdict on ``run_dir``, and the text ``health`` prints."""
    try:
        monitor = judge_run(run_dir)
    except MetricsError as err:
        raise UnusableRun(str(err)) from err
    status = read_status(run_dir)
    states = monitor.states()
    fired = [monitor.fired[rule.name] for rule, state, _ in states if state == "FIRED"]
    # a run judged only by a rule that judges from its first step (diverged) has not yet shown it can learn
    judged = any(state == "FIRED" or state == "ok" and rule.vouches for rule, state, _ in states)
    verdict = "UNHEALTHY" if fired else "HEALTHY" if judged else "UNCHECKED"
    if as_json:
        return VERDICT_EXIT[verdict], json.dumps({
            "run_dir": str(run_dir), "verdict": verdict, "status": status.get("status"),
            "rules": [{"rule": r.name, "state": st, "step": monitor.fired[r.name].step if st == "FIRED" else None,
                       "detail": d} for r, st, d in states]}, indent=2)
    steps = [r["step"] for r in monitor.rows]
    where = "completed" if status.get("status") == "completed" else f"the run {describe_unfinished(status)}"
    lines = [f"{run_dir}: {where}; {len(steps)} logged training steps" + (f" ({steps[0]}-{steps[-1]})" if steps
                                                                           else "")]
    width = max(len(r.name) for r, _, _ in states)
    lines += [f"  {rule.name:{width}}  {state:9}  {detail}" for rule, state, detail in states]
    lines += [f"\n{found.line}" for found in fired]
    lines.append(f"\n{run_dir}: {verdict}")
    return VERDICT_EXIT[verdict], "\n".join(lines)
