"""Health while a run trains: the rules of ``run.health`` on every logged step, and the one metric they read that TRL
does not log.

``HealthCallback`` prints a rule's line once, when it fires, and records it in ``run.json`` (``health``: rule ->
step and line). With ``stop_without_signal=N`` it also ends a run whose every group had the same reward for N
logged steps in a row (``stopped`` holds the line); ``trainer.train`` then fails the run with it
(``NoLearningSignal``, exit 1) instead of saving it.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from transformers import TrainerCallback

from tinyzero_trl.run.health import FLAT, IDENTICAL, RULES, Monitor, identical_groups
from tinyzero_trl.run.metrics import METRICS_FILE, read_metrics
from tinyzero_trl.run.status import update_status


def with_identical_groups(func):
    """``func``, a TRL reward function, that also logs ``health/identical_groups`` for every batch it scores.

    TRL logs nothing that tells greedy sampling (every completion of a prompt the same) from a reward that ignores
    the completion: both show only as ``frac_reward_zero_std`` = 1. TRL hands reward functions the completions'
    token ids and a ``log_metric`` to log a number of their own, which this uses; the rewards are ``func``'s.
    """

    @functools.wraps(func)
    def reward(*args, **kwargs):
        log, ids, prompts = kwargs.get("log_metric"), kwargs.get("completion_ids"), kwargs.get("prompts")
        share = identical_groups(prompts, ids) if callable(log) and ids and prompts else None
        if share is not None:
            log(IDENTICAL, share)
        return func(*args, **kwargs)

    return reward


class HealthCallback(TrainerCallback):
    """Evaluate the health rules on each logged step; print and record each rule once; stop a run with no signal.

    Every rank evaluates the rules on the same logged (gathered) metrics, so every rank decides to stop at the same
    step; only the writer prints and records. ``resume_step``: a resumed run replays its logged steps up to the
    checkpoint first, so a window that spans the restart still counts and a rule that fired before stays quiet.
    """

    def __init__(self, output_dir: str | os.PathLike, *, rewards: dict | None = None, is_writer: bool = True,
                 resume_step: int | None = None, stop_without_signal: int | None = None):
        self.out, self.is_writer, self.stop_without_signal = Path(output_dir), is_writer, stop_without_signal
        self.monitor = Monitor(rewards)
        self.stopped: str | None = None
        metrics = self.out / METRICS_FILE
        if resume_step and metrics.is_file():
            for row in read_metrics(metrics, strict=False):
                if row["step"] <= resume_step:
                    self.monitor.observe(row)
        self.recorded = {f.rule: {"step": f.step, "line": f.line} for f in self.monitor.fired.values()}
        # A trainer built outside a claimed run directory (a test, a notebook) has none yet: nothing to record then.
        if is_writer and self.out.is_dir():
            # {} says "monitored, nothing fired"; a resumed run drops the findings of steps it trains again
            update_status(self.out, health=self.recorded)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return control
        for found in self.monitor.observe({"step": state.global_step, **logs}):
            if self.is_writer and state.is_world_process_zero:
                print(f"[tinyzero-trl] {found.line}", file=sys.stderr, flush=True)
                self.recorded[found.rule] = {"step": found.step, "line": found.line}
                update_status(self.out, health=self.recorded)
        limit = self.stop_without_signal
        if limit and self.stopped is None and self.monitor.flat_steps() >= limit:
            self.stopped = no_signal_message(state.global_step, limit)
            control.should_training_stop = True
        return control


def no_signal_message(step: int, limit: int) -> str:
    """The line a run stopped by ``stop_without_signal`` ends with."""
    rule = next(r for r in RULES if r.name == "no_signal")
    return (f"stopped at step {step} by stop_without_signal={limit}: {FLAT} was 1 at the last {limit} logged steps, "
            f"every group's completions got the same reward and nothing was learned. Check first: "
            f"{rule.check_first}; then start over with fresh=true")
