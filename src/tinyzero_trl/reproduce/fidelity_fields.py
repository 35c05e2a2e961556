"""Which fields of trl's ``GRPOConfig`` a fidelity table compares with the source, and why the others are not.

Every field of the installed ``GRPOConfig`` is in exactly one of three places:

- ``NOT_TRAINING``: fields that cannot change a trained weight (where output goes, what is logged, saved, pushed
  or evaluated in the loop, how the machine or the launcher runs the processes) or that trade speed for memory
  with the same maths. The table lists them with our value; they are not compared.
- ``INACTIVE``: fields that another setting of the run switches off (a loss type's parameters when another loss
  runs, vLLM's when generation is HF's, ...). Whether they are off is decided on the resolved config, per run.
- every other field is compared: the source's value must be given (the folder's ``source.yaml`` or its
  library's defaults), and the row is the same, set to match, or a deviation ``expected.json`` explains.

A field that trl adds in a later version lands in the compared set, where no source value exists yet: the table
then fails (``fidelity.FidelityError``) until someone says what the source did. Lines cited are trl 1.16.0's.
"""

from __future__ import annotations

NOT_TRAINING: dict[str, tuple[str, ...]] = {
    "output and logging": (
        "output_dir", "logging_strategy", "logging_steps", "logging_first_step", "log_on_each_node",
        "logging_nan_inf_filter", "include_num_input_tokens_seen", "log_level", "log_level_replica",
        "disable_tqdm", "report_to", "run_name", "project", "trackio_space_id", "trackio_bucket_id",
        "trackio_static_space_id", "log_completions", "log_multimodal", "num_completions_to_print",
        "log_unique_prompts"),
    "evaluation inside the training loop": (
        "eval_strategy", "eval_steps", "eval_delay", "per_device_eval_batch_size", "prediction_loss_only",
        "eval_on_start", "eval_do_concat_batches", "eval_use_gather_object", "eval_accumulation_steps",
        "include_for_metrics", "batch_eval_metrics", "bf16_full_eval", "fp16_full_eval", "num_generations_eval",
        "load_best_model_at_end", "metric_for_best_model", "greater_is_better"),
    "checkpoints and the Hub": (
        "save_only_model", "save_strategy", "save_steps", "save_on_each_node", "save_total_limit",
        "enable_jit_checkpoint", "restore_callback_states_from_checkpoint", "ignore_data_skip",
        "resume_from_checkpoint", "push_to_hub", "hub_token", "hub_private_repo", "hub_model_id", "hub_strategy",
        "hub_always_push", "hub_revision", "log_completions_hub_repo"),
    "launch: the machine, the accelerate config (the run's `accelerate` row), the vLLM server's address": (
        "use_cpu", "local_rank", "do_train", "do_eval", "do_predict", "debug", "skip_memory_metrics",
        "accelerator_config", "parallelism_config", "fsdp", "fsdp_config", "deepspeed", "ddp_find_unused_parameters",
        "ddp_bucket_cap_mb", "ddp_broadcast_buffers", "ddp_static_graph", "ddp_backend", "ddp_timeout",
        "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
        "dataloader_prefetch_factor", "dataloader_multiprocessing_context", "trust_remote_code",
        "vllm_server_base_url", "vllm_server_host", "vllm_server_port", "vllm_server_timeout", "vllm_group_port"),
    "speed and memory, the same maths": (
        "gradient_checkpointing", "gradient_checkpointing_kwargs", "use_cache", "torch_empty_cache_steps",
        "ds3_gather_for_generation", "pad_to_multiple_of", "cache_implementation", "vllm_enable_sleep_mode",
        "vllm_gpu_memory_utilization", "vllm_tensor_parallel_size"),
}


def _always(config) -> bool:
    return True


# field -> (is it off for this resolved config?, why). Off rows are listed, not compared.
INACTIVE = {
    "average_tokens_across_devices": (_always, "GRPOTrainer computes its own loss (compute_loss, "
                                      "trl/trainer/grpo_trainer.py:2939); transformers' loss scaling never runs"),
    "label_smoothing_factor": (_always, "GRPOTrainer computes its own loss; no label smoothing applies"),
    "data_seed": (_always, "trl's RepeatSampler is seeded with `seed` (trl/trainer/grpo_trainer.py:1309-1316)"),
    "train_sampling_strategy": (_always, "GRPOTrainer draws with its own RepeatSampler "
                                "(trl/trainer/grpo_trainer.py:1280-1316)"),
    "length_column_name": (_always, "only read by a length-grouped sampler; GRPOTrainer uses its own"),
    "label_names": (_always, "GRPOTrainer computes its own loss from completions, not from labels"),
    "dataloader_drop_last": (_always, "RepeatSampler yields whole generation batches only "
                             "(trl/trainer/utils.py:943): no loader batch is ever partial"),
    "dataloader_in_order": (lambda c: c.dataloader_num_workers == 0, "one loader process: batches come in order"),
    "reward_weights": (_always, "compared as the run's `rewards` row: each reward the objective sums, with its weight "
                       "(a weight-0 reward is only logged)"),
    "router_aux_loss_coef": (_always, "a mixture-of-experts loss term; these models are dense"),
    "max_tool_calling_iterations": (_always, "no tools are given to the trainer (train/trainer.py)"),
    "torch_compile_backend": (lambda c: not c.torch_compile, "torch_compile is off"),
    "torch_compile_mode": (lambda c: not c.torch_compile, "torch_compile is off"),
    "liger_kernel_config": (lambda c: not c.use_liger_kernel, "use_liger_kernel is off"),
    "sapo_temperature_neg": (lambda c: c.loss_type != "sapo", "loss_type is not sapo"),
    "sapo_temperature_pos": (lambda c: c.loss_type != "sapo", "loss_type is not sapo"),
    "vespo_k_pos": (lambda c: c.loss_type != "vespo", "loss_type is not vespo"),
    "vespo_lambda_pos": (lambda c: c.loss_type != "vespo", "loss_type is not vespo"),
    "vespo_k_neg": (lambda c: c.loss_type != "vespo", "loss_type is not vespo"),
    "vespo_lambda_neg": (lambda c: c.loss_type != "vespo", "loss_type is not vespo"),
    "ref_model_mixup_alpha": (lambda c: not c.sync_ref_model, "sync_ref_model is off"),
    "ref_model_sync_steps": (lambda c: not c.sync_ref_model, "sync_ref_model is off"),
    "entropy_coef_min": (lambda c: not c.use_adaptive_entropy, "use_adaptive_entropy is off"),
    "entropy_coef_max": (lambda c: not c.use_adaptive_entropy, "use_adaptive_entropy is off"),
    "entropy_coef_delta": (lambda c: not c.use_adaptive_entropy, "use_adaptive_entropy is off"),
    "entropy_target": (lambda c: not c.use_adaptive_entropy, "use_adaptive_entropy is off"),
    "use_bias_correction_kl": (lambda c: c.beta == 0, "beta is 0: there is no KL term"),
    "vllm_mode": (lambda c: not c.use_vllm, "use_vllm is off: HF generate"),
    "vllm_model_impl": (lambda c: not c.use_vllm, "use_vllm is off: HF generate"),
    "vllm_structured_outputs_regex": (lambda c: not c.use_vllm, "use_vllm is off: HF generate"),
    "vllm_max_model_length": (lambda c: not c.use_vllm, "use_vllm is off: HF generate"),
    "vllm_importance_sampling_correction": (lambda c: not c.use_vllm, "use_vllm is off: HF generate"),
    "vllm_importance_sampling_mode": (lambda c: not (c.use_vllm and c.vllm_importance_sampling_correction),
                                      "no vLLM importance-sampling correction"),
    "vllm_importance_sampling_clip_max": (lambda c: not (c.use_vllm and c.vllm_importance_sampling_correction),
                                          "no vLLM importance-sampling correction"),
    "vllm_importance_sampling_clip_min": (lambda c: not (c.use_vllm and c.vllm_importance_sampling_correction),
                                          "no vLLM importance-sampling correction"),
    "vllm_importance_sampling_cap": (lambda c: not (c.use_vllm and c.vllm_importance_sampling_correction),
                                     "no vLLM importance-sampling correction"),
    "use_transformers_continuous_batching": (lambda c: c.use_vllm, "vLLM generates, not transformers"),
    "use_transformers_paged": (lambda c: c.use_vllm, "vLLM generates, not transformers"),
    "transformers_continuous_batching_config": (lambda c: c.use_vllm or not c.use_transformers_continuous_batching,
                                                "no transformers continuous batching"),
}

# The value at which trl 1.16 does what a library without the field did: a source library that lacks the field
# (a library file's `absent:` list) ran this. For a feature, its off switch in trl's own code.
ABSENT_MEANS = {
    "use_bias_correction_kl": False,  # no ratio factor on the KL term (grpo_trainer.py:3104-3105)
    "vllm_importance_sampling_correction": False,  # no trainer-vs-vLLM ratio (grpo_trainer.py:3146-3147)
    "off_policy_mask_threshold": None,  # no off-policy mask (grpo_trainer.py:3140-3141)
    "top_entropy_quantile": 1.0,  # every token trains (grpo_trainer.py:3049)
    "entropy_coef": 0.0,
    "use_adaptive_entropy": False,
    "delta": None,  # no two-sided clip (grpo_trainer.py:3115-3116)
    "epsilon_high": None,  # the clip is symmetric: epsilon on both sides (grpo_trainer.py:946)
    "mask_truncated_completions": False,
    "cast_lm_head_to_fp32": False,
    "disable_dropout": False,
    "importance_sampling_level": "token",
    "multi_objective_aggregation": "sum_then_normalize",  # sum the weighted rewards, then normalise per group
    "sync_ref_model": False,
    "num_iterations": 1,
    "min_p": None,
    "generation_kwargs": None,
    "chat_template_kwargs": None,
    "vllm_structured_outputs_regex": None,
    "vllm_model_impl": "vllm",
    "use_transformers_continuous_batching": False,
    "use_transformers_paged": False,
    "shuffle_dataset": True,
    "neftune_noise_alpha": None,
    "use_liger_kernel": False,
    "torch_compile": False,
    "full_determinism": False,
    "auto_find_batch_size": False,
    "optim_args": None,
    "optim_target_modules": None,
    "remove_unused_columns": False,
    "tf32": None,
}


def not_training_group(name: str) -> str | None:
    """The ``NOT_TRAINING`` group of field ``name``, or None when it may change what is trained."""
    return next((group for group, fields in NOT_TRAINING.items() if name in fields), None)
