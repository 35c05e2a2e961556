"""The clevr-tiny recipe and reproduction: it composes and validates, plans offline, and is the clevr-2b recipe
(grpo-qwen2-vl-2b-clevr) but for the model, the data source and the sizes."""

from tinyzero_trl.config import validate
from tinyzero_trl.config.compose import compose
from tinyzero_trl.reproduce.folders import Reproduction
from tinyzero_trl.tiny.clevr_base import PACKAGED_DIR

# What clevr-tiny may change: which model, where the data comes from, and how big things are.
SIZES = {"seed", "per_device_train_batch_size", "max_completion_length", "max_steps", "save_steps", "learning_rate",
         "output_dir"}
CPU = {"use_cpu", "bf16", "save_only_model", "dataloader_num_workers", "disable_tqdm"}
# Pinned to what the miniature was recorded with, where clevr-2b now follows R1-V's published run (issue 27):
# trl 1.16's fused AdamW and KL bias correction here; R1-V's plain AdamW and uncorrected KL there.
RECORDED = {"optim", "use_bias_correction_kl"}


def recipe(*extra):
    return compose(["+multimodal=grpo-tiny-clevr", f"model.name_or_path={PACKAGED_DIR}", *extra])


def test_recipe_validates_and_is_the_clevr_recipe_but_for_model_data_source_and_sizes():
    tiny = recipe()
    validate(tiny)
    big = compose(["+multimodal=grpo-qwen2-vl-2b-clevr"])
    # The same rewards; the format weight stays on vl_format as recorded (clevr-2b trains R1-V's r1v_format).
    assert tiny["rewards"] == {"count_accuracy": 1.0, "r1v_format": 0.0, "vl_format": 1.0}
    assert big["rewards"] == {"count_accuracy": 1.0, "r1v_format": 1.0, "vl_format": 0.0}
    same = ("task", "system_prompt", "instruction", "template", "min_pixels", "max_pixels", "num_test")
    assert {k: tiny["data"][k] for k in same} == {k: big["data"][k] for k in same}
    assert tiny["data"]["source"] == "generate" and big["data"]["source"] == "hub"
    changed = {k for k in set(tiny["training"]) | set(big["training"]) if tiny["training"].get(k) != big["training"].get(k)}
    assert changed <= SIZES | CPU | RECORDED, changed - SIZES - CPU - RECORDED
    for key in ("beta", "loss_type", "scale_rewards", "num_iterations", "num_generations", "temperature", "top_k",
                "lr_scheduler_type", "gradient_accumulation_steps", "use_vllm"):
        assert tiny["training"][key] == big["training"][key], key


def test_reproduction_uses_the_packaged_clevr_base_and_r1v_scoring(capsys):
    from tinyzero_trl.reproduce.pipeline import reproduce

    repro = Reproduction.load("clevr-tiny")
    assert repro.tiny_base == "clevr" and repro.evaluate["scorer"] == "r1v_count_eval"
    assert repro.evaluate["scorer"] == Reproduction.load("clevr-2b").evaluate["scorer"]
    assert reproduce("clevr-tiny", dry_run=True) == 0
    out = capsys.readouterr().out
    assert f"model        : {PACKAGED_DIR} " in out and "+multimodal=grpo-tiny-clevr" in out


def test_the_run_seed_reaches_the_trainer():
    # The clevr recipe pins training.seed 42; the miniature follows `seed=K`, or its recorded seeds are one run.
    assert recipe("seed=3")["training"]["seed"] == 3
