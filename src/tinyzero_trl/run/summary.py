"""``summary.json``: a reproduction's headline figures (held-out accuracy before and after, wall time).

Written as soon as each figure is known, so a run interrupted after its base evaluation keeps it, and read by
``verify``, ``record`` and the curves.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyzero_trl.run.files import read_json, write_json

SUMMARY_FILE = "summary.json"


def read_summary(run_dir: str | os.PathLike) -> dict:
    """The run's ``summary.json`` (``{}`` when there is none)."""
    return read_json(Path(run_dir) / SUMMARY_FILE)


def update_summary(run_dir: str | os.PathLike, **fields) -> dict:
    """Merge ``fields`` into ``summary.json`` and return the new summary."""
    summary = {**read_summary(run_dir), **fields}
    write_json(Path(run_dir) / SUMMARY_FILE, summary)
    return summary
