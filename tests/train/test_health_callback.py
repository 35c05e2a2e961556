"""The health callback as the trainer drives it: a rule's line printed and recorded once, the stop of a run with no
learning signal, a resumed run's window spanning the restart, and the metric TRL does not log (issue 31)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from transformers import TrainerControl

from tinyzero_trl.errors import EXIT_FAILED, Diverged, NoLearningSignal
from tinyzero_trl.run.status import read_status
from tinyzero_trl.train.health import HealthCallback, with_identical_groups

FLAT = {"frac_reward_zero_std": 1.0, "rewards/r/mean": 0.5, "rewards/r/std": 0.2, "entropy": 1.0}


def state(step, main=True):
    return SimpleNamespace(global_step=step, is_world_process_zero=main)


def feed(cb, steps, logs=FLAT, main=True):
    control = TrainerControl()
    for step in steps:
        control = cb.on_log(None, state(step, main), control, logs=dict(logs))
    return control


def test_a_rule_is_printed_and_recorded_once_with_its_step(tmp_path, capsys):
    cb = HealthCallback(tmp_path, rewards={"r": 1.0})
    assert read_status(tmp_path)["health"] == {}  # monitored, nothing fired yet
    control = feed(cb, range(1, 9))
    err = capsys.readouterr().err
    assert err.count("[tinyzero-trl] health: no_signal at step 5: frac_reward_zero_std was 1.00, 1.00") == 1
    recorded = read_status(tmp_path)["health"]
    assert list(recorded) == ["no_signal"] and recorded["no_signal"]["step"] == 5
    assert recorded["no_signal"]["line"] in err
    assert not control.should_training_stop  # off by default: a GRPO run may start flat


def test_other_ranks_decide_alike_but_neither_print_nor_record(tmp_path, capsys):
    cb = HealthCallback(tmp_path, is_writer=False, stop_without_signal=2)
    control = feed(cb, range(1, 6), main=False)
    assert capsys.readouterr().err == "" and not (tmp_path / "run.json").exists()
    assert control.should_training_stop and cb.monitor.fired["no_signal"].step == 5


def test_stop_without_signal_ends_the_run_after_that_many_flat_steps(tmp_path):
    cb = HealthCallback(tmp_path, stop_without_signal=3)
    assert not feed(cb, [1, 2]).should_training_stop
    assert not feed(cb, [3], logs={**FLAT, "frac_reward_zero_std": 0.875}).should_training_stop  # one group moved
    assert not feed(cb, [4, 5]).should_training_stop
    assert feed(cb, [6]).should_training_stop
    err = cb.stopped  # what trainer.train raises
    assert isinstance(err, NoLearningSignal)
    assert err.exit_code == EXIT_FAILED
    assert str(err).startswith("stopped at step 6 by stop_without_signal=3: frac_reward_zero_std was 1 at the "
                                     "last 3 logged steps")
    assert str(err).endswith("then start over with fresh=true")


def test_a_resumed_run_counts_the_steps_before_its_checkpoint(tmp_path, capsys):
    lines = [{"step": s, **FLAT} for s in range(1, 7)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    cb = HealthCallback(tmp_path, resume_step=3)  # steps 4-6 are trained again
    assert read_status(tmp_path)["health"] == {}
    feed(cb, [4])
    assert capsys.readouterr().err == ""
    feed(cb, [5])
    assert "health: no_signal at step 5: frac_reward_zero_std was 1.00, 1.00, 1.00, 1.00, 1.00 at steps 1-5" in (
        capsys.readouterr().err)
    again = HealthCallback(tmp_path, resume_step=6)  # the rule fired before the checkpoint: kept, not repeated
    assert again.monitor.fired["no_signal"].step == 5 and list(read_status(tmp_path)["health"]) == ["no_signal"]
    feed(again, [7])
    assert capsys.readouterr().err == ""


def test_the_first_reward_also_logs_how_many_groups_are_identical():
    logged = []

    def reward(completions, **kwargs):
        return [float(len(c)) for c in completions]

    reward.__name__ = "my_reward"
    wrapped = with_identical_groups(reward)
    out = wrapped(completions=["ab", "ab", "c", "d"], prompts=["p", "p", "q", "q"],
                  completion_ids=[[1, 2], [1, 2], [3], [4]], log_metric=lambda k, v: logged.append((k, v)))
    assert out == [2.0, 2.0, 1.0, 1.0] and wrapped.__name__ == "my_reward"  # TRL names rewards/my_reward/...
    assert logged == [("health/identical_groups", 0.5)]
    assert wrapped(completions=["x"]) == [1.0]  # called without TRL's extras: scores, logs nothing


class _Weights:
    """A model as the callback sees it: trainable weights, some of them NaN when ``nan``."""

    def __init__(self, nan: bool):
        import torch

        self.weights = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
        if nan:
            with torch.no_grad():
                self.weights[1][0] = float("nan")
        self.looked = 0

    def parameters(self):
        self.looked += 1
        return iter(self.weights)


def test_a_step_that_made_the_weights_nan_stops_the_run_there_without_a_checkpoint(tmp_path, capsys):
    cb = HealthCallback(tmp_path)
    feed(cb, [1], logs={**FLAT, "grad_norm": 0.2, "frac_reward_zero_std": 0.5})
    logs = {**FLAT, "grad_norm": float("nan"), "frac_reward_zero_std": 0.5}
    control = TrainerControl(should_save=True)
    control = cb.on_log(None, state(2), control, logs=logs, model=_Weights(nan=True))
    assert logs["health/nonfinite_weights"] == 1.0  # written to metrics.jsonl with the step (MetricsCallback next)
    assert control.should_training_stop and not control.should_save
    assert isinstance(cb.stopped, Diverged) and cb.stopped.exit_code == EXIT_FAILED
    assert str(cb.stopped).startswith("stopped at step 2: grad_norm was nan at step 2 and the update left weights")
    assert capsys.readouterr().err.count("health: diverged at step 2: ") == 1
    assert read_status(tmp_path)["health"]["diverged"]["step"] == 2


def test_a_skipped_step_leaves_the_weights_finite_and_the_run_going():
    cb = HealthCallback("/nonexistent")
    logs = {**FLAT, "grad_norm": float("inf"), "frac_reward_zero_std": 0.5}
    control = cb.on_log(None, state(1), TrainerControl(), logs=logs, model=_Weights(nan=False))
    assert logs["health/nonfinite_weights"] == 0.0
    assert not control.should_training_stop and cb.stopped is None and cb.monitor.fired == {}


def test_the_weights_are_looked_at_only_when_the_gradient_norm_is_not_finite():
    cb, model = HealthCallback("/nonexistent"), _Weights(nan=True)
    logs = {**FLAT, "grad_norm": 0.4, "frac_reward_zero_std": 0.5}
    control = cb.on_log(None, state(1), TrainerControl(), logs=logs, model=model)
    assert model.looked == 0 and "health/nonfinite_weights" not in logs and not control.should_training_stop

