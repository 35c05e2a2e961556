"""Every health rule, proven on a run that really has its failure (issue 31): CPU, the packaged tiny bases or a random
tiny model, a handful of steps. The monitor must name the failure while the run trains (the line on stderr and
``run.json``), at the step its rule states, and ``tinyzero-trl health`` must name it at the same step afterwards.

The rewards that make a run fail (prompt_only, brevity, repetition) are test plugins (tests/plugins). The vLLM rule
is proven in tests/real_vllm/test_colocate.py, on a run with trl's weight sync switched off.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import ENV
from tinyzero_trl.run.health import RULES
from tinyzero_trl.run.status import read_status
from tinyzero_trl.tiny.pretrain import tiny_base_path
from tinyzero_trl.verification.health import judge

pytestmark = pytest.mark.slow
WINDOW = {r.name: r.window for r in RULES}
# math-tiny's recipe, shrunk: 2 prompts x 8 completions a step, no checkpoints, no progress bars.
MATH = ["+math=grpo-tiny-base", "training.per_device_train_batch_size=16", "training.save_strategy=no",
        "training.disable_tqdm=true", "data.num_train=200", "data.num_test=8"]


def train(out, *overrides, launcher: bool = False) -> subprocess.CompletedProcess:
    """The training process every rank runs (grpo.py, where the callback lives), started directly: the launcher
    (``tinyzero-trl train``, ``launcher``) adds a second Python start-up and changes nothing the rules see."""
    entry = ["tinyzero_trl.cli", "train"] if launcher else ["tinyzero_trl.grpo"]
    cmd = [sys.executable, "-m", *entry, f"training.output_dir={out}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)


def metric(out, key) -> list[float]:
    return [json.loads(line)[key] for line in (out / "metrics.jsonl").read_text().splitlines()]


def assert_named(proc, out, rule, step) -> str:
    """``rule`` fired at ``step`` while the run trained (stderr, run.json) and in ``health`` afterwards."""
    recorded = read_status(out).get("health", {})
    assert recorded.get(rule, {}).get("step") == step, (recorded, proc.stderr[-3000:])
    line = f"[tinyzero-trl] health: {rule} at step {step}: "
    assert proc.stderr.count(line) == 1, proc.stderr[-3000:]
    code, text = judge(out)
    assert code == 1 and f"\nhealth: {rule} at step {step}: " in text, text
    return recorded[rule]["line"]


def test_a_reward_that_wants_think_under_a_template_that_prefills_it(tmp_path):
    """open-r1 #560, trl #6966: think_format under DeepSeek-R1's template, whose prompt already ends in <think>."""
    from transformers import AutoTokenizer

    base = tiny_base_path("math")
    prompt = AutoTokenizer.from_pretrained(base).apply_chat_template(
        [{"role": "user", "content": "Solve"}], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<think>\n")  # the failure's cause is real: the template writes the tag
    out = tmp_path / "run"
    proc = train(out, *MATH, f"model.name_or_path={base}", "training.max_steps=5", "~rewards.think_close_format",
                 "+rewards.think_format=1.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = assert_named(proc, out, "dead_reward", WINDOW["dead_reward"])
    assert "reward think_format gave every completion 0 at steps 1-5" in line and "prefills <think>" in line
    assert max(metric(out, "rewards/math_accuracy/std")) > 0  # the other reward still varies: only one is dead


def test_a_reward_constant_within_each_group_and_the_stop_it_allows(tmp_path):
    """trl #3857 (and the loss of 0 of #2703 / #3452): a reward of the prompt alone; stop_without_signal ends it."""
    out = tmp_path / "run"
    proc = train(out, *MATH, f"model.name_or_path={tiny_base_path('math')}", "training.max_steps=12",
                 "~rewards.math_accuracy", "~rewards.think_close_format", "+rewards.prompt_only=1.0",
                 "stop_without_signal=6", launcher=True)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert_named(proc, out, "no_signal", WINDOW["no_signal"])
    assert max(metric(out, "rewards/prompt_only/std")) > 0  # it differs between prompts, never within a group
    assert metric(out, "frac_reward_zero_std") == [1.0] * 6 and set(metric(out, "loss")) == {0.0}
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tinyzero-trl train: stopped at step 6 by stop_without_signal=6: "), last
    status = read_status(out)
    assert status["status"] == "failed" and status["global_step"] == 6 and "NoLearningSignal" in status["error"]
    assert not (out / "model.safetensors").exists()  # a run that learned nothing is not saved as a result


def test_a_generation_setting_that_makes_sampling_greedy(tmp_path):
    """trl #5783: sampling made greedy behind the recipe's back (here do_sample=false in generation_kwargs)."""
    out = tmp_path / "run"
    proc = train(out, *MATH, f"model.name_or_path={tiny_base_path('math')}", "training.max_steps=3",
                 "+training.generation_kwargs={do_sample:false}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_named(proc, out, "greedy_sampling", WINDOW["greedy_sampling"])
    assert "entropy_collapse" not in read_status(out)["health"]  # the policy is as broad as ever: sampling is not
    assert min(metric(out, "entropy")) > 0.1


def test_a_completion_limit_far_too_short(tmp_path):
    """trl #5697 / #6219: every completion cut at max_completion_length."""
    out = tmp_path / "run"
    proc = train(out, *MATH, f"model.name_or_path={tiny_base_path('math')}", "training.max_steps=5",
                 "training.max_completion_length=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_named(proc, out, "truncated", WINDOW["truncated"])
    assert set(metric(out, "completions/clipped_ratio")) == {1.0}


def test_thinking_that_shrinks_until_it_is_gone(tmp_path):
    """TinyZero #85: countdown-tiny's base searches in its think block; a reward that pays for brevity drops it."""
    out = tmp_path / "run"
    proc = train(out, "+countdown=grpo-tiny-base", f"model.name_or_path={tiny_base_path('countdown')}",
                 "training.max_steps=10", "training.per_device_train_batch_size=16", "training.save_strategy=no",
                 "training.max_completion_length=160",
                 "training.disable_tqdm=true", "training.learning_rate=3e-3", "data.num_train=200",
                 "data.num_test=8", "rewards.countdown_equation=0", "+rewards.brevity=1.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rule = next(r for r in RULES if r.name == "shrinking")
    assert_named(proc, out, "shrinking", rule.span)  # two windows: the earlier one and the last
    lengths = metric(out, "completions/mean_length")
    assert sum(lengths[5:]) < rule.limit * sum(lengths[:5]), lengths


def test_a_collapse_into_one_repeated_character(tiny_model, tmp_path):
    """TinyZero #63: completions that are one character over and over (a reward that pays for it, a high lr)."""
    out = tmp_path / "run"
    proc = train(out, "+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", f"model.name_or_path={tiny_model}",
                 "data.source=generate", "training.max_steps=8", "training.per_device_train_batch_size=16",
                 "training.save_strategy=no", "training.learning_rate=0.3", "training.beta=0",
                 "rewards.tinyzero_countdown=0", "+rewards.repetition=1.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    entropy = metric(out, "entropy")
    start = sum(entropy[:3]) / 3
    onset = next(i for i, v in enumerate(entropy, start=1) if v < 0.2 * start)
    assert_named(proc, out, "entropy_collapse", onset + WINDOW["entropy_collapse"] - 1)
    # The collapse is real: at its worst under a fifth of the characters distinct (0.85-0.95 seen; the CPU's thread
    # count moves it a little).
    assert max(metric(out, "rewards/repetition/mean")) > 0.8


def test_a_learning_rate_that_makes_the_weights_nan_stops_the_run_at_that_step(tmp_path):
    """R1-V #69: grad_norm nan at one step, then the next generation fails on NaN probabilities. Here lr 1e4 on
    math-tiny's base: plain torch applies the NaN gradient, so the run is stopped at that step (exit 1), with no
    checkpoint of the NaN weights and no final model; the checkpoint before it stays."""
    out = tmp_path / "run"
    saving = [o for o in MATH if not o.startswith("training.save_strategy")]
    proc = train(out, *saving, f"model.name_or_path={tiny_base_path('math')}", "training.max_steps=6",
                 "training.learning_rate=1e4", "training.save_strategy=steps", "training.save_steps=1",
                 launcher=True)
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = assert_named(proc, out, "diverged", 2)
    assert "grad_norm was nan at step 2 and the update left weights that are not finite" in line
    assert "probability tensor" not in proc.stderr  # stopped before the generation it would have failed in
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tinyzero-trl train: stopped at step 2: grad_norm was nan at step 2"), last
    status = read_status(out)
    assert status["status"] == "failed" and status["global_step"] == 2 and "Diverged" in status["error"]
    assert [c.name for c in out.glob("checkpoint-*")] == ["checkpoint-1"]
    assert not (out / "model.safetensors").exists()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("health/nonfinite_weights") for r in rows] == [None, 1.0]  # looked at only when grad_norm was nan


def test_a_deepspeed_run_that_skips_every_step_is_named_not_taken_for_divergence(tmp_path):
    """The same learning rate under DeepSpeed ZeRO-2 (2 processes on CPU): DeepSpeed skips each step whose gradient
    is not finite and logs its grad_norm as inf, so the weights stay numbers and the run goes on without learning.
    Not diverged (the check says the weights are finite, on both ranks), but skipped_steps once 10 in a row."""
    out = tmp_path / "run"
    proc = train(out, *MATH, f"model.name_or_path={tiny_base_path('math')}", "training.max_steps=11",
                 "training.learning_rate=1e4", "--accelerate", "zero2", "--num-processes", "2", launcher=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_named(proc, out, "skipped_steps", 11)  # steps 2-11: step 1's update was applied and made it so
    assert "diverged" not in read_status(out)["health"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["grad_norm"] for r in rows[1:]] == [float("inf")] * 10
    assert [r["health/nonfinite_weights"] for r in rows[1:]] == [0.0] * 10 and "health/nonfinite_weights" not in rows[0]
