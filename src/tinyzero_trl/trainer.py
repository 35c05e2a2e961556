"""From a validated ``RunConfig`` to a finished run directory, through TRL's ``GRPOTrainer``.

This is the thin wrapper: it resolves the model, data and rewards the recipe names, hands them to TRL
unchanged, and keeps the run directory honest: ``run.json`` with status, process and heartbeat; env.json and
config.yaml; metrics.jsonl; resume from the latest checkpoint; a finished run left alone.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from accelerate import PartialState
from transformers import TrainerCallback

from tinyzero_trl.config import ConfigError, RunConfig
from tinyzero_trl.metrics_callback import MetricsCallback
from tinyzero_trl.processing import check_model, load_processing_class
from tinyzero_trl.run_dir import (
    ENV_FILE,
    HEARTBEAT_SECONDS,
    check_writable,
    checkpoint_step,
    claim,
    environment,
    latest_checkpoint,
    start_run,
    this_process,
    update_status,
    write_json,
)


class Interrupted(BaseException):
    """Training stopped by a signal (SIGTERM from ``docker stop``, Slurm or kill); ``run.json`` says so."""

    def __init__(self, signum: int):
        self.signal = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal}")


class StopAtStep(TrainerCallback):
    """Ends training after ``step`` (saving a checkpoint there) while the schedule keeps the whole run's length."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
            control.should_save = True
        return control


def _raise_interrupted(signum, frame):
    # Once: a launcher forwards the signal to every process of the group, and a second one arriving while run.json
    # is being written would cut that write short. What still does not stop gets SIGKILL from the launcher.
    signal.signal(signum, signal.SIG_IGN)
    raise Interrupted(signum)


def grpo_args(cfg: RunConfig, reward_weights: list[float]):
    """``trl.GRPOConfig`` from ``cfg.training``, plus what the wrapper owns (seed, weights, model kwargs)."""
    from trl import GRPOConfig

    model_kwargs = {"dtype": cfg.model.dtype}
    for key in ("revision", "attn_implementation"):
        if getattr(cfg.model, key) is not None:
            model_kwargs[key] = getattr(cfg.model, key)
    if cfg.model.trust_remote_code:
        model_kwargs["trust_remote_code"] = True
    training = dict(cfg.training)
    training.setdefault("seed", cfg.seed)
    training.setdefault("report_to", [])
    training["model_init_kwargs"] = {**model_kwargs, **(training.get("model_init_kwargs") or {})}
    try:
        return GRPOConfig(**training, reward_weights=reward_weights)
    except ValueError as err:  # trl's own consistency checks (batch sizes vs num_generations, ...)
        raise ConfigError(f"training: {str(err).strip().splitlines()[0]}") from err


def peft_config(cfg: RunConfig):
    """A peft ``LoraConfig`` when the recipe asks for LoRA, else None."""
    if cfg.model.lora is None:
        return None
    from peft import LoraConfig

    lora = cfg.model.lora
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def build_trainer(cfg: RunConfig, *, resume: bool = True):
    """Resolve model, data and rewards and return ``(trainer, checkpoint_to_resume_or_None)``."""
    from trl import GRPOTrainer

    from tinyzero_trl.data import load_task_data
    from tinyzero_trl.rewards import get_reward_funcs

    state = PartialState(cpu=bool(cfg.training.get("use_cpu", False)))
    out = Path(cfg.training["output_dir"])
    checkpoint = latest_checkpoint(out) if resume else None
    check_model(cfg.model.name_or_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code)
    processing_class = load_processing_class(cfg.model.name_or_path, cfg.data.task, revision=cfg.model.revision,
                                             trust_remote_code=cfg.model.trust_remote_code)
    with state.main_process_first():  # one process builds the datasets cache, the others reuse it
        splits = load_task_data(cfg.data, processing_class, seed=cfg.seed)
    funcs, weights = get_reward_funcs(cfg.rewards)
    args = grpo_args(cfg, weights)
    use_eval = str(args.eval_strategy) not in ("no", "IntervalStrategy.NO")
    try:
        trainer = GRPOTrainer(
            model=cfg.model.name_or_path,
            reward_funcs=funcs,
            args=args,
            train_dataset=splits["train"],
            eval_dataset=splits["test"] if use_eval else None,
            processing_class=processing_class,
            peft_config=peft_config(cfg),
            callbacks=[MetricsCallback(out, is_writer=state.is_main_process, resume_step=checkpoint_step(checkpoint)),
                       *([StopAtStep(cfg.stop_at_step)] if cfg.stop_at_step else [])],
        )
    except NotImplementedError as err:  # trl's server mode on a trainer without CUDA (see vllm_server)
        from tinyzero_trl.vllm_server import server_sync_error

        error = server_sync_error(args, err)
        if error is None:
            raise
        raise error from err
    return trainer, checkpoint


class _Heartbeat(threading.Thread):
    """Writes the heartbeat (and the step, once training runs) into run.json, from the main process only."""

    def __init__(self, out: Path):
        super().__init__(name="tinyzero-heartbeat", daemon=True)
        self.out, self.trainer, self.stopped = out, None, threading.Event()

    def run(self):
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            beat = {"heartbeat": this_process()["heartbeat"]}
            if self.trainer is not None:
                beat["global_step"] = self.trainer.state.global_step
            try:
                update_status(self.out, **beat)
            except (OSError, ValueError):  # a full disk must not kill training; the next beat tries again
                pass

    def stop(self) -> None:
        """Stop beating and wait for a write in progress, so no beat lands after the final status."""
        self.stopped.set()
        if self.is_alive():
            self.join()


def open_run(cfg: RunConfig, resolved: dict, state) -> str | None:
    """Claim the run directory for this launch; return a line if there is nothing to do (a finished run).

    Every rank reads the same files and reaches the same decision without talking to the others, so a refusal
    never leaves a rank waiting at a barrier. Then the main process sets an old run aside (``fresh``) and
    records config.yaml, env.json and run.json ``running`` with its process and heartbeat.
    """
    out = Path(cfg.training["output_dir"])
    check_writable(out)
    done = claim(out, resolved, fresh=cfg.fresh)
    if done:
        return done
    with state.main_process_first():
        if state.is_main_process:
            start_run(out, resolved, fresh=cfg.fresh)
            write_json(out / ENV_FILE, environment())
    return None


def train(cfg: RunConfig, *, resolved: dict | None = None) -> Path | None:
    """Train (or resume, or extend) the run in ``training.output_dir``; return it, or None if it was finished.

    ``run.json`` reads ``running`` (with the process and a heartbeat) from before the model loads, ``completed``
    after the final model is saved, ``interrupted`` after SIGTERM or Ctrl-C, and ``failed`` with the error
    otherwise, so verification never mistakes a crashed run for a finished one.
    """
    state = PartialState(cpu=bool(cfg.training.get("use_cpu", False)))
    out = Path(cfg.training["output_dir"])
    done = open_run(cfg, resolved or cfg.to_dict(), state)
    if done:
        if state.is_main_process:
            print(f"[tinyzero-trl] {done}")
        _finish(state)
        return None
    heartbeat = _Heartbeat(out)
    if state.is_main_process:
        update_status(out, status="running", error=None, **this_process())
        heartbeat.start()
    signal.signal(signal.SIGTERM, _raise_interrupted)
    trainer = None
    try:
        trainer, checkpoint = build_trainer(cfg, resume=not cfg.fresh)
        heartbeat.trainer = trainer
        if state.is_main_process:
            update_status(out, resumed_from=checkpoint)
            if checkpoint:
                print(f"[tinyzero-trl] resuming from {checkpoint}")
        trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model(str(out))
    except BaseException as err:
        heartbeat.stop()
        if state.is_main_process:
            step = {"global_step": trainer.state.global_step} if trainer is not None else {}
            if isinstance(err, (Interrupted, KeyboardInterrupt)):
                why = str(err) if isinstance(err, Interrupted) else "interrupted by SIGINT (Ctrl-C)"
                update_status(out, status="interrupted", error=why, **step)
                if trainer is not None:
                    err.args = (f"{why} at step {trainer.state.global_step}",)
            else:
                update_status(out, status="failed", error=f"{type(err).__name__}: {err}", **step)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    heartbeat.stop()
    if state.is_main_process:
        callback = next(c for c in trainer.callback_handler.callbacks if isinstance(c, MetricsCallback))
        update_status(out, status="completed", global_step=trainer.state.global_step,
                      num_train_epochs=trainer.state.num_train_epochs, train=callback.summary)
    _finish(state, trainer)
    return out


def _finish(state, trainer=None) -> None:
    # Left to interpreter exit, gloo's worker threads can still hold tensors while Python is torn down, and a rank
    # aborts ("terminate called without an active exception") after a finished run (pytorch/pytorch#190489).
    state.wait_for_everyone()
    if trainer is not None:  # a colocated vLLM engine tears down its process groups, the default one included
        from tinyzero_trl.generation import shutdown_colocated_vllm

        shutdown_colocated_vllm(trainer)
    state.destroy_process_group()
