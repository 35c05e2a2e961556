"""verify on a rehearsal (``reproduce NAME --rehearse``): every check evaluated, nothing ever passed.

A rehearsal runs a GPU reproduction's whole path on CPU with a random tiny model for a few steps, so its numbers
say nothing about the claim. ``verify`` still applies every check of the folder's real ``expected.json`` to it,
so that a check that could not be judged on a real run (a metric never logged, a figure never written, a step
the real run stops before) shows up now. A reference step of the real run is read at the same share of the
rehearsal (step s of a real run of T steps is rehearsal step ceil(s x R / T), at the first logged step from
there), and must lie within the real run. A row inside its band reads ``IN-BAND``, never ``PASS``, and the
verdict is FAIL (some row outside its band) or UNCHECKED: a rehearsal is never a pass.
"""

from __future__ import annotations

import math

from tinyzero_trl.errors import UnusableRun

IN_BAND = "IN-BAND"


def rehearsal_step(step: int, record: dict, logged: list[int], where: str) -> int:
    """The logged rehearsal step that stands for reference step ``step`` of the real run."""
    real, last = record.get("real_last_step"), record["last_step"]
    if real is not None and step > real:
        raise UnusableRun(f"{where}: reference step {step} is past step {real}, where the real run stops "
                          "(stop_at_step / training.max_steps): no run of this folder could be judged there")
    mapped = max(1, math.ceil(step * last / real)) if real else last
    later = [s for s in logged if s >= mapped]
    return later[0] if later else logged[-1]


def relabel(table: list) -> tuple[str, list]:
    """``(verdict, table)`` of a rehearsal: rows that would pass read ``IN-BAND``; FAIL if any row fails, else
    UNCHECKED."""
    for row in table:
        if row.verdict == "PASS":
            row.verdict = IN_BAND
    return ("FAIL" if any(r.verdict == "FAIL" for r in table) else "UNCHECKED"), table


def heading(name: str, record: dict) -> str:
    """The first line of verify's output and report on a rehearsal."""
    return (f"REHEARSAL of {name}, not a reproduction: a random {record.get('model', 'model')} stand-in on mirror "
            f"data, {len(record.get('replacements') or [])} replacements (rehearsal.json); judged, never passed")
