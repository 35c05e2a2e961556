"""The reward registry: names, weights, TRL metric names, helpful errors."""

from __future__ import annotations

import pytest

from tinyzero_trl.errors import ConfigError
from tinyzero_trl.rewards import REWARDS, accuracy_scorer, get_reward_funcs, register, resolve_rewards
from tinyzero_trl.rewards.countdown import countdown_equation_reward

BUILTIN = ["countdown_equation", "countdown_format", "tinyzero_countdown", "math_accuracy", "think_format",
           "mini_r1_format", "mini_r1_equation"]


def test_builtin_names_and_metric_names():
    assert set(BUILTIN) <= set(REWARDS)
    for name in BUILTIN:
        assert REWARDS[name].__name__ == name  # TRL logs rewards/<__name__>/mean
        assert REWARDS[name].__doc__
    assert countdown_equation_reward.__name__ == "countdown_equation_reward"  # the original keeps its name


def test_get_reward_funcs_list_and_dict():
    funcs, weights = get_reward_funcs(["countdown_format", "countdown_equation"])
    assert [f.__name__ for f in funcs] == ["countdown_format", "countdown_equation"] and weights == [1.0, 1.0]
    funcs, weights = get_reward_funcs({"tinyzero_countdown": 1, "countdown_equation": 0.0, "countdown_format": 0.5})
    assert [f.__name__ for f in funcs] == ["tinyzero_countdown", "countdown_equation", "countdown_format"]
    assert weights == [1.0, 0.0, 0.5] and all(isinstance(w, float) for w in weights)
    out = funcs[0](completions=["<answer>1+2</answer>"], nums=[[1, 2]], target=[3], prompts=["p"])
    assert out == [1.0]


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError) as err:
        get_reward_funcs(["countdown_equaton"])
    msg = str(err.value)
    assert "countdown_equaton" in msg and "'countdown_equation'" in msg
    assert all(name in msg for name in BUILTIN)  # lists every valid name
    with pytest.raises(ValueError, match="math_accuracy"):
        get_reward_funcs({"math_acc": 1.0})
    with pytest.raises(ValueError, match="Known rewards"):
        get_reward_funcs(["zzzz"])


@pytest.mark.parametrize("weight", ["high", True, float("nan"), float("inf"), None])
def test_a_weight_that_is_not_a_finite_number_is_named(weight):
    with pytest.raises(ConfigError, match=r"rewards\.countdown_format=.*finite number"):
        get_reward_funcs({"countdown_format": weight, "countdown_equation": 1.0})


def test_weights_that_are_all_zero_leave_nothing_to_learn():
    with pytest.raises(ConfigError, match="every reward weight is 0"):
        resolve_rewards({"countdown_format": 0.0, "countdown_equation": 0})


def test_accuracy_scorer_follows_the_rewards():
    assert accuracy_scorer({"tinyzero_countdown": 1.0, "countdown_equation": 0.0}) == "tinyzero_correct"
    assert accuracy_scorer({"countdown_equation": 1.0, "countdown_format": 0.0}) == "countdown_equation"
    assert accuracy_scorer({"mini_r1_format": 1.0, "mini_r1_equation": 1.0}) == "mini_r1_equation"
    with pytest.raises(ConfigError, match="2 ways"):
        accuracy_scorer({"tinyzero_countdown": 1.0, "countdown_equation": 1.0})
    assert accuracy_scorer({"math_accuracy": 1.0, "vl_format": 1.0}) == "math_accuracy"  # geometry recipe
    assert accuracy_scorer({"count_accuracy": 1.0, "vl_format": 1.0}) == "count_accuracy"
    with pytest.raises(ConfigError, match="none of them judges answers"):
        accuracy_scorer({"think_format": 1.0})


def test_register_decorator():
    name = "test_registry_constant_reward"
    try:
        @register(name)
        def always_half(completions, **kwargs):
            """Half a point for everything."""
            return [0.5] * len(completions)

        assert always_half.__name__ == "always_half"
        funcs, _ = get_reward_funcs([name])
        assert funcs[0].__name__ == name and funcs[0](["a", "b"], x=1) == [0.5, 0.5]
        with pytest.raises(ValueError, match="already registered"):
            register(name)(always_half)
        register(name, overwrite=True)(always_half)
    finally:
        REWARDS.pop(name, None)
    with pytest.raises(ValueError, match="identifier"):
        register("has space")
