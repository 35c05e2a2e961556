"""From a validated ``RunConfig`` to a finished run directory, through TRL's ``GRPOTrainer``.

This is the thin wrapper: it resolves the model, data and rewards the recipe names, hands them to TRL
unchanged, and keeps the run directory honest (status, environment, metrics, resume).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from accelerate import PartialState

from tinyzero_trl.config import ConfigError, RunConfig
from tinyzero_trl.metrics_callback import MetricsCallback
from tinyzero_trl.processing import load_processing_class
from tinyzero_trl.run_dir import (
    CONFIG_FILE,
    ENV_FILE,
    environment,
    latest_checkpoint,
    set_aside,
    update_status,
    write_json,
)

_PATH_PREFIXES = ("/", "./", "../", "~")


def check_model(model_cfg) -> None:
    """Fail early and clearly when the model cannot be found: a missing directory or an unreachable hub id."""
    from transformers import AutoConfig

    name = model_cfg.name_or_path
    if os.path.isdir(os.path.expanduser(name)):
        if not os.path.isfile(os.path.join(os.path.expanduser(name), "config.json")):
            raise ConfigError(f"model.name_or_path={name}: the directory has no config.json (not a saved model)")
        return
    if name.startswith(_PATH_PREFIXES) or os.path.exists(name):
        raise ConfigError(f"model.name_or_path={name}: no such model directory")
    try:
        AutoConfig.from_pretrained(name, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code)
    except Exception as err:
        raise ConfigError(
            f"model.name_or_path={name}: not a local directory, and the hub could not provide it "
            f"({type(err).__name__}). Download it where the hub is reachable (it is cached in HF_HOME), "
            "or point model.name_or_path at a local directory."
        ) from err


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
    return GRPOConfig(**training, reward_weights=reward_weights)


def peft_config(cfg: RunConfig):
    """A peft ``LoraConfig`` when the recipe asks for LoRA, else None."""
    if cfg.model.lora is None:
        return None
    from peft import LoraConfig

    lora = cfg.model.lora
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def build_trainer(cfg: RunConfig, *, resolved: dict | None = None):
    """Resolve model, data and rewards and return ``(trainer, checkpoint_to_resume_or_None)``."""
    from trl import GRPOTrainer

    from tinyzero_trl.data import load_task_data
    from tinyzero_trl.rewards import get_reward_funcs

    # cpu= as TrainingArguments will say: without it a GPU-less multi-process run finds no backend and every
    # rank believes it is the main process until GRPOConfig re-creates the state (gloo).
    state = PartialState(cpu=bool(cfg.training.get("use_cpu", False)))
    out = Path(cfg.training["output_dir"])
    with state.main_process_first():  # rank 0 sets aside an old run before the others look for checkpoints
        if state.is_main_process and cfg.fresh:
            moved = set_aside(out)
            if moved:
                print(f"[tinyzero-trl] fresh start: previous run moved to {moved}")
        checkpoint = None if cfg.fresh else latest_checkpoint(out)
    check_model(cfg.model)
    processing_class = load_processing_class(cfg.model.name_or_path, cfg.data.task, revision=cfg.model.revision,
                                             trust_remote_code=cfg.model.trust_remote_code)
    with state.main_process_first():  # one process builds the datasets cache, the others reuse it
        splits = load_task_data(cfg.data, processing_class, seed=cfg.seed)
    funcs, weights = get_reward_funcs(cfg.rewards)
    args = grpo_args(cfg, weights)
    use_eval = str(args.eval_strategy) not in ("no", "IntervalStrategy.NO")
    trainer = GRPOTrainer(
        model=cfg.model.name_or_path,
        reward_funcs=funcs,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["test"] if use_eval else None,
        processing_class=processing_class,
        peft_config=peft_config(cfg),
        callbacks=[MetricsCallback(out, is_writer=state.is_main_process)],
    )
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(yaml.safe_dump(resolved or cfg.to_dict(), sort_keys=False))
        write_json(out / ENV_FILE, environment())
    return trainer, checkpoint


def train(cfg: RunConfig, *, resolved: dict | None = None) -> Path:
    """Train (or resume) the run in ``training.output_dir``; return the run directory.

    ``run.json`` reads ``running`` while training, ``completed`` after the final model is saved, and ``failed``
    with the error otherwise, so verification never mistakes a crashed run for a finished one.
    """
    state = PartialState(cpu=bool(cfg.training.get("use_cpu", False)))
    out = Path(cfg.training["output_dir"])
    trainer, checkpoint = build_trainer(cfg, resolved=resolved)
    if state.is_main_process:
        update_status(out, status="running", resumed_from=checkpoint, error=None)
        if checkpoint:
            print(f"[tinyzero-trl] resuming from {checkpoint}")
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model(str(out))
    except BaseException as err:
        if state.is_main_process:
            update_status(out, status="failed", error=f"{type(err).__name__}: {err}")
        raise
    if state.is_main_process:
        callback = next(c for c in trainer.callback_handler.callbacks if isinstance(c, MetricsCallback))
        update_status(out, status="completed", global_step=trainer.state.global_step, train=callback.summary)
    # Left to interpreter exit, gloo's worker threads can still hold tensors while Python is torn down, and a rank
    # aborts ("terminate called without an active exception") after a finished run (pytorch/pytorch#190489).
    state.wait_for_everyone()
    state.destroy_process_group()
    return out
