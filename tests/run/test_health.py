"""The health rules on logged steps (issue 31): each fires once, at the step its window fills, and only on its
failure; the rules read without torch. Real runs that have each failure are in tests/train/test_health_runs.py."""

from __future__ import annotations

import json

import pytest

from tinyzero_trl.run.health import (
    RULES,
    UNJUDGEABLE_ON_RANDOM_WEIGHTS,
    Monitor,
    identical_groups,
    unjudgeable_on_random_weights,
)


def healthy(step: int, **changed) -> dict:
    """A logged step of a run that learns (values of the kind math-tiny logs), with ``changed`` metrics."""
    row = {"step": step, "grad_norm": 0.3, "frac_reward_zero_std": 0.25, "health/identical_groups": 0.0,
           "completions/clipped_ratio": 0.02, "completions/mean_length": 20.0 + step, "entropy": 0.15,
           "rewards/acc/mean": 0.3, "rewards/acc/std": 0.45, "rewards/fmt/mean": 1.0, "rewards/fmt/std": 0.0}
    row.update({k.replace("__", "/"): v for k, v in changed.items()})
    return row


def run(rows, rewards=None) -> Monitor:
    monitor = Monitor(rewards)
    for row in rows:
        monitor.observe(row)
    return monitor


def test_a_learning_run_fires_nothing():
    monitor = run([healthy(s) for s in range(1, 31)], {"acc": 1.0, "fmt": 1.0})
    assert monitor.fired == {}
    assert {rule.name: state for rule, state, _ in monitor.states()} == {
        **{r.name: "ok" for r in RULES}, "vllm_out_of_step": "no data"}


# (rule, the metric changed from step 1 on, its value, the step the rule must fire at: the rule's window)
FROM_THE_START = [
    ("no_signal", {"frac_reward_zero_std": 1.0}, 5),
    ("greedy_sampling", {"health__identical_groups": 1.0}, 3),
    ("truncated", {"completions__clipped_ratio": 0.95}, 5),
    ("dead_reward", {"rewards__acc__mean": 0.0, "rewards__acc__std": 0.0}, 5),
    ("vllm_out_of_step", {"sampling__sampling_logp_difference__mean": 0.5}, 2),
    ("diverged", {"grad_norm": float("nan"), "health__nonfinite_weights": 1.0}, 1),
    ("skipped_steps", {"grad_norm": float("inf"), "health__nonfinite_weights": 0.0}, 10),
]


@pytest.mark.parametrize("rule, changed, step", FROM_THE_START, ids=[c[0] for c in FROM_THE_START])
def test_a_failure_from_the_first_step_is_named_when_the_window_fills(rule, changed, step):
    window = next(r.window for r in RULES if r.name == rule)
    assert step == window
    monitor = run([healthy(s, **changed) for s in range(1, 12)], {"acc": 1.0, "fmt": 1.0})
    assert monitor.fired[rule].step == step
    assert monitor.fired[rule].line.startswith(f"health: {rule} at step {step}: ")
    assert "Check first: " in monitor.fired[rule].line
    assert list(monitor.fired) == [rule]  # this failure, no other


def test_one_step_short_of_the_window_is_not_a_failure():
    rows = [healthy(s, frac_reward_zero_std=1.0 if s % 5 else 0.5) for s in range(1, 30)]  # 4 flat, then 1 not
    assert "no_signal" not in run(rows).fired


def test_a_reward_logged_with_weight_zero_or_saturated_is_not_dead():
    rows = [healthy(s, rewards__acc__mean=0.0, rewards__acc__std=0.0) for s in range(1, 10)]
    assert "dead_reward" not in run(rows, {"acc": 0.0, "fmt": 1.0}).fired
    assert run(rows, None).fired["dead_reward"].seen.startswith("reward acc gave every completion 0 at steps 1-5")
    assert "dead_reward" not in run([healthy(s) for s in range(1, 10)]).fired  # fmt: 1.0 for all, std 0


def test_identical_groups_late_in_a_run_are_learning_not_greedy_sampling():
    rows = [healthy(s, health__identical_groups=0.0 if s < 4 else 1.0) for s in range(1, 20)]
    assert "greedy_sampling" not in run(rows).fired  # a setting would act from step 1


def test_shrinking_compares_the_last_window_with_an_earlier_one():
    lengths = [100, 110, 120, 100, 90, 80, 60, 40, 30, 20, 10, 10]
    monitor = run([healthy(s, completions__mean_length=v) for s, v in enumerate(lengths, start=1)])
    found = monitor.fired["shrinking"]
    assert found.step == 11  # steps 7-11 average 32 < 0.4 x 104 (steps 1-5); at step 10 (46) it did not yet
    assert found.seen == ("completions/mean_length averaged 32.0 tokens at steps 7-11, down from 104.0 at "
                          "steps 1-5")


def test_entropy_collapse_is_relative_to_the_runs_own_start():
    confident = [healthy(s, entropy=0.03) for s in range(1, 20)]  # a confident base model, low from the start
    assert "entropy_collapse" not in run(confident).fired
    falling = [5.0, 5.0, 5.0, 4.0, 2.0, 0.9, 0.5, 0.1, 0.05]
    monitor = run([healthy(s, entropy=v) for s, v in enumerate(falling, start=1)])
    assert monitor.fired["entropy_collapse"].step == 8  # below 1.0 at steps 6, 7 and 8


def test_evaluation_lines_and_summaries_are_not_training_steps():
    monitor = Monitor()
    assert monitor.observe({"step": 1, "eval_reward": 0.1}) == [] and monitor.rows == []
    assert monitor.observe({"step": 1, "train_runtime": 9.0, "train_loss": 0.1}) == [] and monitor.rows == []


def test_flat_steps_count_back_from_the_last():
    monitor = run([healthy(1, frac_reward_zero_std=1.0), healthy(2), healthy(3, frac_reward_zero_std=1.0),
                   healthy(4, frac_reward_zero_std=1.0)])
    assert monitor.flat_steps() == 2


def test_states_say_too_early_before_a_window_fills():
    states = {rule.name: (state, detail) for rule, state, detail in run([healthy(1), healthy(2)]).states()}
    assert states["no_signal"] == ("too early", "2 of the 5 logged steps it needs")
    assert states["shrinking"] == ("too early", "2 of the 10 logged steps it needs")
    assert states["greedy_sampling"] == ("too early", "2 of the 3 logged steps it needs")


def test_identical_groups_compares_the_completions_of_each_prompt():
    prompts = ["a", "a", "b", "b", "c"]
    assert identical_groups(prompts, [[1, 2], [1, 2], [3], [4], [5]]) == 0.5  # c has one completion here
    conversational = [[{"role": "user", "content": "x"}]] * 3
    assert identical_groups(conversational, [[7], [7], [7]]) == 1.0
    assert identical_groups(["a", "b"], [[1], [2]]) is None


class Image:
    """A decoded image as TRL hands it over in a vision prompt: a new object per copy, the same pixels."""

    def __init__(self, pixels: bytes):
        self.pixels = pixels

    def tobytes(self) -> bytes:
        return self.pixels


def test_a_vision_prompt_is_one_prompt_across_its_copies_and_its_image_counts():
    def prompt(pixels):
        return [{"role": "user", "content": [{"type": "image", "image": Image(pixels)}, {"type": "text", "text": "n?"}]}]

    prompts = [prompt(b"red"), prompt(b"red"), prompt(b"blue"), prompt(b"blue")]  # four objects, two images
    assert identical_groups(prompts, [[1], [1], [2], [3]]) == 0.5


def test_a_non_finite_gradient_norm_is_divergence_only_when_the_weights_followed_it():
    nan, inf = float("nan"), float("inf")
    # the optimizer skipped the step: every weight still a number (DeepSpeed logs such a step's grad_norm as inf)
    skipped = run([healthy(1), healthy(2, grad_norm=inf, health__nonfinite_weights=0.0), healthy(3)])
    assert skipped.fired == {}
    diverged = run([healthy(1), healthy(2, grad_norm=nan, health__nonfinite_weights=1.0)])
    assert diverged.fired["diverged"].line.startswith(
        "health: diverged at step 2: grad_norm was nan at step 2 and the update left weights that are not finite")
    assert "learning_rate" in diverged.fired["diverged"].line


def test_skipped_steps_must_follow_one_another_and_the_line_lists_each_norm():
    inf = float("inf")
    rows = [healthy(s, grad_norm=inf, health__nonfinite_weights=0.0) for s in range(1, 10)]  # 9 skipped
    assert run(rows).fired == {}
    assert run([*rows, healthy(10), healthy(11, grad_norm=inf)]).fired == {}  # one step applied between
    fired = run([*rows, healthy(10, grad_norm=float("nan"))]).fired["skipped_steps"]
    assert fired.seen == "grad_norm was " + "inf, " * 9 + "nan at steps 1-10"


def test_the_readme_table_has_a_row_per_rule_naming_what_it_reads():
    from support import ROOT

    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    rows = {line.split("|")[1].strip(" `"): line for line in lines if line.startswith("| `") and "](https://" in line
            and any(f"| `{r.name}` |" in line for r in RULES)}
    assert sorted(rows) == sorted(r.name for r in RULES)
    for rule in RULES:
        row = rows[rule.name]
        assert f"`{rule.needs}" in row and f"| {rule.condition} " in row and f" {rule.limit:g}" in row, row


def test_a_rehearsal_is_told_which_rules_a_random_model_cannot_judge():
    assert set(UNJUDGEABLE_ON_RANDOM_WEIGHTS) < {r.name for r in RULES}
    names = [name for name, _ in unjudgeable_on_random_weights()]
    assert names == ["no_signal", "dead_reward", "truncated", "shrinking", "entropy_collapse"]
    why = dict(unjudgeable_on_random_weights(logged_steps=2))  # a rehearsal logs 2 steps
    assert why["greedy_sampling"] == "it needs 3 logged steps; the rehearsal logs 2"
    assert "vllm_out_of_step" not in why  # its window is 2: judged by a rehearsal with vLLM


# Mutation testing of run/health.py (benchmarks/mutation/run.md) showed what the tests above left unpinned: the
# exact lines, the step a rule is first judged at, the strict thresholds, and the rows and rewards a rule reads.


def test_the_dead_reward_line_names_the_reward_its_last_value_and_each_mean():
    # a penalty every completion pays alike, at -1 then -0.5: std 0, mean <= 0 at each of 5 steps
    means = [-1.0, -1.0, -1.0, -1.0, -0.5]
    rows = [healthy(s, rewards__acc__mean=m, rewards__acc__std=0.0) for s, m in enumerate(means, start=1)]
    found = run(rows, {"acc": 1.0, "fmt": 1.0}).fired["dead_reward"]
    assert found.seen == ("reward acc gave every completion -0.5 at steps 1-5 (rewards/acc/mean -1.00, -1.00, -1.00, "
                          "-1.00, -0.50, /std 0)")  # the form of README's example line


def test_a_reward_with_weight_zero_logged_before_a_dead_one_does_not_hide_it():
    rows = [healthy(s, rewards__acc__mean=0.0, rewards__acc__std=0.0, rewards__fmt__mean=0.0) for s in range(1, 8)]
    found = run(rows, {"acc": 0.0, "fmt": 1.0}).fired["dead_reward"]  # acc is logged first, fmt trains the run
    assert (found.step, found.seen.split(" at ")[0]) == (5, "reward fmt gave every completion 0")


def test_a_reward_that_dies_mid_run_is_named_when_its_own_window_fills():
    rows = [healthy(s, **({} if s < 4 else {"rewards__acc__mean": 0.0, "rewards__acc__std": 0.0}))
            for s in range(1, 12)]
    found = run(rows, {"acc": 1.0, "fmt": 1.0}).fired["dead_reward"]
    assert found.step == 8 and found.seen.startswith("reward acc gave every completion 0 at steps 4-8 ")


def test_entropy_collapse_is_judged_from_step_6_and_from_any_starting_entropy():
    # a start below 1 (Qwen-like entropies), down to under 0.2 x 0.6 at steps 4-6: the rule's span is 6 steps
    falling = [0.6, 0.6, 0.6, 0.05, 0.04, 0.03]
    found = run([healthy(s, entropy=v) for s, v in enumerate(falling, start=1)]).fired["entropy_collapse"]
    assert found.step == 6
    assert found.seen == "entropy was 0.050, 0.040, 0.030 at steps 4-6, against 0.600 at steps 1-3"


def test_shrinking_is_judged_from_step_10():
    lengths = [100.0] * 5 + [10.0] * 5
    found = run([healthy(s, completions__mean_length=v) for s, v in enumerate(lengths, start=1)]).fired["shrinking"]
    assert found.step == 10
    assert found.seen == ("completions/mean_length averaged 10.0 tokens at steps 6-10, down from 100.0 at "
                          "steps 1-5")


def test_the_thresholds_are_strict_as_the_table_says():
    # "< 0.2 x its mean over the first 3 steps": 0.1 against 0.5 (exactly 0.2 x) is not a collapse
    at_the_limit = [0.5, 0.5, 0.5] + [0.1] * 6
    assert "entropy_collapse" not in run([healthy(s, entropy=v) for s, v in enumerate(at_the_limit, start=1)]).fired
    # "< 0.4 x the mean over 5 earlier steps": 40 against 100 is not shrinking
    lengths = [100.0] * 5 + [40.0] * 5
    assert "shrinking" not in run([healthy(s, completions__mean_length=v)
                                   for s, v in enumerate(lengths, start=1)]).fired


# A line is a training step when it holds any metric a training step logs, though not every metric: a rule judges
# from its own metrics alone.
ALONE = [
    ("no_signal", {"frac_reward_zero_std": 1.0}),
    ("dead_reward", {"rewards/acc/mean": 0.0, "rewards/acc/std": 0.0}),
    ("truncated", {"completions/clipped_ratio": 0.95}),
]


@pytest.mark.parametrize("rule, metrics", ALONE, ids=[c[0] for c in ALONE])
def test_a_line_with_only_one_rules_metrics_is_a_training_step(rule, metrics):
    monitor = run([{"step": s, **metrics} for s in range(1, 6)])
    assert len(monitor.rows) == 5 and monitor.fired[rule].step == 5


def test_a_step_with_signal_ends_the_flat_stretch_even_when_no_group_was_flat():
    flat = [healthy(s, frac_reward_zero_std=1.0) for s in (1, 2)]
    assert run([*flat, healthy(3, frac_reward_zero_std=0.0)]).flat_steps() == 0  # every group had signal
    assert run([*flat, healthy(3, frac_reward_zero_std=1.0)]).flat_steps() == 3


def test_observe_returns_what_fired_at_that_step_as_the_callback_records_it():
    monitor = Monitor()
    assert [monitor.observe(healthy(s, frac_reward_zero_std=1.0)) for s in range(1, 5)] == [[]] * 4
    found = monitor.observe(healthy(5, frac_reward_zero_std=1.0))
    assert [(f.rule, f.step) for f in found] == [("no_signal", 5)]  # run.json's health: {rule: {step, line}}
    assert found[0] is monitor.fired["no_signal"]
    assert found[0].line.startswith("health: no_signal at step 5: frac_reward_zero_std was 1.00, 1.00, 1.00, 1.00, "
                                    "1.00 at steps 1-5: the run has no learning signal")
    assert monitor.observe(healthy(6, frac_reward_zero_std=1.0)) == []  # once


def test_copies_of_a_prompt_whose_messages_list_their_keys_in_another_order_are_one_prompt():
    prompts = [[{"role": "user", "content": "x"}], [{"content": "x", "role": "user"}]]
    assert identical_groups(prompts, [[1], [1]]) == 1.0


class Tool:
    """An object JSON cannot write and that has no pixels: a prompt holding one counts it by its kind."""


class Schema:
    pass


def test_a_prompt_holding_an_object_without_pixels_counts_it_by_its_kind():
    def prompt(obj):
        return [{"role": "user", "content": "x", "tool": obj}]

    prompts = [prompt(Tool()), prompt(Tool()), prompt(Schema()), prompt(Schema())]  # a new object per copy
    assert identical_groups(prompts, [[1], [1], [2], [3]]) == 0.5  # Tool's copies alike, Schema's not


def test_an_fp16_run_is_not_judged_by_skipped_steps(tmp_path):
    """fp16 loss scaling skips steps by design while it finds its scale (DeepSpeed #931: 6 of a healthy start's first
    10), so its run is left out of skipped_steps, here and in ``health`` (from config.yaml's training.fp16)."""
    from tinyzero_trl.run.health import judge_run

    rows = [healthy(s, grad_norm=float("inf"), health__nonfinite_weights=0.0) for s in range(1, 13)]
    assert "skipped_steps" in run(rows).fired
    fp16 = Monitor(fp16=True)
    for row in rows:
        fp16.observe(row)
    assert fp16.fired == {} and "skipped_steps" not in [r.name for r, _, _ in fp16.states()]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "config.yaml").write_text("training:\n  fp16: true\n")
    assert judge_run(tmp_path).fired == {}
    (tmp_path / "config.yaml").write_text("training:\n  fp16: false\n")
    assert list(judge_run(tmp_path).fired) == ["skipped_steps"]
