"""countdown-3b's stop string under vLLM, in training (colocated) and in evaluation: the same completions, the same
stop, the same text for the rewards as under HF generate (tests/train/test_stopping.py). vLLM cuts a matched stop
string from its text but keeps it in the token ids trl decodes: without the fix the reward read
'...</answer>\\nUser:' and TinyZero's last-line rule scored a right answer 0."""

from __future__ import annotations

import json

import pytest

from support import OAT_STOPS, PLUGINS, STOP_ANSWER, STOP_PROMPT, countdown_zero_folder, steered_model
from tinyzero_trl.run.metrics import read_metrics

from .conftest import run_cli

ANSWER = STOP_ANSWER


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    return str(steered_model(tmp_path_factory.mktemp("steered"), STOP_PROMPT, STOP_ANSWER + "\nUser: and more",
                             vllm=True))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return countdown_zero_folder(tmp_path_factory.mktemp("countdownzero"))


def test_colocated_vllm_stops_at_user_and_the_reward_reads_the_answer(steered, data, tmp_path):
    record, out = tmp_path / "record.jsonl", tmp_path / "run"
    proc = run_cli(["train", "+countdown=grpo-qwen-2.5-3b-base-oat", "+smoke=cpu", f"model.name_or_path={steered}",
                    "data.source=local", f"data.path={data}", "data.num_test=2", "training.max_steps=1",
                    "training.max_completion_length=96", "training.use_vllm=true", f"training.output_dir={out}",
                    "+rewards.record_completions=0.0",
                    # Qwen's ids of <|im_end|> and <|endoftext|>: this tiny vocabulary has neither id (vLLM refuses
                    # them); the recipe's stop strings name the same two tokens, which become this vocabulary's ids
                    "training.generation_kwargs.stop_token_ids=[]"], tmp_path / "train.log", TINYZERO_RECORD=str(record),
                   TINYZERO_REWARD_MODULES="tinyzero_test_rewards", PYTHONPATH=str(PLUGINS))
    assert proc.returncode == 0, proc.stdout[-4000:]
    seen = [json.loads(line) for line in record.read_text().splitlines()]
    assert seen and all(s["text"] == ANSWER for s in seen), seen[:2]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(steered)
    assert all(tokenizer.decode(s["ids"], skip_special_tokens=True) == ANSWER + "\nUser:" for s in seen)
    assert read_metrics(out / "metrics.jsonl")[0]["rewards/tinyzero_countdown/mean"] == 1.0


def test_vllm_and_hf_evaluation_give_the_same_cut_completions(steered, data):
    from tinyzero_trl.evaluation.evaluate import evaluate

    common = {"max_new_tokens": 96, "strip": True, "stop": OAT_STOPS, "scorer": "tinyzero_correct", "progress": False,
              "data": {"task": "countdown", "source": "local", "path": str(data), "test_split": "test",
                       "template": "dataset"}}
    by_vllm, by_hf = evaluate("countdown", steered, backend="vllm", **common), evaluate("countdown", steered,
                                                                                         backend="hf", **common)
    assert [i["completions"] for i in by_vllm["items"]] == [i["completions"] for i in by_hf["items"]]
    assert [i["completions"] for i in by_vllm["items"]] == [[ANSWER.strip()]] * 2 and by_vllm["accuracy"] == 1.0
