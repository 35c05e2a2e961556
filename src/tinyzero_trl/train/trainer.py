"""From a checked ``RunConfig`` to a finished run directory, through TRL's ``GRPOTrainer``.

This is the thin wrapper: it resolves the model, data and rewards the recipe names, hands them to TRL with the
``GRPOConfig`` the config check built, and keeps the run directory honest while it trains: ``run.json`` with
status, process and heartbeat, ``env.json``, ``metrics.jsonl``, resume from the latest checkpoint. The run
directory was claimed and ``config.yaml`` written before this runs (``train.entry``); nothing is checked again.
"""

from __future__ import annotations

import copy
import functools
import os
import signal
import threading
from pathlib import Path

from accelerate import PartialState

from tinyzero_trl.config.schema import RunConfig
from tinyzero_trl.errors import ConfigError
from tinyzero_trl.model.stopping import Stops, stop_settings
from tinyzero_trl.run.claim import checkpoint_step, latest_checkpoint
from tinyzero_trl.run.environment import ENV_FILE, environment
from tinyzero_trl.run.files import write_json
from tinyzero_trl.run.metrics import METRICS_FILE
from tinyzero_trl.run.secrets import placeholder
from tinyzero_trl.run.status import HEARTBEAT_SECONDS, mark_running, this_process, update_status
from tinyzero_trl.train import console
from tinyzero_trl.train.callbacks import MetricsCallback, StopAtStep
from tinyzero_trl.train.health import HealthCallback, with_identical_groups


class Interrupted(BaseException):
    """Training stopped by a signal (SIGTERM from ``docker stop``, Slurm or kill); ``run.json`` says so."""

    def __init__(self, signum: int):
        self.signal = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal}")


def _raise_interrupted(signum, frame):
    # Once: a launcher forwards the signal to every process of the group, and a second one arriving while run.json
    # is being written would cut that write short. What still does not stop gets SIGKILL from the launcher.
    signal.signal(signum, signal.SIG_IGN)
    raise Interrupted(signum)


def peft_config(cfg: RunConfig):
    """A peft ``LoraConfig`` when the recipe asks for LoRA, else None."""
    if cfg.model.lora is None:
        return None
    from peft import LoraConfig

    lora = cfg.model.lora
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def callbacks(cfg: RunConfig, *, is_writer: bool, checkpoint: str | None) -> list:
    """Our trainer callbacks: metrics.jsonl (its lines after ``checkpoint``'s step set aside: this run trains those
    steps again), the health rules (and ``stop_without_signal``) and, when the recipe says so, the stop at
    ``stop_at_step``."""
    resume = checkpoint_step(checkpoint)
    metrics = MetricsCallback(cfg.output_dir, is_writer=is_writer, resume_step=resume)
    health = HealthCallback(cfg.output_dir, rewards=cfg.rewards, is_writer=is_writer, resume_step=resume,
                            stop_without_signal=cfg.stop_without_signal, fp16=bool(cfg.training.fp16))
    found = [health, metrics]  # health first: the metric it adds to a step's logs is then written with them
    return found + ([StopAtStep(cfg.stop_at_step)] if cfg.stop_at_step else [])


def build_trainer(cfg: RunConfig, state: PartialState, checkpoint: str | None = None):
    """The ``GRPOTrainer`` of ``cfg``: its model, its task's data, its rewards, and our callbacks."""
    from trl import GRPOTrainer

    from tinyzero_trl.data import get_task
    from tinyzero_trl.model.loading import load_processing_class
    from tinyzero_trl.rewards import get_reward_funcs, reading

    task = get_task(cfg.data.task)
    processing_class = load_processing_class(cfg.model.name_or_path, images=task.images,
                                             revision=cfg.model.revision,
                                             trust_remote_code=cfg.model.trust_remote_code)
    with state.main_process_first():  # one process builds the datasets cache, the others reuse it
        splits = task.load(cfg.data, processing_class, seed=cfg.seed)
    funcs, _ = get_reward_funcs(cfg.rewards)  # the weights are in cfg.training.reward_weights
    funcs = [with_identical_groups(funcs[0]), *funcs[1:]]  # one metric the health rules read (train.health)
    args = cfg.training
    from tinyzero_trl.train import unsynced

    if unsynced.wanted(args):  # a rehearsal of server mode on CPU only (train/unsynced.py)
        unsynced.skip_server_weight_sync()
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    strings, token_ids, rest = stop_settings(args.generation_kwargs)
    stops = Stops.split(strings, tokenizer, token_ids)
    if stops.strings:  # the rewards read the text up to the first stop string (see model.stopping)
        funcs = [reading(f, stops.cut) for f in funcs]
    args.generation_kwargs = {**rest, **{k: v for k, v in stops.vllm().items() if v}} if args.use_vllm else rest
    use_eval = str(args.eval_strategy) not in ("no", "IntervalStrategy.NO")
    ours = callbacks(cfg, is_writer=state.is_main_process, checkpoint=checkpoint)
    hub_token_to_environment(args)  # before Trainer: it creates the hub repo with the token
    try:
        trainer = GRPOTrainer(model=cfg.model.name_or_path, reward_funcs=funcs, args=args,
                              train_dataset=splits["train"], eval_dataset=splits["test"] if use_eval else None,
                              processing_class=processing_class, peft_config=peft_config(cfg), callbacks=ours)
    except NotImplementedError as err:  # trl's server mode on a trainer without CUDA (see launch.vllm_server)
        if not (args.use_vllm and args.vllm_mode == "server"):
            raise
        url = args.vllm_server_base_url or "the server"
        raise ConfigError(f"training.vllm_mode=server: the vLLM server at {url} answered, but trl 1.16 syncs the "
                          f"trainer's weights to it over NCCL only, which needs CUDA on the trainer ({err}); on CPU "
                          "use training.vllm_mode=colocate") from err
    if not args.use_vllm and (stops.strings or stops.token_ids):
        stop_hf_generation(trainer, stops, tokenizer)
    console.attach(trainer, list(cfg.rewards), str(cfg.output_dir / METRICS_FILE))
    load_optimizer_on_cpu(trainer)
    return trainer


def stop_hf_generation(trainer, stops: Stops, tokenizer) -> None:
    """Make trl's HF generation stop where vLLM would: on the stop tokens and after the stop strings.

    trl 1.16 builds the GenerationConfig of its HF path from ``generation_kwargs`` (vLLM's ``stop`` means nothing
    there) and calls ``generate`` without the tokenizer, which transformers needs to match strings; its list of
    end tokens also decides where a completion's loss mask ends, so the stop tokens join it.
    """
    trainer.eos_token_ids = list(dict.fromkeys([*trainer.eos_token_ids, *stops.token_ids]))
    for key, value in stops.hf(trainer.eos_token_ids).items():
        setattr(trainer.generation_config, key, value)
        trainer.generation_kwargs[key] = value
    if stops.strings:
        model = trainer.model
        model.generate = functools.partial(type(model).generate, model, tokenizer=tokenizer)


def load_optimizer_on_cpu(trainer) -> None:
    """Resume a multi-process CPU run: load the checkpoint's ``optimizer.pt`` to ``cpu``, not ``cpu:0``.

    With more than one process transformers 5.17 loads it with ``map_location=args.device``
    (``Trainer._load_optimizer_and_scheduler``), and on gloo accelerate sets that to the indexed device ``cpu:0``
    (``PartialState.set_device``: ``torch.device("cpu", local_process_index)``), a location ``torch.load`` cannot
    restore to ("don't know how to restore data location ... (tagged with cpu:0)"). While the optimizer loads, the
    trainer sees arguments whose device is plain ``cpu``, the same memory; nothing else changes.
    """
    import torch

    device = trainer.args.device
    if device.type != "cpu" or device.index is None:
        return
    original = trainer._load_optimizer_and_scheduler

    def load(checkpoint):
        args = trainer.args
        unindexed = copy.copy(args)
        unindexed.__dict__["_setup_devices"] = torch.device("cpu")  # TrainingArguments.device's cached value
        trainer.args = unindexed
        try:
            return original(checkpoint)
        finally:
            trainer.args = args

    trainer._load_optimizer_and_scheduler = load


def hub_token_to_environment(args) -> None:
    """Move ``training.hub_token`` out of the arguments and into this process's ``HF_TOKEN``.

    Trainer pickles its arguments into ``training_args.bin`` at every save and again in ``_push_from_checkpoint``,
    which then uploads that folder to the hub: a token held in the arguments would be pushed with each checkpoint.
    Held in ``HF_TOKEN`` instead (the variable huggingface_hub reads when a call passes no token), every upload
    still authenticates and no pickle of the arguments can carry it.
    """
    token = getattr(args, "hub_token", None)
    if isinstance(token, str) and token and token != placeholder("hub_token"):
        os.environ["HF_TOKEN"] = token
    args.hub_token = None


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


def train(cfg: RunConfig) -> Path:
    """Train (or resume, or extend) the claimed run in ``training.output_dir`` and return it.

    ``run.json`` reads ``running`` (with the process and a heartbeat) from before the model loads, ``completed``
    after the final model is saved, ``interrupted`` after SIGTERM or Ctrl-C, and ``failed`` with the error
    otherwise, so verification never mistakes a crashed run for a finished one.
    """
    state = PartialState(cpu=bool(cfg.training.use_cpu))
    out = cfg.output_dir
    heartbeat = _Heartbeat(out)
    checkpoint = None if cfg.fresh else latest_checkpoint(out)
    if state.is_main_process:
        write_json(out / ENV_FILE, environment())
        mark_running(out, resumed_from=checkpoint)
        heartbeat.start()
    signal.signal(signal.SIGTERM, _raise_interrupted)
    trainer = None
    try:
        trainer = build_trainer(cfg, state, checkpoint)
        heartbeat.trainer = trainer
        if state.is_main_process and checkpoint:
            print(f"[tinyzero-trl] resuming from {checkpoint}")
        trainer.train(resume_from_checkpoint=checkpoint)
        stopped = _ours(trainer, HealthCallback).stopped  # the health rules ended a run that diverged or has no signal
        if stopped:
            raise stopped
        trainer.save_model(str(out))
    except BaseException as err:
        heartbeat.stop()
        if state.is_main_process:
            _record_failure(out, err, trainer)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    heartbeat.stop()
    if state.is_main_process:
        update_status(out, status="completed", global_step=trainer.state.global_step,
                      num_train_epochs=trainer.state.num_train_epochs, train=_ours(trainer, MetricsCallback).summary)
    finish(state, trainer)
    return out


def _ours(trainer, kind):
    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, kind))


def _record_failure(out: Path, err: BaseException, trainer) -> None:
    step = {"global_step": trainer.state.global_step} if trainer is not None else {}
    if isinstance(err, (Interrupted, KeyboardInterrupt)):
        why = str(err) if isinstance(err, Interrupted) else "interrupted by SIGINT (Ctrl-C)"
        update_status(out, status="interrupted", error=why, **step)
        if trainer is not None:
            err.args = (f"{why} at step {trainer.state.global_step}",)
    else:
        update_status(out, status="failed", error=f"{type(err).__name__}: {err}", **step)


def finish(state, trainer=None) -> None:
    """Wait for every rank, shut a colocated vLLM engine down, and destroy the process group, in that order."""
    # Left to interpreter exit, gloo's worker threads can still hold tensors while Python is torn down, and a rank
    # aborts ("terminate called without an active exception") after a finished run (pytorch/pytorch#190489). Not
    # the whole cure: a gloo thread can still be freeing a last work then, which is why grpo.py ends with leave().
    state.wait_for_everyone()
    # A colocated vLLM engine tears down its process groups, the default one included: left to interpreter exit,
    # it would do so after the trainer has destroyed them ("Invalid process group specified").
    llm = getattr(getattr(trainer, "vllm_generation", None), "llm", None)
    if llm is not None:
        llm.llm_engine.engine_core.shutdown()
    state.destroy_process_group()
