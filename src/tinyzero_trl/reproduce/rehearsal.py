"""``tinyzero-trl reproduce NAME --rehearse``: a GPU reproduction's whole path, run on CPU.

    the folder's config -> the rehearsal plan (rehearsal_plan: what is replaced, printed first) -> the folder's
    checks (consistency) -> plan and check the launch as reproduce does -> the stand-in model and the data
    mirrors -> the training data and the evaluation's held-out rows and scorer, loaded and checked -> claim, base
    evaluation, GRPO, final evaluation (launch.run, as reproduce) -> summary.json, curves.png -> verify

Everything before "claim" loads no weights and starts no process, so a broken folder (an unknown reward, a
metric the recipe never logs, a scorer the task cannot use, a renamed dataset column) fails there with one line
and exit 2, before any training step. The run directory (default ``runs/NAME-rehearsal``) holds what a real run
leaves, plus ``rehearsal.json``; ``summary.json`` lists the replacements too, and ``verify`` judges the run
against the folder's real ``expected.json`` as a rehearsal (never PASS).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from tinyzero_trl.errors import EXIT_BAD_INPUT, UnusableRun, report
from tinyzero_trl.reproduce.folders import Reproduction, runs_root
from tinyzero_trl.reproduce.rehearsal_plan import RehearsalPlan, plan_rehearsal


def assets_root() -> Path:
    """Where stand-in models and mirrors are built: ``$TINYZERO_CACHE/rehearsal`` (``~/.cache/tinyzero-trl``)."""
    from tinyzero_trl.tiny.pretrain import cache_dir

    return cache_dir("rehearsal")


@contextlib.contextmanager
def environment(values: dict):
    """``values`` in ``os.environ`` for the rehearsal (its evaluation runs here, its trainers inherit them)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_assets(plan: RehearsalPlan, repro: Reproduction, assets: Path) -> None:
    """The stand-in model, the hub mirrors, and a benchmark folder prepared by the folder's own script."""
    from tinyzero_trl.tiny.hub_mirrors import build_mirror, superclevr_sources
    from tinyzero_trl.tiny.rehearsal import build_rehearsal_model

    build_rehearsal_model(plan.model, plan.model_dir)
    for dataset in plan.datasets:
        build_mirror(assets / "hub", dataset)
    if plan.superclevr:
        source = superclevr_sources(assets / "superclevr-source")
        script = repro.folder / "prepare_superclevr200.py"
        done = subprocess.run([sys.executable, str(script), "--out", str(assets / "data" / "superclevr200"),
                               "--from-dir", str(source)], capture_output=True, text=True)
        if done.returncode != 0:
            raise UnusableRun(f"{script} --from-dir {source} failed: {(done.stderr or done.stdout).strip()[-300:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Recorded:
    """The protocol, with the run directory marked as a rehearsal first (``rehearsal.json``, ``summary.json``)."""

    def __init__(self, plan: RehearsalPlan, protocol):
        self.plan, self.protocol = plan, protocol

    def before(self, run_dir) -> None:
        from tinyzero_trl.run.rehearsal import write_rehearsal
        from tinyzero_trl.run.summary import update_summary

        write_rehearsal(run_dir, self.plan.record())
        update_summary(run_dir, rehearsal=self.plan.record())
        if self.protocol is not None:
            self.protocol.before(run_dir)

    def after(self, run_dir) -> dict:
        return self.protocol.after(run_dir) if self.protocol is not None else {}


def rehearse(name: str, *, output_dir: str | None = None, extra: list[str] | None = None,
             debug: bool = False) -> int:
    """Rehearse reproduction ``name`` end to end (see the module docstring) and return the exit code."""
    from tinyzero_trl.launch.plan import prepare
    from tinyzero_trl.launch.run import run
    from tinyzero_trl.reproduce.consistency import check_folder

    started = time.time()
    repro = Reproduction.load(name)
    out = Path(output_dir) if output_dir else runs_root() / f"{name}-rehearsal"
    assets = assets_root()
    plan = plan_rehearsal(repro, out, assets=assets)
    print(f"[tinyzero-trl] REHEARSAL of {name}: its own config.yaml on CPU, with these replacements (kept in "
          f"{out / 'summary.json'}):", flush=True)
    for replacement in plan.replacements:
        print("  - " + replacement.line(), flush=True)
    print("[tinyzero-trl] health rules a rehearsal cannot judge (README 'Run health'):", flush=True)
    for rule, why in plan.health_not_judged().items():
        print(f"  - {rule}: {why}", flush=True)
    from tinyzero_trl.config.compose import compose

    check_folder(repro, compose(repro.hydra_overrides(out, [])))
    with environment(plan.env):
        build_assets(plan, repro, assets)  # first: prepare checks that the model directory exists
        prepared = prepare(repro.hydra_overrides(out, [*plan.overrides, *(extra or [])]), accelerate=repro.accelerate,
                           num_processes=plan.num_processes, cpu=True, vllm_gpus=1 if plan.vllm_server else 0,
                           vllm_port=free_port(), header=repro.header(), sized_for_cpu=True)
        print(prepared.text, flush=True)
        protocol = _preflight(name, plan, prepared, started)
        prepared = replace(prepared, checked=True)  # the launch does not run the preflight again
        outcome = run(prepared, around=_Recorded(plan, protocol), debug=debug)
    if outcome.code != 0:
        report("reproduce", f"rehearsal of {name}: training did not complete: {outcome.message}", code=outcome.code,
               every_rank=True)
        return outcome.code
    return _finish(name, out)


def _preflight(name: str, plan: RehearsalPlan, prepared, started: float):
    """Load the training splits and the evaluation's held-out rows as the run will, and check its scorer: a data
    or scorer problem is named here, before a process starts. Returns the evaluation protocol."""
    from tinyzero_trl.config.checks import preflight
    from tinyzero_trl.data import get_task
    from tinyzero_trl.evaluation.protocol import Protocol
    from tinyzero_trl.model.loading import load_processing_class

    cfg = prepared.config
    preflight(cfg, path_checked=True)  # prepare checked the model's path
    task = get_task(cfg.data.task)
    processing_class = load_processing_class(cfg.model.name_or_path, images=task.images)
    splits = task.load(cfg.data, processing_class, seed=cfg.seed)
    print(f"[tinyzero-trl] rehearsal data: {', '.join(f'{k} {len(v)} rows' for k, v in splits.items())} "
          f"({', '.join(plan.datasets) or cfg.data.source})", flush=True)
    if plan.evaluate is None:
        return None
    protocol = Protocol(name, plan.evaluate, prepared.resolved, started)
    protocol.check()
    return protocol


def _finish(name: str, out: Path) -> int:
    """summary.json, curves.png and verify's report, as a reproduction leaves them; exit 2 if verify cannot judge."""
    from tinyzero_trl.reproduce.judge import judge
    from tinyzero_trl.run.summary import read_summary
    from tinyzero_trl.verification.curves import plot_curves
    from tinyzero_trl.verification.report import format_table

    summary = read_summary(out)
    shown = {k: v for k, v in summary.items() if k != "rehearsal"}
    print(f"[tinyzero-trl] summary: {shown} (+ the rehearsal's replacements)")
    print(f"[tinyzero-trl] curves: {plot_curves({name: out}, out / 'curves.png', title=f'{name} (REHEARSAL)')}")
    try:
        judged = judge(name, [str(out)])
    except UnusableRun as err:
        report("reproduce", f"rehearsal of {name}: verify cannot judge it: {err}", code=EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT
    print(judged.heading)
    print(format_table(judged.table))
    print(f"\n{name} rehearsal: {judged.verdict} (expected FAIL or UNCHECKED: every check was evaluated; report: "
          f"{judged.report_dir / 'verify.md'}); wall {time.strftime('%H:%M:%S', time.gmtime(summary.get('wall_seconds') or 0))}")
    return 0
