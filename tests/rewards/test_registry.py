"""The reward registry: names, weights, TRL metric names, helpful errors."""

from __future__ import annotations

import sys

import pytest

from tinyzero_trl.errors import ConfigError
from tinyzero_trl.rewards import (
    BOUNDS,
    PLUGINS_ENV,
    REWARDS,
    accuracy_scorer,
    format_reward,
    get_reward_funcs,
    load_plugins,
    reading,
    register,
    resolve_rewards,
)
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


def test_register_stores_the_bounds_as_floats_and_an_overwrite_without_bounds_drops_them():
    name = "test_registry_bounded_reward"
    try:
        register(name, bounds=(-2, 3))(countdown_equation_reward)
        assert BOUNDS[name] == (-2.0, 3.0) and all(type(b) is float for b in BOUNDS[name])
        register(name, overwrite=True)(countdown_equation_reward)
        assert name not in BOUNDS  # verify must not hold the run to bounds the new reward never declared
    finally:
        REWARDS.pop(name, None)
        BOUNDS.pop(name, None)


def test_unknown_name_message_lists_at_most_three_suggestions_joined_by_or():
    msg = str(_unknown_error("accuracy"))
    assert "unknown reward 'rewards.accuracy'; did you mean 'math_accuracy' or 'count_accuracy' or " \
           "'cosine_accuracy'? Known rewards: " in msg
    assert "'open_rs_accuracy'" not in msg  # a fourth close match is not suggested
    assert "did you mean 'cosine_accuracy'?" in str(_unknown_error("cosine"))  # a loose match (ratio 0.57) counts


def test_unknown_name_without_a_close_match_lists_the_known_rewards():
    msg = str(_unknown_error("zzzz"))
    known = ", ".join(sorted(REWARDS))
    assert msg == f"unknown reward 'rewards.zzzz'. Known rewards: {known}"
    assert "cosine_accuracy, cosine_accuracy_3584, count_accuracy" in known


def _unknown_error(name: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        resolve_rewards({name: 1.0})
    return err.value


def test_resolve_rewards_one_name_and_its_refusals():
    assert resolve_rewards("countdown_equation") == [("countdown_equation", 1.0)]
    with pytest.raises(ConfigError) as err:
        resolve_rewards(5)
    assert str(err.value) == "rewards=5: expected a mapping of reward name to weight"
    with pytest.raises(ConfigError) as err:
        resolve_rewards({})
    assert str(err.value) == "rewards is empty: name at least one reward, e.g. rewards.countdown_equation=1.0"
    with pytest.raises(ConfigError) as err:
        resolve_rewards({"countdown_format": 0.0, "countdown_equation": 0})
    assert str(err.value) == ("every reward weight is 0 (countdown_format, countdown_equation): nothing to learn "
                              "from; give at least one reward a non-zero weight")


PLUGIN = '''from tinyzero_trl.rewards import register


@register("{name}", bounds=(0.0, 1.0))
def reward(completions, **kwargs):
    return [0.5] * len(completions)
'''


def test_plugins_named_in_the_environment_register_their_rewards(tmp_path, monkeypatch):
    names = ["test_registry_plugin_a", "test_registry_plugin_b"]
    for name in names:
        (tmp_path / f"{name}_mod.py").write_text(PLUGIN.format(name=name), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(PLUGINS_ENV, " test_registry_plugin_a_mod , test_registry_plugin_b_mod,")
    try:
        load_plugins()
        assert all(name in REWARDS for name in names)
        assert resolve_rewards(names) == [(names[0], 1.0), (names[1], 1.0)]
    finally:
        for name in names:
            REWARDS.pop(name, None)
            BOUNDS.pop(name, None)
            sys.modules.pop(f"{name}_mod", None)


def test_a_plugin_that_cannot_be_imported_is_named_with_the_fix(monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, "no_such_reward_module_xyz")
    with pytest.raises(ConfigError) as err:
        load_plugins()
    msg = str(err.value)
    assert msg.startswith(f"{PLUGINS_ENV}: cannot import 'no_such_reward_module_xyz' (")
    assert msg.endswith("); put its folder on PYTHONPATH")


def test_reading_maps_the_text_parts_of_conversational_completions():
    seen = []

    def judge(completions, **kwargs):
        seen.extend(completions)
        return [0.0] * len(completions)

    read = reading(judge, lambda text: text.split("STOP")[0])
    image = {"type": "image"}
    message = {"role": "assistant", "content": [{"type": "text", "text": "12STOP junk"}, image, "raw"]}
    read(completions=[[message, {"role": "assistant", "content": "3STOP x"}, "not a message"]])
    assert seen == [[{"role": "assistant", "content": [{"type": "text", "text": "12"}, image, "raw"]},
                     {"role": "assistant", "content": "3"}, "not a message"]]
    assert message["content"][0]["text"] == "12STOP junk"  # the trainer's own completions are not changed


def test_format_reward_is_the_first_reward_that_judges_no_answer():
    assert format_reward(["mini_r1_format", "mini_r1_equation"]) == "mini_r1_format"
    assert format_reward(["countdown_equation", "countdown_format", "think_format"]) == "countdown_format"
    assert format_reward(["cosine_accuracy", "open_rs_format"]) == "open_rs_format"
    assert format_reward(["countdown_equation", "tinyzero_correct"]) is None  # both judge answers
    assert format_reward([]) is None


def test_scorer_libraries_name_the_installed_versions_behind_a_math_verdict():
    """What the fidelity tables and summary record of a scorer: math-verify's rewards name its libraries and
    their installed versions; the other rewards are this package's Python alone."""
    from importlib.metadata import version

    from tinyzero_trl.rewards import MATH_VERIFY_REWARDS, scorer_libraries

    libraries = f"math-verify {version('math-verify')}, latex2sympy2_extended {version('latex2sympy2_extended')}"
    assert {scorer_libraries(name) for name in MATH_VERIFY_REWARDS} == {libraries}
    assert scorer_libraries("tinyzero_countdown") == scorer_libraries("count_accuracy") == "none (Python only)"
