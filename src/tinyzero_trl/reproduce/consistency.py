"""A reproduction folder checked against itself before anything runs: does ``expected.json`` judge what the run will
produce?

``reproduce NAME`` (and its ``--rehearse`` and ``--dry-run``) calls ``check_folder`` first, so that a check of a
metric the recipe never logs, a summary figure nobody writes, an evaluation block for another task, or a reference
step the run stops before, fails in a second with one line naming the check, not after hours of GPU time when
``verify`` cannot judge the run; so does an ``evaluate:`` block with a setting ``evaluate`` would refuse
(``evaluation.protocol.check_settings``). What needs the data (the evaluation scorer against the held-out rows' columns)
is checked by ``evaluation.evaluate.evaluation`` before any generation.
"""

from __future__ import annotations

import re

from tinyzero_trl.errors import UnusableRun, UserError
from tinyzero_trl.run.health import IDENTICAL, NONFINITE

# What trl 1.16.0's GRPOTrainer logs (trl/trainer/grpo_trainer.py: every ``self._metrics[mode][...]`` key, read from
# the installed source; ``rewards/<name>/mean|std`` per reward function) and what transformers' Trainer adds to every
# log. Some are logged only under some settings (``kl`` with beta > 0, ``sampling/*`` with vLLM); a name outside this
# list is never logged by any run, so a check of it could never be judged.
TRL_METRICS = frozenset({
    "aux_loss", "cispo_clip_ratio", "clip_ratio/high_max", "clip_ratio/high_mean", "clip_ratio/low_mean",
    "clip_ratio/low_min", "clip_ratio/region_mean", "completions/clipped_ratio", "completions/max_length",
    "completions/max_terminated_length", "completions/mean_length", "completions/mean_terminated_length",
    "completions/min_length", "completions/min_terminated_length", "entropy", "entropy_coef", "frac_reward_zero_std",
    "kl", "num_tokens", "policy_loss", "reward", "reward_std", "sampling/importance_sampling_ratio/max",
    "sampling/importance_sampling_ratio/mean", "sampling/importance_sampling_ratio/min",
    "sampling/sampling_logp_difference/max", "sampling/sampling_logp_difference/mean", "tools/call_frequency",
    "tools/failure_frequency", "vespo/phi_seq_mean",
    "loss", "grad_norm", "learning_rate", "epoch",
})
OUR_METRICS = frozenset({IDENTICAL, NONFINITE})  # what our own trainer code logs beside trl's (train.health)
SUMMARY_FIGURES = ("base_accuracy", "final_accuracy", "wall_seconds")  # what evaluation.protocol writes
_REWARD_METRIC = re.compile(r"rewards/(?P<name>.+)/(?:mean|std)")


def last_step(resolved: dict) -> int | None:
    """The step a run of ``resolved`` stops at: ``stop_at_step``, else ``training.max_steps``; None when its epochs
    decide (the data size, unknown before loading)."""
    stop = resolved.get("stop_at_step")
    max_steps = (resolved.get("training") or {}).get("max_steps") or -1
    return stop or (max_steps if max_steps > 0 else None)


def check_metric(name: str, rewards: list[str], recipe: str, where: str) -> None:
    """``name`` is something a run of ``recipe`` (with ``rewards``) logs into metrics.jsonl."""
    match = _REWARD_METRIC.fullmatch(name)
    if match:
        if match["name"] not in rewards:
            raise UserError(f"{where}: metric {name!r} is never logged: recipe +{recipe} trains with rewards "
                            f"{rewards}, not {match['name']!r}; fix the check or the recipe")
    elif name not in TRL_METRICS and name not in OUR_METRICS:
        raise UserError(f"{where}: metric {name!r} is never logged: it is not one trl 1.16's GRPOTrainer logs (e.g. "
                        "completions/mean_length, reward, kl, or rewards/<reward>/mean)")


def check_folder(repro, resolved: dict) -> None:
    """Raise ``UserError`` naming ``expected.json``'s check when it could not be judged on a run of ``resolved``
    (the folder's composed config): see the module docstring."""
    from tinyzero_trl.verification.expected import load_expected

    path = repro.folder / "expected.json"
    try:
        expected = load_expected(path)
    except UnusableRun as err:
        raise UserError(str(err)) from None
    rewards = list(resolved.get("rewards") or {})
    stops = last_step(resolved)
    for i, spec in enumerate(expected["checks"]):
        where = f"{path} checks[{i}]"
        if "metric" in spec:
            check_metric(spec["metric"], rewards, repro.recipe, where)
        elif spec["summary"] not in SUMMARY_FIGURES:
            raise UserError(f"{where}: summary figure {spec['summary']!r} is never written; summary.json holds "
                            f"{', '.join(SUMMARY_FIGURES)}")
        elif spec["summary"] != "wall_seconds" and not repro.evaluate:
            raise UserError(f"{where}: {spec['summary']!r} needs an evaluate: block in {repro.folder / 'config.yaml'}")
        for point in spec.get("points") or []:
            if stops is not None and point["step"] > stops:
                raise UserError(f"{where}: reference step {point['step']} is past step {stops}, where the run stops "
                                "(stop_at_step / training.max_steps): it could never be judged")
    if repro.evaluate:
        from tinyzero_trl.evaluation.protocol import check_settings

        check_settings(repro.evaluate, str(repro.folder / "config.yaml"))
        task = repro.evaluate.get("task")
        if task != (resolved.get("data") or {}).get("task"):
            raise UserError(f"{repro.folder / 'config.yaml'}: evaluate.task={task!r}, but the recipe trains "
                            f"data.task={resolved['data'].get('task')!r}")
        scorer = repro.evaluate.get("scorer")
        if scorer is not None:
            from tinyzero_trl.rewards import REWARDS, load_plugins

            load_plugins()
            if scorer not in REWARDS:
                raise UserError(f"{repro.folder / 'config.yaml'}: evaluate.scorer={scorer!r} is not a registered "
                                f"reward; known: {', '.join(sorted(REWARDS))}")
