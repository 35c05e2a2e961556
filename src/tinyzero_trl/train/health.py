"""Health while a run trains: the rules of ``run.health`` on every logged step, and the two metrics they read that
TRL does not log.

``HealthCallback`` prints a rule's line once, when it fires, and records it in ``run.json`` (``health``: rule ->
step and line). At a step whose ``grad_norm`` is not finite it looks at the weights themselves and logs whether they
still are numbers (``health/nonfinite_weights``); when they are not, the ``diverged`` rule ends the run there
(``stopped`` holds ``Diverged``): nothing after can learn, so no further step, checkpoint or final model. With
``stop_without_signal=N`` it also ends a run whose every group had the same reward for N logged steps in a row
(``NoLearningSignal``). ``trainer.train`` then fails the run with what ``stopped`` holds (exit 1) instead of saving it.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from transformers import TrainerCallback

from tinyzero_trl.errors import Diverged, NoLearningSignal, UserError
from tinyzero_trl.run.health import (
    FLAT,
    GRAD_NORM,
    IDENTICAL,
    NONFINITE,
    RULES,
    Monitor,
    identical_groups,
    not_finite,
)
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


def nonfinite_weights(model) -> bool:
    """Whether a trainable weight of ``model`` is NaN or infinite on any process (every process must call it).

    Under DeepSpeed ZeRO-3 a process holds empty placeholders (their shards are the optimizer's), which count as
    finite: ZeRO's optimizers skip a step whose gradient is not finite instead of applying it.
    """
    import torch

    local = any(not bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad and p.numel())
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return local
    from accelerate import PartialState

    flag = torch.tensor([1.0 if local else 0.0], device=PartialState().device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)  # one answer on every rank
    return bool(flag.item())


class HealthCallback(TrainerCallback):
    """Evaluate the health rules on each logged step; print and record each rule once; stop a run that diverged or
    (``stop_without_signal``) has no signal.

    Every rank evaluates the rules on the same logged (gathered) metrics, so every rank decides to stop at the same
    step; only the writer prints and records. It must come before ``MetricsCallback``: the metric it adds to a step's
    logs goes to metrics.jsonl with them. ``resume_step``: a resumed run replays its logged steps up to the
    checkpoint first, so a window that spans the restart still counts and a rule that fired before stays quiet.
    """

    def __init__(self, output_dir: str | os.PathLike, *, rewards: dict | None = None, is_writer: bool = True,
                 resume_step: int | None = None, stop_without_signal: int | None = None, fp16: bool = False):
        self.out, self.is_writer, self.stop_without_signal = Path(output_dir), is_writer, stop_without_signal
        self.monitor = Monitor(rewards, fp16=fp16)
        self.stopped: UserError | None = None  # what trainer.train fails the run with
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

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if not logs:
            return control
        # grad_norm is the global norm, the same on every rank, so every rank comes here and joins the check's reduce
        if not_finite(logs.get(GRAD_NORM)) and model is not None:
            logs[NONFINITE] = float(nonfinite_weights(model))
        for found in self.monitor.observe({"step": state.global_step, **logs}):
            if self.is_writer and state.is_world_process_zero:
                print(f"[tinyzero-trl] {found.line}", file=sys.stderr, flush=True)
                self.recorded[found.rule] = {"step": found.step, "line": found.line}
                update_status(self.out, health=self.recorded)
            if found.rule == "diverged" and self.stopped is None:
                self.stopped = Diverged(f"stopped at step {found.step}: {found.seen}; the run diverged. Check first: "
                                        + _rule("diverged").check_first)
                control.should_training_stop = True
                control.should_save = False  # a checkpoint of NaN weights would be what a resume starts from
        limit = self.stop_without_signal
        if limit and self.stopped is None and self.monitor.flat_steps() >= limit:
            self.stopped = NoLearningSignal(no_signal_message(state.global_step, limit))
            control.should_training_stop = True
        return control


def no_signal_message(step: int, limit: int) -> str:
    """The line a run stopped by ``stop_without_signal`` ends with."""
    rule = _rule("no_signal")
    return (f"stopped at step {step} by stop_without_signal={limit}: {FLAT} was 1 at the last {limit} logged steps, "
            f"every group's completions got the same reward and nothing was learned. Check first: "
            f"{rule.check_first}; then start over with fresh=true")


def _rule(name: str):
    return next(r for r in RULES if r.name == name)
