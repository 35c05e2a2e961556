
import pytest
import yaml

from support import ROOT
from tinyzero_trl.config import ConfigError, validate
from tinyzero_trl.config.compose import compose

RECIPES = sorted(p for p in (ROOT / "src/tinyzero_trl/recipes").glob("*/*.yaml")
                 if p.parent.name != "smoke")


def base(**over):
    # use_cpu: a GPU recipe checked on this CPU machine, as `train` plans it here (trl checks bf16 support).
    overrides = ["+countdown=grpo-qwen-2.5-3b-base", "model.name_or_path=/m", "training.output_dir=/tmp/x",
                 "++training.use_cpu=true"]
    return compose(overrides + [f"{k}={v}" for k, v in over.items()])


def test_recipe_composes_and_validates():
    cfg = validate(base())
    assert cfg.data.task == "countdown" and cfg.training.beta == 0.001
    assert cfg.rewards["tinyzero_countdown"] == 1.0


def test_smoke_profile_overrides_the_recipe_and_cli_overrides_win():
    raw = compose(["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", "training.max_steps=3", "training.output_dir=o",
                   "model.name_or_path=/m"])
    assert raw["training"]["max_steps"] == 3 and raw["training"]["use_vllm"] is False
    assert raw["model"]["dtype"] == "float32"


def cited_sources(text: str) -> list[str]:
    """The comment lines of a recipe that cite where its numbers come from (a "Source"/"Sources" line)."""
    comments = [line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip().startswith("#")]
    return [c for c in comments if c.startswith(("Source:", "Sources:", "Source (", "Sources ("))]


def test_the_source_check_reads_comments_not_keys():
    assert cited_sources("# Source: TinyZero scripts/train_tiny_zero.sh\ndata:\n  source: hub\n")
    assert not cited_sources("data:\n  source: hub  # Source: a trailing comment is not a citation line\n")


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_recipe_sets_trl_116_changed_defaults_and_cites_a_source(recipe):
    """trl 1.16 changed beta, loss_type, vllm_mode, the KL's ratio factor and the vLLM importance-sampling
    correction: a recipe must say what its paper used."""
    text = recipe.read_text()
    composed = compose([f"+{recipe.parent.name}={recipe.stem}"])  # with what it inherits (Hydra defaults)
    for key in ("beta", "loss_type", "scale_rewards", "learning_rate", "num_generations"):
        assert key in composed["training"], f"{recipe.name} leaves training.{key} to trl's default"
    if composed["training"].get("use_vllm"):
        assert "vllm_mode" in composed["training"]
        # trl 1.16 corrects for the trainer/vLLM mismatch by default; no source before trl 0.23 did
        assert "vllm_importance_sampling_correction" in composed["training"], recipe.name
    if composed["training"]["beta"]:  # trl 1.16 multiplies the KL term by the importance ratio by default
        assert "use_bias_correction_kl" in composed["training"], f"{recipe.name} leaves use_bias_correction_kl"
    assert cited_sources(text), f"{recipe.name}: no '# Source:' comment says where its hyperparameters come from"
    # countdown-tiny's base model is built at run time, so its recipe leaves the path to `reproduce`.
    model = [] if composed["model"]["name_or_path"] != "???" else ["model.name_or_path=/built/at/run/time"]
    validate(compose([f"+{recipe.parent.name}={recipe.stem}", *model, "++training.use_cpu=true"]))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_seed_k_is_the_trainers_seed_in_every_recipe(recipe):
    """`reproduce NAME seed=K` and `record NAME --seeds ...` set the top-level seed; a recipe that pins
    training.seed would make them train with one seed whatever K is (five GPU recipes pinned 42)."""
    composed = compose([f"+{recipe.parent.name}={recipe.stem}"])
    model = [] if composed["model"]["name_or_path"] != "???" else ["model.name_or_path=/built/at/run/time"]
    for seed in (7, 42):
        cfg = validate(compose([f"+{recipe.parent.name}={recipe.stem}", *model, "++training.use_cpu=true",
                                "training.output_dir=/tmp/x", f"seed={seed}"]))
        assert cfg.training.seed == seed, f"{recipe.name}: seed={seed} trains with seed {cfg.training.seed}"


def test_recipes_that_differ_in_a_few_lines_inherit_them():
    """The 0.5B/1.5B recipes are the 3B one with another model; the 72B one is Mini-R1's 3B with its scale."""
    root = RECIPES[0].parents[1]
    for child, parent, differs in (("grpo-qwen-2.5-0.5b-base", "grpo-qwen-2.5-3b-base", {"model", "training"}),
                                   ("grpo-qwen-2.5-72b-instruct", "grpo-qwen-2.5-3b-instruct", {"model", "training"})):
        body = yaml.safe_load((root / "countdown" / f"{child}.yaml").read_text())
        assert body["defaults"][0] == parent and set(body) - {"defaults"} == differs
        a, b = compose([f"+countdown={child}"]), compose([f"+countdown={parent}"])
        assert a["data"] == b["data"] and a["rewards"] == b["rewards"]


def test_unknown_training_key_names_the_closest_field():
    with pytest.raises(ConfigError, match="training.learnig_rate.*learning_rate"):
        validate(base(**{"+training.learnig_rate": 1e-5}))


def test_unknown_section_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="model.nme_or_path.*name_or_path"):
        validate(base(**{"+model.nme_or_path": "x"}))


def test_unknown_reward_is_named():
    with pytest.raises(ConfigError, match="countdown_equation"):
        validate(base(**{"+rewards.countdown_equaton": 1.0}))


def test_missing_model_path_says_what_to_add():
    raw = compose(["+countdown=grpo-qwen-2.5-3b-base", "training.output_dir=o"])
    raw["model"]["name_or_path"] = None
    with pytest.raises(ConfigError, match="model.name_or_path=HUB_ID_OR_LOCAL_DIR"):
        validate(raw)


def test_no_recipe_asks_for_one():
    with pytest.raises(ConfigError, match=r"\+countdown="):
        validate({"model": {"name_or_path": "m"}, "data": {}, "rewards": {"countdown_equation": 1},
                  "training": {"output_dir": "o"}})


def test_reward_weights_belong_under_rewards():
    with pytest.raises(ConfigError, match="under rewards"):
        validate(base(**{"+training.reward_weights": "[1.0]"}))
