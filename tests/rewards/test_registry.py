"""The reward registry: names, weights, TRL metric names, helpful errors."""

from __future__ import annotations

import pytest

from tinyzero_trl.rewards import REWARDS, get_reward_funcs, register
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


def test_bad_weight():
    with pytest.raises(ValueError, match="not a number"):
        get_reward_funcs({"countdown_format": "high"})
    with pytest.raises(ValueError, match="not a number"):
        get_reward_funcs({"countdown_format": True})


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
