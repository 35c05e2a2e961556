"""Acceptance: the R1-V CLEVR recipe trains end to end offline (tiny Qwen2-VL, synthetic shapes), then evaluates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import ENV, LEARNING_SIGNAL, assert_every_parameter_moved
from tinyzero_trl.run.metrics import read_metrics
from tinyzero_trl.run.status import read_status


def cli(*args, timeout):
    return subprocess.run([sys.executable, "-m", "tinyzero_trl.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def clevr_run(tmp_path_factory) -> Path:
    """A 2-step GRPO run of the CLEVR recipe on a random tiny Qwen2-VL (built by the CLI) and generated shapes."""
    root = tmp_path_factory.mktemp("clevr")
    model, out = root / "tiny-vl", root / "run"
    proc = cli("tiny-model", "--arch", "qwen2-vl", "--out", str(model), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli("train", "+multimodal=grpo-qwen2-vl-2b-clevr", "+smoke=cpu", f"model.name_or_path={model}",
               "data.source=generate", "training.num_iterations=2", f"training.output_dir={out}", *LEARNING_SIGNAL,
               timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_clevr_recipe_trains_two_steps_offline(clevr_run):
    rows = read_metrics(clevr_run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    # Step 1 generates and scores (both rewards logged); with num_iterations=2, step 2 reuses that batch.
    assert "rewards/count_accuracy/mean" in rows[0] and "rewards/vl_format/mean" in rows[0]
    status = read_status(clevr_run)
    assert status["status"] == "completed" and status["global_step"] == 2
    # The run directory is a loadable vision-language checkpoint: model, processor, resolved recipe.
    for name in ("config.json", "processor_config.json", "config.yaml"):
        assert (clevr_run / name).is_file(), name
    assert_every_parameter_moved(clevr_run.parent / "tiny-vl", clevr_run)


@pytest.mark.slow
def test_evaluate_multimodal_on_the_run(clevr_run, tmp_path):
    from tinyzero_trl.evaluation.evaluate import evaluate

    result = evaluate("multimodal", str(clevr_run), limit=3, max_new_tokens=4, batch_size=2,
                      output=str(tmp_path / "eval.json"), progress=False)
    assert result["backend"] == "hf" and result["num_items"] == 3
    assert 0.0 <= result["accuracy"] <= 1.0
    item = result["items"][0]
    assert "image" not in item and item["solution"].isdigit() and len(item["completions"]) == 1
    assert (tmp_path / "eval.json").is_file()
