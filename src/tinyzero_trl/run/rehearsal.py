"""``rehearsal.json``: the mark of a rehearsal (``reproduce NAME --rehearse``) and what it replaced.

Written into the run directory before anything trains; ``verify`` reads it to judge the run as a rehearsal (its
first line says so, it never says PASS) and ``summary.json`` repeats it, so that a rehearsal is never mistaken for
a reproduction. A copy stripped of both still fails verify: its config.yaml is not the folder's pinned config.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyzero_trl.run.files import read_json, write_json
from tinyzero_trl.run.summary import read_summary

REHEARSAL_FILE = "rehearsal.json"


def write_rehearsal(run_dir: str | os.PathLike, record: dict) -> None:
    """Mark ``run_dir`` as a rehearsal, with ``record`` (the plan: what was replaced and why)."""
    write_json(Path(run_dir) / REHEARSAL_FILE, record)


def read_rehearsal(run_dir: str | os.PathLike) -> dict | None:
    """The rehearsal record of ``run_dir`` (``rehearsal.json``, else ``summary.json``'s ``rehearsal``), or None for a
    run that is not a rehearsal."""
    record = read_json(Path(run_dir) / REHEARSAL_FILE) or read_summary(run_dir).get("rehearsal")
    return record or None
