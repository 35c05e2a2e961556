"""What a training process prints (issue 32): one short line a step instead of transformers' metrics dict, and no
"missing keys ['lm_head.weight']" on the resume of a model with tied embeddings."""

from __future__ import annotations

import logging
import types

import pytest
from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerControl, TrainerState

from tinyzero_trl.train.console import StepLines, quiet_tied_weights, step_line, use_step_lines

LOGS = {"loss": 0.0266, "grad_norm": 0.1228, "learning_rate": 0.0003, "completions/mean_length": 109.2,
        "rewards/countdown_equation/mean": 0.265625, "rewards/countdown_format/mean": 0.875, "reward": 0.2656,
        "kl": 0.0, "entropy": 0.04346, "step_time": 6.08, "epoch": 0.002}


def test_a_step_is_one_short_line():
    line = step_line(LOGS, 5, 20, "countdown_equation", "countdown_format")
    assert line == "step 5/20  accuracy 0.266  format 0.875  length 109  6.1 s"
    assert len(line) < 80 and len(str(LOGS)) > 3 * len(line)


def test_eval_logs_the_summary_and_missing_figures():
    evaluated = {"eval_rewards/countdown_equation/mean": 0.5, "eval_completions/mean_length": 40.0}
    assert step_line(evaluated, 10, 20, "countdown_equation", "countdown_format") == (
        "eval at step 10  accuracy 0.500  length 40")
    assert step_line({"train_runtime": 95.4, "train_loss": 0.1}, 20, 20, "a", "b") == "trained to step 20 in 95 s"
    assert step_line({"loss": 1.0}, 3, -1, "a", None) == "step 3"  # nothing made up for what was not logged


def _state(step=5, max_steps=20):
    state = TrainerState()
    state.global_step, state.max_steps, state.is_world_process_zero = step, max_steps, True
    return state


def test_the_callback_prints_the_line_not_the_dict(capsys):
    callback = StepLines(["countdown_equation", "countdown_format"], "runs/x/metrics.jsonl", bar=False)
    args = types.SimpleNamespace()
    callback.on_train_begin(args, _state(), TrainerControl())
    callback.on_log(args, _state(), TrainerControl(), logs=dict(LOGS))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[tinyzero-trl] one line per step (accuracy = rewards/countdown_equation/mean, format "
                             "= rewards/countdown_format/mean") and "runs/x/metrics.jsonl" in out[0]
    assert out[1] == "step 5/20  accuracy 0.266  format 0.875  length 109  6.1 s"
    assert "grad_norm" not in "\n".join(out)


class _FakeTrainer:
    def __init__(self, disable_tqdm=False):
        self.args = types.SimpleNamespace(disable_tqdm=disable_tqdm)
        self.callbacks = [PrinterCallback() if disable_tqdm else ProgressCallback()]

    def remove_callback(self, cls):
        self.callbacks = [c for c in self.callbacks if not isinstance(c, cls)]

    def add_callback(self, callback):
        self.callbacks.append(callback)


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_transformers_dict_printers_are_replaced_unless_verbose(monkeypatch, disable_tqdm):
    trainer = _FakeTrainer(disable_tqdm)
    use_step_lines(trainer, ["math_accuracy", "think_close_format"], "m.jsonl")
    assert [type(c) for c in trainer.callbacks] == [StepLines] and trainer.callbacks[0].bar is not disable_tqdm
    monkeypatch.setenv("TINYZERO_VERBOSE", "1")
    trainer = _FakeTrainer(disable_tqdm)
    use_step_lines(trainer, ["math_accuracy"], "m.jsonl")
    assert [type(c) for c in trainer.callbacks] == [PrinterCallback if disable_tqdm else ProgressCallback]


def _tied_model_and_resume_result(tmp_path):
    from safetensors.torch import load_file
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True))
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")  # what Trainer's resume loads, non-strictly
    return model, state


def _warnings(caplog, trainer, load_result) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        trainer._issue_warnings_after_load(load_result)
    return [r.getMessage() for r in caplog.records if "missing keys" in r.getMessage()]


def test_a_resume_of_tied_embeddings_warns_of_no_missing_key(tmp_path, caplog):
    model, state = _tied_model_and_resume_result(tmp_path)
    assert "lm_head.weight" not in state  # safetensors keeps the shared tensor once
    trainer = types.SimpleNamespace(model=model)
    trainer._issue_warnings_after_load = types.MethodType(Trainer._issue_warnings_after_load, trainer)
    result = model.load_state_dict(state, False)
    assert result.missing_keys == ["lm_head.weight"] and model.lm_head.weight is model.model.embed_tokens.weight
    assert _warnings(caplog, trainer, result)  # transformers' own warning, as users saw it
    quiet_tied_weights(trainer)
    assert _warnings(caplog, trainer, result) == []
    # A key that is really missing is still reported.
    broken = model.load_state_dict({k: v for k, v in state.items() if "norm" not in k}, False)
    assert any("norm" in w for w in _warnings(caplog, trainer, broken))
