"""``judge_run``: a run directory's metrics.jsonl through the health rules, weighed by the rewards its config.yaml
trains on (every logged reward when there is no config.yaml, or its rewards are a list: each weighs 1.0)."""

from __future__ import annotations

import json

import pytest

from tinyzero_trl.run.health import judge_run


def a_run(tmp_path, config: str | None):
    """A run whose reward ``acc`` no completion earns (mean 0, std 0 at every step) beside a ``fmt`` that works."""
    rows = [{"step": s, "frac_reward_zero_std": 0.25, "entropy": 0.5, "rewards/acc/mean": 0.0, "rewards/acc/std": 0.0,
             "rewards/fmt/mean": 0.6, "rewards/fmt/std": 0.4} for s in range(1, 8)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
    return tmp_path


def test_a_reward_the_config_logs_with_weight_zero_is_not_dead(tmp_path):
    monitor = judge_run(a_run(tmp_path, "rewards:\n  acc: 0.0\n  fmt: 1.0\ntraining:\n  output_dir: x\n"))
    assert monitor.fired == {} and len(monitor.rows) == 7


@pytest.mark.parametrize("config", [None, "rewards:\n  acc: 1.0\n  fmt: 1.0\n", "rewards: [acc, fmt]\n",
                                    "rewards: acc\n", "training:\n  output_dir: x\n"],
                         ids=["no config.yaml", "weights", "a list", "one name", "no rewards"])
def test_a_weighted_or_unweighed_dead_reward_fires(tmp_path, config):
    found = judge_run(a_run(tmp_path, config)).fired
    assert list(found) == ["dead_reward"] and found["dead_reward"].step == 5
    assert found["dead_reward"].line.startswith("health: dead_reward at step 5: reward acc gave every completion 0 "
                                                "at steps 1-5")
