"""Evaluate a saved model on a task's held-out set: greedy pass@1, or pass@k with sampling.

    tinyzero-trl evaluate countdown --model_path outputs/countdown/qwen-2.5-3b-base --output eval.json

When the model sits in (or under) a run directory, the run's own data settings and rewards are used: the
held-out set and prompt template are the ones it trained with, and the answers are scored by the accuracy
reward behind its training rewards (``rewards.accuracy_scorer``). A model outside a run directory takes its
task's evaluation defaults (``Task.evaluation_data``, ``Task.scorer_rewards``). vLLM is used when installed and
a GPU is present; both backends draw with the same ``generation.Sampling``.

``evaluation`` prepares an evaluation once (rows, prompts, scorer: a ``HeldOut``), and ``HeldOut.score`` runs it
on a model; ``evaluate`` is the two in a row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tinyzero_trl.config.schema import DataConfig
from tinyzero_trl.errors import UserError
from tinyzero_trl.evaluation.generation import Sampling, generate, prompt_texts
from tinyzero_trl.run.claim import CONFIG_FILE
from tinyzero_trl.run.files import read_yaml, write_json


def data_root() -> str:
    """Where prepared benchmarks live: ``$TINYZERO_DATA``, else ./data (``$TINYZERO_DATA`` in a data.path)."""
    return os.environ.get("TINYZERO_DATA", "data")


def saved_run_config(task: str, model_path: str) -> dict:
    """The ``config.yaml`` of the run ``model_path`` belongs to (the folder or its parent), if it trained ``task``."""
    for folder in (Path(model_path), Path(model_path).parent):
        cfg_file = folder / CONFIG_FILE
        if cfg_file.is_file():
            saved = read_yaml(cfg_file, error=UserError)
            return saved if (saved.get("data") or {}).get("task") == task else {}
    return {}


def run_data_config(task: str, model_path: str, overrides: dict | None = None) -> DataConfig:
    """The data settings for evaluation: the task's defaults, the run's own config.yaml if found beside the
    model, then the ``overrides`` given (None: not given, the command line's unset flags)."""
    from tinyzero_trl.data import get_task

    data = {"task": task, **get_task(task).evaluation_data}
    data.update(saved_run_config(task, model_path).get("data") or {})
    data.update({k: v for k, v in (overrides or {}).items() if v is not None or k not in data})
    return DataConfig(**data)


def scorer_name(task: str, model_path: str, rewards=None, scorer: str | None = None) -> str:
    """Which reward scores the answers: ``scorer`` if given, else the one behind ``rewards``, the run's, or the
    task's."""
    from tinyzero_trl.data import get_task
    from tinyzero_trl.rewards import REWARDS, accuracy_scorer

    if scorer is not None:
        if scorer not in REWARDS:
            raise UserError(f"--scorer {scorer!r} is not a reward; known: {', '.join(sorted(REWARDS))}")
        return scorer
    rewards = rewards or saved_run_config(task, model_path).get("rewards") or get_task(task).scorer_rewards
    return accuracy_scorer(rewards)


def check_scorer(score_with: str, columns: list[str], task: str) -> None:
    """Refuse a scorer that cannot judge ``task``'s held-out rows: one that reads no gold column (a format
    reward), or whose gold columns the rows lack. Rewards never raise on a missing column, they score nothing,
    so without this a wrong scorer would report an accuracy of 0 after hours of generation."""
    import inspect

    from tinyzero_trl.data import get_task
    from tinyzero_trl.rewards import REWARDS

    params = inspect.signature(REWARDS[score_with]).parameters.values()
    reads = [p.name for p in params if p.name != "completions" and p.kind is not p.VAR_KEYWORD]
    if reads and set(reads) & set(columns):
        return
    suggest = f"; {task}'s own: {', '.join(get_task(task).scorer_rewards) or 'none registered'}"
    if not reads:
        raise UserError(f"scorer {score_with!r} judges no answer (it reads no gold column of the rows: a scorer "
                        f"names the columns it reads as parameters, e.g. def r(completions, solution, **kwargs))"
                        f"{suggest}")
    raise UserError(f"scorer {score_with!r} reads {reads}, which the {task} task's held-out rows lack (they have "
                    f"{[c for c in columns if c not in ('prompt', 'image')]}){suggest}")


def check_sizes(limit: int | None, batch_size: int) -> None:
    """Refuse a ``limit`` or ``batch_size`` below 1 before any data is loaded: a limit of 0 (or -3, which slices
    nothing) would report an accuracy on no item at all, and a batch of 0 fails deep in generation."""
    problems = [f"{name}={value} (need at least 1)" for name, value in (("limit", limit), ("batch_size", batch_size))
                if value is not None and value < 1]
    if problems:
        raise UserError("invalid evaluation settings: " + "; ".join(problems))


@dataclass
class HeldOut:
    """A held-out evaluation prepared once, as plain data: the rows formatted for the model, their prompts (rendered
    texts; image+text prompts as they are), the scorer that judges them, the tokenizer or processor, and how
    completions are drawn. ``score`` runs it on a model, as often as asked: a reproduction scores its base and its
    trained model on the same one."""

    task: str
    rows: Any  # datasets.Dataset
    prompts: list
    images: list | None
    scorer: str
    processing_class: Any
    sampling: Sampling
    load: dict  # how the model it was prepared for loads: revision, trust_remote_code
    backend: str = "auto"
    batch_size: int = 16
    strip: bool = False
    progress: bool = True

    def score(self, model_path: str, *, output: str | None = None, load: dict | None = None) -> dict:
        """Generate for every row with ``model_path``, loaded with ``load`` (default: as the model the evaluation was
        prepared for), score the completions in one call of the scorer, and return (and write to ``output``)
        ``evaluate``'s result."""
        from tinyzero_trl.rewards import REWARDS

        load = self.load if load is None else load
        strip, revision = self.strip, load.get("revision")
        completions, backend = generate(model_path, self.processing_class, self.prompts, self.sampling,
                                        images=self.images, backend=self.backend, batch_size=self.batch_size,
                                        progress=self.progress, load=load)
        test, sampling = self.rows, self.sampling
        columns = [c for c in test.column_names if c not in ("prompt", "image")]  # images stay out of the JSON
        rows = [{c: test[i][c] for c in columns} for i in range(len(completions))]
        completions = [[s.strip() for s in samples] if strip else samples for samples in completions]
        # One call for every completion of every row: a reward scores each completion against its own row alone.
        flat = REWARDS[self.scorer]([s for samples in completions for s in samples],
                                    **{c: [row[c] for row, samples in zip(rows, completions) for _ in samples]
                                       for c in columns})
        items, total, at = [], 0.0, 0
        for row, samples in zip(rows, completions):
            scores = [s if s is not None else 0.0 for s in flat[at:at + len(samples)]]
            at += len(samples)
            total += sum(scores) / len(scores)
            items.append({**row, "completions": samples, "scores": scores})
        result = {
            "task": self.task, "model_path": str(model_path), "revision": revision, "backend": backend,
            "scorer": self.scorer, "num_items": len(items), "num_samples": sampling.num_samples,
            "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
            "max_new_tokens": sampling.max_new_tokens, "stop": list(sampling.stop),
            "stop_token_ids": list(sampling.stop_token_ids), "strip": strip, "seed": sampling.seed,
            "accuracy": total / len(items) if items else 0.0,
            "pass_at_k": sum(any(s >= 1.0 for s in it["scores"]) for it in items) / len(items) if items else 0.0,
            "items": items,
        }
        if output:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            write_json(Path(output), json.loads(json.dumps(result, default=str)))
        return result


def default_temperature(temperature: float | None, num_samples: int) -> float:
    """``temperature``, or when unset 0 (greedy) for one sample and 1.0 for several."""
    if temperature is None:
        return 0.0 if num_samples == 1 else 1.0
    return temperature


def evaluation(task: str, model_path: str, *, backend: Literal["auto", "vllm", "hf"] = "auto", limit: int | None = None,
               num_samples: int = 1, temperature: float | None = None, top_p: float = 1.0, top_k: int = 0,
               max_new_tokens: int = 1024, stop: list[str] | None = None, stop_token_ids: list[int] | None = None,
               strip: bool = False, batch_size: int = 16, data_overrides: dict | None = None, data: dict | None = None,
               rewards=None, scorer: str | None = None, revision: str | None = None, trust_remote_code: bool = False,
               seed: int = 0, progress: bool = True) -> HeldOut:
    """The ``HeldOut`` evaluation of ``task`` for ``model_path``: the held-out rows formatted for the model (its
    tokenizer or processor), their prompts rendered, the scorer checked against their columns, and the sampling
    settings. Loads no weights: what can fail before any generation fails here, but for the model itself, which
    the caller has checked (``evaluate``; a reproduction's launch, before its base evaluation). The arguments are
    ``evaluate``'s.
    """
    from tinyzero_trl.data import get_task
    from tinyzero_trl.model.loading import load_processing_class

    check_sizes(limit, batch_size)
    sampling = Sampling(num_samples=num_samples, temperature=default_temperature(temperature, num_samples),
                        top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens, seed=seed, stop=stop,
                        stop_token_ids=stop_token_ids)
    spec = get_task(task)
    load = {"revision": revision, "trust_remote_code": trust_remote_code}
    score_with = scorer_name(task, model_path, rewards, scorer)
    data_cfg = DataConfig(**data) if data is not None else run_data_config(task, model_path, data_overrides)
    if data_cfg.path is not None and "$TINYZERO_DATA" in data_cfg.path:
        data_cfg.path = data_cfg.path.replace("$TINYZERO_DATA", data_root())
    processing_class = load_processing_class(model_path, images=spec.images, **load)
    test = spec.load(data_cfg, processing_class, seed=seed)["test"]
    if len(test) == 0:
        raise UserError(f"the held-out set of {task} is empty (data.num_test, data.test_split): nothing to evaluate")
    check_scorer(score_with, test.column_names, task)
    if limit is not None:
        test = test.select(range(min(limit, len(test))))
    if spec.images:
        prompts, images = test["prompt"], test["image"]
    else:
        prompts, images = prompt_texts(test["prompt"], getattr(processing_class, "tokenizer", processing_class)), None
    return HeldOut(task=task, rows=test, prompts=prompts, images=images, scorer=score_with,
                   processing_class=processing_class, sampling=sampling, load=load, backend=backend,
                   batch_size=batch_size, strip=strip, progress=progress)


def evaluate(task: str, model_path: str, *, output: str | None = None, **arguments) -> dict:
    """Score ``model_path`` on ``task``'s test split; return (and optionally write) accuracy and per-item results.

    ``accuracy`` is the mean per-sample score (pass@1); with ``num_samples`` k > 1, ``pass_at_k`` is the share of
    items with at least one correct sample. ``temperature`` defaults to 0 (greedy) for one sample and 1.0 for
    several. ``data`` is the complete data settings to use as they are (a reproduction's evaluation protocol);
    else the run's own, then ``data_overrides`` where a value is given. ``rewards`` (a recipe's ``rewards``
    mapping) picks the scorer for a model outside a run directory; ``revision`` and ``trust_remote_code`` load a
    hub model exactly as the trainer does. ``stop`` strings and ``stop_token_ids`` end a completion on both
    backends alike (``model.stopping``); ``strip`` scores each completion without its surrounding whitespace, as
    oat-zero's evaluator does. The arguments are ``evaluation``'s: the model is checked, ``evaluation`` prepares,
    ``HeldOut.score`` runs.
    """
    from tinyzero_trl.model.loading import check_model
    from tinyzero_trl.run.files import check_writable

    check_model(model_path, key="--model_path", revision=arguments.get("revision"),
                trust_remote_code=bool(arguments.get("trust_remote_code")))
    if output:  # checked now, not once the generation it would record is done
        if Path(output).is_dir():
            raise UserError(f"--output {output}: a directory; give the JSON file to write, e.g. {output}/eval.json")
        check_writable(Path(output).parent, key="--output", hint="--output runs/eval.json")
    return evaluation(task, model_path, **arguments).score(model_path, output=output)
