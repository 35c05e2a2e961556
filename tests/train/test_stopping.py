"""countdown-3b's stop string through the real training and evaluation paths (HF generate here; vLLM in
tests/real_vllm): generation stops right after it, the loss keeps its tokens, and the rewards read the text
without it, as oat-zero's did. A tiny model is trained to answer and then go on with "\\nUser:" and more text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import ENV, OAT_STOPS, STOP_ANSWER, STOP_PROMPT, countdown_zero_folder, steered_model
from tinyzero_trl.run.metrics import read_metrics

ANSWER = STOP_ANSWER


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    return str(steered_model(tmp_path_factory.mktemp("steered"), STOP_PROMPT,
                             STOP_ANSWER + "\nUser: and a question of its own"))


@pytest.mark.slow
def test_countdown_3b_stops_at_user_and_its_reward_reads_the_answer(steered, tmp_path):
    """Fails before issue 27's fix: HF ignored the recipe's `stop`, and TRL scored the decoded ids, stop string and
    all, so TinyZero's last-line rule gave 0 to a right answer."""
    record, out = tmp_path / "record.jsonl", tmp_path / "run"
    cmd = [sys.executable, "-m", "tinyzero_trl.cli", "train", "+countdown=grpo-qwen-2.5-3b-base-oat", "+smoke=cpu",
           f"model.name_or_path={steered}", "data.source=local", f"data.path={countdown_zero_folder(tmp_path / 'd')}",
           "data.num_test=2", "training.max_steps=1", "training.max_completion_length=96",
           f"training.output_dir={out}", "+rewards.record_completions=0.0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**ENV, "TINYZERO_RECORD": str(record)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(seen) >= 4 and all(s["text"] == ANSWER for s in seen), seen
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(steered)
    for s in seen:  # generation ended right after the stop string; its tokens stay in what the loss trains on
        assert tokenizer.decode(s["ids"], skip_special_tokens=True) == ANSWER + "\nUser:"
    assert read_metrics(out / "metrics.jsonl")[0]["rewards/tinyzero_countdown/mean"] == 1.0


@pytest.mark.slow
def test_evaluation_cuts_the_same_text_and_stops_on_special_tokens(steered, tmp_path):
    """countdown-3b's protocol: oat's stop strings (two of them special tokens), the text stripped, scored by
    TinyZero's test of a right answer."""
    from tinyzero_trl.evaluation.evaluate import evaluate

    result = evaluate("countdown", steered, backend="hf", max_new_tokens=96, strip=True,
                      stop=OAT_STOPS, scorer="tinyzero_correct",
                      data={"task": "countdown", "source": "local", "path": str(countdown_zero_folder(tmp_path / "d")),
                            "test_split": "test", "template": "dataset"}, progress=False)
    assert [item["completions"] for item in result["items"]] == [[ANSWER.strip()]] * 2
    assert result["accuracy"] == 1.0 and result["stop_token_ids"] == [] and result["strip"] is True
