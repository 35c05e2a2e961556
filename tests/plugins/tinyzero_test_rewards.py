"""Rewards for tests only, loaded through ``TINYZERO_REWARD_MODULES=tinyzero_test_rewards`` (tests/plugins on the path).

A random tiny model never writes a countdown answer, so every built-in reward gives it 0.0, every advantage is
0, and GRPO leaves the weights exactly as they were: a smoke run would pass without training anything. This
reward varies on any text, so the smoke runs' advantages are not zero and their weights must move.
"""

from tinyzero_trl.rewards import register
from tinyzero_trl.rewards.format import completion_texts


@register("text_variety", bounds=(0.0, 1.0))
def text_variety(completions, **kwargs) -> list[float]:
    """Distinct characters over length: any two different completions are likely to score differently."""
    return [len(set(t)) / len(t) if t else 0.0 for t in (c or "" for c in completion_texts(completions))]
