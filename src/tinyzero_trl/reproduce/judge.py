"""``tinyzero-trl verify NAME``: a reproduction's runs judged against its ``expected.json``, the way ``verify`` and a
rehearsal's last step both do it.

A run marked as a rehearsal (``rehearsal.json``) is judged as one: its pinned config is the rehearsal's plan of
the folder (recomputed here, not read from the run), and ``verification.rehearsal`` maps its steps and keeps it
from ever passing. Real runs and rehearsals are never judged together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyzero_trl.errors import UnusableRun
from tinyzero_trl.reproduce.folders import Reproduction, runs_root
from tinyzero_trl.run.rehearsal import read_rehearsal


@dataclass
class Judgement:
    """What verify found: the verdict, its rows, where the report went, and the rehearsal record (None: real runs)."""

    verdict: str
    table: list
    report_dir: Path
    run_dirs: list[Path]
    rehearsal: dict | None = None
    heading: str | None = None


def rehearsal_pinned(repro: Reproduction, run_dir: Path, record: dict) -> tuple[dict, set, dict]:
    """The config a rehearsal of ``repro`` into ``run_dir`` is made with and the record to judge it by, both
    recomputed from the folder, not read from the run (the model stand-in's directory is wherever the rehearsal
    built it, so it is not pinned)."""
    from tinyzero_trl.config.compose import compose
    from tinyzero_trl.reproduce.rehearsal_plan import plan_rehearsal

    if not isinstance(record.get("model_dir"), str):  # the stand-in's directory: the plan is rebuilt from it
        raise UnusableRun(f"{run_dir / 'rehearsal.json'}: no model_dir (written by an older version, or edited); "
                          "rehearse again into an empty directory")
    assets = Path(record["model_dir"]).parents[1]
    plan = plan_rehearsal(repro, run_dir, assets=assets, vllm=bool(record.get("vllm")))
    steps = {"real_last_step": plan.real_last_step, "last_step": plan.last_step}
    return compose(repro.hydra_overrides(run_dir, plan.overrides)), {("model", "name_or_path")}, {**record, **steps}


def judge(name: str, run_dirs: list[str] | None = None, report_dir: str | None = None) -> Judgement:
    """Verify the runs of reproduction ``name`` (default ``$TINYZERO_RUNS/NAME``); ``UnusableRun`` / ``UserError``
    when they cannot be judged."""
    from tinyzero_trl.verification.rehearsal import heading
    from tinyzero_trl.verification.verify import verify_runs

    repro = Reproduction.load(name)
    dirs = [Path(d) for d in run_dirs] if run_dirs else [runs_root() / name]
    records = [read_rehearsal(d) if d.is_dir() else None for d in dirs]
    record = records[0]
    if any(bool(r) != bool(record) for r in records):
        raise UnusableRun(f"{', '.join(map(str, dirs))}: rehearsals and reproductions cannot be judged together")
    if record:
        pinned, free, record = rehearsal_pinned(repro, dirs[0], record)
    else:
        pinned, free = repro.pinned(dirs[0])
    where = Path(report_dir) if report_dir else (runs_root() / f"verify-{name}" if len(dirs) > 1 else dirs[0])
    verdict, table = verify_runs(repro.folder / "expected.json", dirs, pinned=pinned, not_pinned=free,
                                 report_dir=where, rehearsal=record)
    return Judgement(verdict, table, where, dirs, record, heading(name, record) if record else None)
