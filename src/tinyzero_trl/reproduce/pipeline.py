"""``tinyzero-trl reproduce NAME``: a reproduction folder, end to end.

    folder (read once: folders.Folder) -> plan (compose, check once: launch.plan.Prepared; expected.json against
    it: consistency) -> launch.run: preflight, claim, base evaluation, GRPO, final evaluation (summary.json,
    handed back in the Outcome) -> curves.png

``--rehearse`` runs the same path on CPU with a stand-in model and mirrored data (``rehearsal``).

Safe to run again into the same directory: a finished reproduction is left alone (one line says so), an
interrupted one resumes where it stopped (what ``summary.json`` already holds is not measured again), and
``fresh=true`` moves the old directory aside before anything.
"""

from __future__ import annotations

import time

from tinyzero_trl.errors import UserError, report
from tinyzero_trl.reproduce.folders import read_folder


def reproduce(name: str, *, output_dir: str | None = None, dry_run: bool = False, extra: list[str] | None = None,
              num_processes: int | None = None, debug: bool = False, rehearse: bool = False) -> int:
    """Run reproduction ``name`` end to end and return the exit code (see the module docstring); ``rehearse``: its
    whole path on CPU with a stand-in model and mirrored data (``reproduce.rehearsal``)."""
    from tinyzero_trl.launch.plan import cuda_available, prepare
    from tinyzero_trl.reproduce.consistency import check_folder

    if rehearse:
        if dry_run or num_processes is not None:
            raise UserError("--rehearse plans its own launch: drop --dry-run and --num-processes")
        from tinyzero_trl.reproduce.rehearsal import rehearse as run_rehearsal

        return run_rehearsal(name, output_dir=output_dir, extra=extra, debug=debug)
    started = time.time()  # wall_seconds counts everything a user waits for, the tiny base build included
    # Read once: a dry run names the tiny base's real path but builds nothing.
    folder = read_folder(name, output_dir=output_dir, extra=extra, num_processes=num_processes, build_base=not dry_run)
    repro = folder.repro
    prepared = prepare(folder.overrides, **folder.launch, header=folder.header, sized_for_cpu=repro.cpu)
    check_folder(repro, prepared.resolved)  # expected.json judges what this run will log and write
    print(prepared.text, flush=True)
    if dry_run:
        return 0
    if not repro.cpu and not cuda_available():
        raise UserError(f"{name} is sized for {repro.hardware} and no CUDA GPU is visible; run it in the CUDA image "
                        "on GPUs (docker/README.md), or try countdown-tiny on CPU")
    from tinyzero_trl.evaluation.protocol import Protocol
    from tinyzero_trl.launch.run import run

    protocol = Protocol(name, repro.evaluate, prepared.resolved, started) if repro.evaluate else None
    outcome = run(prepared, around=protocol, debug=debug)
    if outcome.code != 0:
        report("reproduce", f"training did not complete: {outcome.message}", code=outcome.code, every_rank=True)
        return outcome.code
    from tinyzero_trl.verification.curves import plot_curves

    out = prepared.output_dir
    summary = outcome.after or {}  # the protocol's summary.json, as it wrote it
    print(f"[tinyzero-trl] summary: {summary}")
    print(f"[tinyzero-trl] curves: {plot_curves({name: out}, out / 'curves.png', title=name, summaries={name: summary})}")
    return 0
