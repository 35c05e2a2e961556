"""What a training process prints while it trains: the progress bar, and one short line per logged step.

transformers' ``ProgressCallback`` writes each step's whole log dict under its bar (for GRPO some 25 metrics,
~900 characters a step, which bury the bar), and ``PrinterCallback`` prints the same dict when the bar is off
(``training.disable_tqdm``). ``use_step_lines`` swaps them for ``StepLines``: the same bar (or plain prints), and
one line a step with what tells a person whether the run learns: the step, the accuracy reward, the format
reward, the response length and the time the step took. Every metric still lands in ``metrics.jsonl``
(``MetricsCallback``); ``TINYZERO_VERBOSE=1`` (``train --verbose``, ``reproduce --verbose``) keeps transformers'
dicts as well.
"""

from __future__ import annotations

import os

from transformers import PrinterCallback, ProgressCallback

from tinyzero_trl.rewards import format_reward, training_accuracy

VERBOSE_ENV = "TINYZERO_VERBOSE"
# The end-of-training summary Trainer logs under the last step's number (MetricsCallback keeps it for run.json).
_SUMMARY_KEY = "train_runtime"


def verbose() -> bool:
    """Whether the full log dicts are wanted on the console (``$TINYZERO_VERBOSE``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def step_line(logs: dict, step: int, max_steps: int, accuracy: str | None, fmt: str | None) -> str:
    """One logged step as one line: ``step 5/20  accuracy 0.266  format 0.875  length 109  6.1 s``.

    An evaluation's logs (``eval_`` keys) read ``eval at step 10  ...``; the end-of-training summary reads
    ``trained to step 20 in 95 s``. A figure the logs lack is left out, never shown as 0.
    """
    if _SUMMARY_KEY in logs:
        return f"trained to step {step} in {float(logs[_SUMMARY_KEY]):.0f} s"
    prefix = "eval_" if any(k.startswith("eval_") for k in logs) else ""
    shown = [("accuracy", f"rewards/{accuracy}/mean", "{:.3f}"), ("format", f"rewards/{fmt}/mean", "{:.3f}"),
             ("length", "completions/mean_length", "{:.0f}")]
    parts = [f"{label} {pattern.format(float(logs[prefix + key]))}" for label, key, pattern in shown
             if prefix + key in logs]
    if prefix + "step_time" in logs:
        parts.append(f"{float(logs[prefix + 'step_time']):.1f} s")
    head = f"eval at step {step}" if prefix else f"step {step}/{max_steps}" if max_steps > 0 else f"step {step}"
    return "  ".join([head, *parts])


class StepLines(ProgressCallback):
    """transformers' progress bar with one ``step_line`` per log instead of the dict (``bar=False``: printed)."""

    def __init__(self, rewards: list[str], metrics_file: str, *, bar: bool = True):
        super().__init__()
        self.accuracy, self.format, self.bar, self.metrics_file = (training_accuracy(rewards),
                                                                   format_reward(rewards), bar, metrics_file)

    def _write(self, line: str) -> None:
        if self.bar and self.training_bar is not None:
            self.training_bar.write(line)
        else:
            print(line, flush=True)

    def on_train_begin(self, args, state, control, **kwargs):
        if self.bar:
            super().on_train_begin(args, state, control, **kwargs)
        if state.is_world_process_zero:
            names = [f"{label} = rewards/{name}/mean" for label, name in (("accuracy", self.accuracy),
                                                                          ("format", self.format)) if name]
            self._write(f"[tinyzero-trl] one line per step ({', '.join(names + ['length = mean completion tokens'])});"
                        f" every metric goes to {self.metrics_file} (--verbose prints them here too)")

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar:
            super().on_step_end(args, state, control, **kwargs)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.bar:
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self._write(step_line(logs, state.global_step, state.max_steps, self.accuracy, self.format))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar:
            super().on_train_end(args, state, control, **kwargs)


def attach(trainer, rewards: list[str], metrics_file: str) -> None:
    """What the console shows of a training run, set up on ``trainer`` at once: ``use_step_lines`` and
    ``quiet_tied_weights``."""
    use_step_lines(trainer, rewards, metrics_file)
    quiet_tied_weights(trainer)


def use_step_lines(trainer, rewards: list[str], metrics_file: str) -> None:
    """Replace transformers' dict-printing callbacks on ``trainer`` with ``StepLines``, unless ``verbose()``."""
    if verbose():
        return
    bar = not trainer.args.disable_tqdm
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(StepLines(rewards, metrics_file, bar=bar))


def quiet_tied_weights(trainer) -> None:
    """On resume, leave out of Trainer's "missing keys in the checkpoint" warning the keys that are tied weights.

    A model with tied embeddings (``tie_word_embeddings``: the tiny bases, Qwen2.5 0.5B-3B) has ``lm_head.weight``
    and the embedding as one tensor; safetensors stores it once, so ``checkpoint-N/model.safetensors`` has no
    ``lm_head.weight``, and Trainer warned ``There were missing keys in the checkpoint model loaded:
    ['lm_head.weight']`` on every resume: it reads like a broken checkpoint, yet loading the embedding restored
    both. A missing key whose tensor is shared with a key the checkpoint holds is harmless; any other is still
    reported.
    """
    original = trainer._issue_warnings_after_load

    def issue(load_result):
        model = trainer.model
        names_by_tensor: dict[int, set[str]] = {}
        for name, tensor in model.state_dict(keep_vars=True).items():
            names_by_tensor.setdefault(id(tensor), set()).add(name)
        missing = set(load_result.missing_keys)
        tied = {name for names in names_by_tensor.values() if names - missing for name in names & missing}
        original(load_result._replace(missing_keys=[k for k in load_result.missing_keys if k not in tied]))

    trainer._issue_warnings_after_load = issue
