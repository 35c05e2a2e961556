"""Run health: rules that tell, from the metrics a run logs, that it cannot learn, and say why, in its first steps.

Each rule reads metrics TRL logs (two, ``health/identical_groups`` and ``health/nonfinite_weights``, are ours:
``train.health`` logs them), has a threshold and a window of logged steps, and when it fires gives one line naming
the rule, the values seen and what to check first. ``Monitor`` takes a run's logged steps one at a time: the trainer
callback feeds it while a run trains (``train.health``), ``tinyzero-trl health RUN_DIR`` feeds it metrics.jsonl
afterwards, so both name the same failure at the same step. README "Run health" has the rules' table and where
each failure was reported.

Only the standard library and this package's run-directory readers: ``health`` judges a run without torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinyzero_trl.run.claim import CONFIG_FILE
from tinyzero_trl.run.files import read_yaml
from tinyzero_trl.run.metrics import METRICS_FILE, MetricsError, read_metrics

FLAT = "frac_reward_zero_std"
IDENTICAL = "health/identical_groups"
CLIPPED = "completions/clipped_ratio"
LENGTH = "completions/mean_length"
ENTROPY = "entropy"
LOGP_GAP = "sampling/sampling_logp_difference/mean"
GRAD_NORM = "grad_norm"
# Ours (train.health), logged only at a step whose grad_norm is not finite: 1 when a trainable weight is NaN or
# infinite after that step's update (the run diverged), 0 when every weight is still a number (the optimizer skipped
# the step: DeepSpeed's ZeRO optimizers and fp16 loss scaling do so rather than apply a non-finite gradient).
NONFINITE = "health/nonfinite_weights"


@dataclass(frozen=True)
class Rule:
    """A health rule. ``judge(rows, rewards, rule)`` gives the values it saw when it fires, else None: ``rows`` are
    the logged training steps so far, ``rewards`` the weight of each reward the run trains on (None: unknown)."""

    name: str
    reads: str  # the metrics, as the README's table names them
    condition: str  # when it fires, in words (the README's table)
    limit: float  # the threshold in that condition
    window: int  # logged steps the condition must hold over
    failure: str  # what the run is doing wrong, completing "the run ..."
    check_first: str
    judge: Callable[[list[dict], dict | None, Rule], str | None]
    needs: str  # the metric (or prefix) whose absence means the rule cannot judge this run
    span: int = 0  # logged steps it needs before it can judge (0: window; rules comparing two windows need more)
    vouches: bool = True  # whether its passing alone makes a run HEALTHY (not one that judges from the first step)

    @property
    def steps_needed(self) -> int:
        return self.span or self.window


def _value(row: dict, key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _last(rows: list[dict], key: str, n: int | None = None) -> list[tuple[int, float]]:
    """The last ``n`` (all when None) logged (step, value) pairs of ``key``."""
    found = [(r["step"], _value(r, key)) for r in rows if _value(r, key) is not None]
    return found[-n:] if n else found


def _steps(pairs) -> str:
    first, last = pairs[0][0], pairs[-1][0]
    return f"step {first}" if first == last else f"steps {first}-{last}"


def _shown(pairs, digits: int = 2) -> str:
    return ", ".join(f"{v:.{digits}f}" for _, v in pairs)


def not_finite(value) -> bool:
    """Whether a logged value is a float that is NaN or infinite (how a non-finite grad_norm reads back)."""
    return isinstance(value, float) and not math.isfinite(value)


def _mean(pairs) -> float:
    return sum(v for _, v in pairs) / len(pairs)


def _each(key: str, *, above: bool, digits: int = 2, first: bool = False):
    """A judge that fires when ``key`` was at or above ``rule.limit`` (``above``: strictly above) at each of its
    last ``rule.window`` logged steps (``first``: its first ``rule.window``, judged once they are logged)."""

    def judge(rows, rewards, rule):
        pairs = _last(rows, key)[:rule.window] if first else _last(rows, key, rule.window)
        if len(pairs) == rule.window and all(v > rule.limit if above else v >= rule.limit for _, v in pairs):
            return f"{key} was {_shown(pairs, digits)} at {_steps(pairs)}"
        return None

    return judge


def _dead_reward(rows, rewards, rule):
    names = [k[len("rewards/"):-len("/mean")] for k in rows[-1] if k.startswith("rewards/") and k.endswith("/mean")]
    for name in names:
        if rewards is not None and not rewards.get(name):
            continue  # logged beside the others with weight 0: it cannot stall the run
        means = _last(rows, f"rewards/{name}/mean", rule.window)
        stds = _last(rows, f"rewards/{name}/std", rule.window)
        if len(means) == len(stds) == rule.window and all(m <= rule.limit and s == 0
                                                          for (_, m), (_, s) in zip(means, stds)):
            return (f"reward {name} gave every completion {means[-1][1]:g} at {_steps(means)} (rewards/{name}/mean "
                    f"{_shown(means)}, /std 0)")
    return None


def _shrinking(rows, rewards, rule):
    lengths, w = _last(rows, LENGTH), rule.window
    if len(lengths) < rule.steps_needed:
        return None
    means = [_mean(lengths[i:i + w]) for i in range(len(lengths) - w + 1)]
    peak = max(range(len(means) - w), key=means.__getitem__, default=None)  # windows that end before the last
    if peak is not None and means[-1] < rule.limit * means[peak]:
        return (f"{LENGTH} averaged {means[-1]:.1f} tokens at {_steps(lengths[-w:])}, down from {means[peak]:.1f} "
                f"at {_steps(lengths[peak:peak + w])}")
    return None


def _collapsed(rows, rewards, rule):
    pairs, w = _last(rows, ENTROPY), rule.window
    if len(pairs) < rule.steps_needed:
        return None
    first, last = _mean(pairs[:w]), pairs[-w:]
    if first > 0 and all(v < rule.limit * first for _, v in last):
        return f"{ENTROPY} was {_shown(last, 3)} at {_steps(last)}, against {first:.3f} at {_steps(pairs[:w])}"
    return None


def _diverged(rows, rewards, rule):
    row = rows[-1]
    if (_value(row, NONFINITE) or 0.0) >= rule.limit:
        return (f"{GRAD_NORM} was {row.get(GRAD_NORM)} at step {row['step']} and the update left weights that are "
                f"not finite ({NONFINITE} 1)")
    return None


def _skipped(rows, rewards, rule):
    last = rows[-rule.window:]
    if len(last) == rule.window and all(not_finite(r.get(GRAD_NORM)) and (_value(r, NONFINITE) or 0.0) < 1.0
                                        for r in last):
        shown = ", ".join(str(r.get(GRAD_NORM)) for r in last)
        return f"{GRAD_NORM} was {shown} at {_steps([(r['step'], None) for r in last])}"
    return None


RULES: tuple[Rule, ...] = (
    Rule("no_signal", FLAT, "= 1 at each of 5 steps", 1.0, 5,
         "has no learning signal: every group's completions got the same reward, so every advantage is 0 and "
         "nothing is learned (a loss of 0 here means this, not a display quirk)",
         "whether the reward can tell completions of one prompt apart (one of the prompt alone cannot), then the "
         "greedy_sampling and dead_reward rules",
         _each(FLAT, above=False), FLAT),
    Rule("dead_reward", "rewards/NAME/mean and /std of a reward with a weight",
         "mean <= 0 and std 0 at each of 5 steps", 0.0, 5,
         "has a reward that no completion earns, so it teaches nothing",
         "whether the chat template already writes what the reward looks for (a template that prefills <think> "
         "needs think_close_format, not think_format), then a sample of completions against the reward's rule",
         _dead_reward, "rewards/"),
    # The first steps only: a setting acts from step 1; a run that has learned may rightly repeat itself later.
    Rule("greedy_sampling", IDENTICAL, ">= 0.9 at each of the first 3 steps", 0.9, 3,
         "samples the same completion again and again for a prompt: sampling is (near) greedy, so its groups "
         "cannot differ",
         "training.temperature, top_k, top_p and generation_kwargs (do_sample), and a generation_config.json beside "
         "the model; then the entropy_collapse rule (a collapsed policy also repeats itself)",
         _each(IDENTICAL, above=False, first=True), IDENTICAL),
    Rule("truncated", CLIPPED, ">= 0.9 at each of 5 steps", 0.9, 5,
         "cuts its completions at training.max_completion_length before they end, so almost no answer is scored",
         "training.max_completion_length against the length of a worked answer, then whether the model can stop "
         "(its EOS or end-of-turn token among the tokenizer's)",
         _each(CLIPPED, above=False), CLIPPED),
    Rule("shrinking", LENGTH, "mean over the last 5 steps < 0.4 x the mean over 5 earlier steps", 0.4, 5,
         "is shortening its completions until the thinking is gone",
         "a reward or penalty that pays for brevity (a length or format term), then whether truncated completions "
         "are masked (mask_truncated_completions) and the loss_type",
         _shrinking, LENGTH, span=10),
    Rule("entropy_collapse", ENTROPY, "< 0.2 x its mean over the first 3 steps, at each of 3 steps", 0.2, 3,
         "has collapsed: the policy's entropy fell towards 0, which is how a run that writes one repeated "
         "character (!!!!) looks",
         "the learning rate and beta (the KL term that holds the policy near its base), then a sample of "
         "completions for repeated characters",
         _collapsed, ENTROPY, span=6),
    Rule("vllm_out_of_step", LOGP_GAP, "> 0.1 at each of 2 steps", 0.1, 2,
         "generates with vLLM weights that differ from the trainer's: the weight sync to vLLM is broken, so the "
         "run learns from another model's samples",
         "whether trl syncs weights to vLLM (vllm_enable_sleep_mode, server-mode NCCL, a patched sync), then "
         "vLLM's dtype against the trainer's",
         _each(LOGP_GAP, above=True, digits=3), LOGP_GAP),
    # Stops the run at once (train.health): nothing after such a step can learn, and the next HF generation fails on
    # the NaN probabilities ("probability tensor contains either inf, nan or element < 0").
    Rule("diverged", f"{GRAD_NORM} and {NONFINITE} (ours, see below)",
         "grad_norm not finite and a weight not finite after the step, at 1 step", 1.0, 1,
         "has diverged: a step's gradient was not finite and the optimizer wrote it into the weights, which are no "
         "longer numbers; it was stopped there, with no final model saved",
         "training.learning_rate (a step far too large diverges at once) and max_grad_norm, then the loss and "
         "grad_norm of the steps before; start over with fresh=true (or from a checkpoint before this step, which "
         "is still finite)",
         _diverged, GRAD_NORM, vouches=False),
    # Not judged on an fp16 run (Monitor): its loss scaling skips steps by design, one for each halving of its scale
    # while it finds one, and a healthy start can skip many in a row. In bf16 or fp32 a skipped step is never routine.
    Rule("skipped_steps", GRAD_NORM, "not finite (nan or inf) at each of 10 steps, the weights still finite", 1.0, 10,
         "is not training: its optimizer skipped every one of these steps because the gradient was not finite "
         "(DeepSpeed's ZeRO optimizers and fp16 loss scaling skip such a step instead of applying it), so the "
         "weights have not moved",
         "training.learning_rate and max_grad_norm (an earlier update may have left weights whose every gradient "
         "overflows), then the loss and grad_norm of the steps before the first skipped one",
         _skipped, GRAD_NORM),
)


# The rules a random-weight model (a rehearsal's stand-in) cannot be judged by, and why. greedy_sampling and
# vllm_out_of_step stay judgeable: the sampling settings and the weight sync act whatever the weights are
# (tests/real_vllm proves the latter on a random model).
UNJUDGEABLE_ON_RANDOM_WEIGHTS: dict[str, str] = {
    "no_signal": "a random model earns the same reward (0) on almost every completion, so every group is flat",
    "dead_reward": "a random model earns no reward at all, so every reward looks dead",
    "truncated": "a random model rarely samples its end token, so nearly every completion runs to the limit",
    "shrinking": "a random model's lengths sit at the limit; they cannot shrink for a reason a recipe gives",
    "entropy_collapse": "a random model's entropy is near its maximum and nothing learned holds it there",
}


def unjudgeable_on_random_weights(logged_steps: int | None = None) -> list[tuple[str, str]]:
    """(rule, why) for each rule a rehearsal on a random-weight model cannot judge, in the order of ``RULES``: the
    rules of ``UNJUDGEABLE_ON_RANDOM_WEIGHTS``, and with ``logged_steps`` (the steps the rehearsal logs) every other
    rule that needs more steps than that. For ``reproduce NAME --rehearse`` to print before it runs."""
    out = []
    for rule in RULES:
        if rule.name in UNJUDGEABLE_ON_RANDOM_WEIGHTS:
            out.append((rule.name, UNJUDGEABLE_ON_RANDOM_WEIGHTS[rule.name]))
        elif logged_steps is not None and logged_steps < rule.steps_needed:
            out.append((rule.name, f"it needs {rule.steps_needed} logged steps; the rehearsal logs {logged_steps}"))
    return out


@dataclass(frozen=True)
class Finding:
    """A rule that fired: at which logged step, the values it saw, and the line it printed."""

    rule: str
    step: int
    seen: str
    line: str


def identical_groups(prompts: list, completion_ids: list) -> float | None:
    """The share of prompts whose completions in a batch are all the same tokens (``health/identical_groups``).

    Completions of one prompt are told apart by their token ids; a prompt with one completion in the batch (its
    group split across processes) counts for nothing. None when no prompt has two.
    """
    groups: dict[str, list] = {}
    for prompt, ids in zip(prompts, completion_ids):
        groups.setdefault(_prompt_key(prompt), []).append(tuple(ids))
    same = [len(set(g)) == 1 for g in groups.values() if len(g) > 1]
    return sum(same) / len(same) if same else None


def _prompt_key(prompt) -> str:
    """One prompt's text, the same for every copy of it. A vision prompt holds its image (TRL puts the PIL image
    into the message), whose repr is its address: each copy of the row is decoded anew, so the image counts by its
    pixels, and two questions on different images stay two prompts."""

    def stable(obj):
        tobytes = getattr(obj, "tobytes", None)
        return hashlib.sha1(tobytes()).hexdigest() if callable(tobytes) else type(obj).__name__

    return json.dumps(prompt, default=stable, sort_keys=True)


def _is_training_row(row: dict) -> bool:
    return any(k in (FLAT, ENTROPY) or k.startswith(("rewards/", "completions/")) for k in row)


NOT_FOR_FP16 = ("skipped_steps",)  # the rules an fp16 run is not judged by (see the rule)


class Monitor:
    """The rules over a run's logged steps, fed one step at a time; each rule fires at most once. ``fp16``: the run
    trains in fp16, whose loss scaling skips steps by design (``NOT_FOR_FP16`` are left out)."""

    def __init__(self, rewards: dict | None = None, rules: tuple[Rule, ...] = RULES, *, fp16: bool = False):
        self.rewards = rewards
        self.rules = tuple(r for r in rules if not (fp16 and r.name in NOT_FOR_FP16))
        self.rows: list[dict] = []
        self.fired: dict[str, Finding] = {}

    def observe(self, row: dict) -> list[Finding]:
        """Add one logged step (``step`` and its metrics); return the rules that fire at it."""
        if not _is_training_row(row):  # an evaluation-only line, or the end-of-training summary
            return []
        self.rows.append(row)
        new = []
        for rule in self.rules:
            seen = None if rule.name in self.fired else rule.judge(self.rows, self.rewards, rule)
            if seen:
                line = (f"health: {rule.name} at step {row['step']}: {seen}: the run {rule.failure}. "
                        f"Check first: {rule.check_first}")
                self.fired[rule.name] = Finding(rule.name, row["step"], seen, line)
                new.append(self.fired[rule.name])
        return new

    def flat_steps(self) -> int:
        """How many logged steps in a row, up to the last, had no learning signal (every group flat)."""
        count = 0
        for row in reversed(self.rows):
            if (_value(row, FLAT) or 0.0) < 1.0:
                break
            count += 1
        return count

    def states(self) -> list[tuple[Rule, str, str]]:
        """(rule, state, detail) per rule: FIRED (at a step), ok, no data (metric never logged) or too early."""
        out = []
        for rule in self.rules:
            logged = sum(any(k.startswith(rule.needs) for k in r) for r in self.rows)
            if rule.name in self.fired:
                out.append((rule, "FIRED", f"at step {self.fired[rule.name].step}: {self.fired[rule.name].seen}"))
            elif not logged:
                out.append((rule, "no data", f"{rule.needs} was never logged"))
            elif logged < rule.steps_needed:
                out.append((rule, "too early", f"{logged} of the {rule.steps_needed} logged steps it needs"))
            else:
                out.append((rule, "ok", f"{logged} logged steps; it fires at {rule.reads} {rule.condition}"))
        return out


def judge_run(run_dir: str | os.PathLike) -> Monitor:
    """A run directory's metrics.jsonl, live or finished, through the rules, weighed by the rewards its
    ``config.yaml`` trains on (every logged reward when there is none). ``MetricsError`` or ``RunDirError`` (file
    and line named) when it cannot be read."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MetricsError(f"{run_dir}: no such directory (give the run's training.output_dir)")
    rows = read_metrics(run_dir / METRICS_FILE)
    config = run_dir / CONFIG_FILE
    saved = read_yaml(config) if config.is_file() else {}
    rewards, training = saved.get("rewards"), saved.get("training")
    fp16 = isinstance(training, dict) and training.get("fp16") is True
    monitor = Monitor(rewards if isinstance(rewards, dict) else None, fp16=fp16)
    for row in rows:
        monitor.observe(row)
    return monitor
