"""Carry a prepared launch out, one path for ``train`` and ``reproduce``: preflight, claim, train, and around the
training whatever the caller asks to be done before and after it (a reproduction's evaluation protocol).

Each step happens once: the checks that need no training process (``config.checks.preflight``: here, after
``prepare``'s check of the model's path, unless the caller has run it: ``Prepared.checked``), the claim of the run
directory and the one write of ``config.yaml`` (machine rank 0), then ``accelerate launch``, whose ranks read that
file back (``grpo.py --run RUN_DIR``) and check nothing again.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Protocol

from tinyzero_trl.config.checks import preflight
from tinyzero_trl.errors import EXIT_FAILED
from tinyzero_trl.launch import supervise
from tinyzero_trl.launch.plan import Prepared
from tinyzero_trl.launch.vllm_server import wait_for_server
from tinyzero_trl.run.claim import open_run
from tinyzero_trl.run.secrets import secrets_env
from tinyzero_trl.run.status import RUN_FILE, read_status


class AroundTraining(Protocol):
    """What a caller has done in the claimed run directory before the trainers start and after they finish."""

    def before(self, run_dir) -> None: ...

    def after(self, run_dir) -> dict: ...


@dataclass
class Outcome:
    """How a launch ended: the exit code, the line that says why when it is not 0, and what ``around.after``
    returned (a reproduction's summary)."""

    code: int
    message: str | None = None
    after: dict | None = None


def execute(prepared: Prepared, *, debug: bool = False, server_timeout: float = 1800.0,
            secrets: dict | None = None) -> tuple[int, dict | None]:
    """Run the prepared launch: start the vLLM server if any and wait until healthy, train, stop the server.

    ``secrets``: environment entries for the training processes only (the run's tokens, ``run.secrets``): not in
    ``plan.env``, which the launch line prints. Returns the launch's exit code and the error its ranks reported
    (see ``supervise``).
    """
    plan, server = prepared.plan, None
    try:
        if plan.vllm_server is not None:
            print("[tinyzero-trl] vLLM server: " + plan.vllm_server.shell(), flush=True)
            server = subprocess.Popen(plan.vllm_server.command(), env={**os.environ, **plan.vllm_server.env()},
                                      start_new_session=True)
            wait_for_server(plan.server_url(), server, timeout=server_timeout)
        print("[tinyzero-trl] " + prepared.shell, flush=True)
        tail = bytearray() if plan.num_machines > 1 else None
        code, error = supervise.run(prepared.command, {**os.environ, **plan.env, **(secrets or {})}, debug=debug,
                                    stderr_tail=tail)
        if code != 0 and error is None and tail is not None:  # no rank reported: did a machine never join?
            line = plan.join_failure(tail.decode("utf-8", "replace"))
            if line:
                error = {"code": EXIT_FAILED, "message": line}
        return code, error
    finally:
        if server is not None:
            supervise.stop(server)


def run(prepared: Prepared, *, around: AroundTraining | None = None, debug: bool = False) -> Outcome:
    """Preflight (unless the caller ran it), claim the run directory, ``around.before``, train (unless the run is
    already finished), ``around.after``; the ``Outcome`` says how it ended."""
    if not prepared.checked:
        preflight(prepared.config, path_checked=True)  # prepare checked the model's path; a hub id is left
    out = prepared.output_dir
    # Refuse a live or different run; machine rank 0 alone sets an old run aside (fresh) and writes the config the
    # ranks will read, the other machines of a multi-node launch only check. A line when a finished run is left.
    done = open_run(out, prepared.resolved, fresh=prepared.config.fresh, write=prepared.plan.machine_rank == 0)
    if around is not None:
        around.before(out)
    if done:
        print(f"[tinyzero-trl] {done}", flush=True)
    else:
        code, error = execute(prepared, debug=debug, secrets=secrets_env(prepared.resolved))
        if error:
            return Outcome(int(error.get("code") or EXIT_FAILED), error.get("message", "training failed"))
        if code != 0:
            return Outcome(EXIT_FAILED, f"the training launch exited with code {code} (see the output above)")
        if read_status(out).get("status") != "completed":
            return Outcome(EXIT_FAILED, f"training did not complete; see {out / RUN_FILE}")
    return Outcome(0, after=around.after(out) if around is not None else None)
