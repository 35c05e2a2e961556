"""A reproduction's evaluation protocol: held-out accuracy of the base model before training and of the trained
model after it, under the folder's ``evaluate:`` settings, each recorded in ``summary.json`` as soon as it is
known (a run interrupted during training keeps its base accuracy; a rerun measures nothing twice). Each phase is
one call (``before``, ``after``) on one evaluation prepared once (``held_out``: rows, prompts, scorer), which the
final evaluation reuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyzero_trl.run.summary import read_summary, update_summary


@dataclass
class Protocol:
    """``settings`` is the folder's ``evaluate:`` block (``task`` and the arguments of ``evaluate``, with
    ``data`` for a benchmark of its own); ``resolved`` the run's resolved config; ``started`` when the user's
    command began (``wall_seconds`` counts everything they waited for, a tiny base's build included)."""

    reproduction: str
    settings: dict
    resolved: dict
    started: float = field(default_factory=time.time)
    _earlier: float | None = None  # wall seconds of earlier, interrupted attempts
    _held: Any = None  # the HeldOut evaluation, prepared once (``held_out``)
    _summary: dict | None = None  # summary.json as ``before`` read it and ``_record`` last wrote it

    def arguments(self) -> tuple[str, dict]:
        """The task and the ``evaluate`` arguments of this protocol: the folder's settings, its ``data`` over the
        run's (the protocol may evaluate on other data than training used: a benchmark, its own prompt), and the
        run's rewards (which name the scorer unless the settings do)."""
        args = dict(self.settings)
        task = args.pop("task")
        args["data"] = {**self.resolved["data"], **(args.pop("data", None) or {})}
        args["rewards"] = self.resolved["rewards"]
        return task, args

    def effective(self) -> dict:
        """Everything this protocol evaluates with, defaults included: ``evaluate``'s arguments with its defaults
        filled in, the temperature and the scorer resolved as ``evaluate`` resolves them, and what no argument
        sets: the special tokens the tokenizer adds to a rendered prompt, the repetition penalty both backends
        are given, and the libraries (with versions) behind the scorer's verdicts."""
        from tinyzero_trl.evaluation.evaluate import default_temperature, scorer_name
        from tinyzero_trl.evaluation.generation import ADD_SPECIAL_TOKENS, REPETITION_PENALTY
        from tinyzero_trl.rewards import scorer_libraries

        task, args = self.arguments()
        effective = {**evaluate_defaults(), **args}
        effective["temperature"] = default_temperature(effective["temperature"], effective["num_samples"])
        effective["scorer"] = scorer_name(task, "", args["rewards"], effective["scorer"])
        effective.pop("rewards")
        for key in ("stop", "stop_token_ids"):  # None and [] both stop on nothing but the model's end tokens
            effective[key] = list(effective[key] or [])
        return {**effective, "special_tokens": ADD_SPECIAL_TOKENS, "repetition_penalty": REPETITION_PENALTY,
                "scorer_version": scorer_libraries(effective["scorer"])}

    def before(self, run_dir: Path) -> None:
        """Evaluate the base model unless ``summary.json`` already has its accuracy."""
        summary = self._summary = read_summary(run_dir)
        self._earlier = float(summary.get("wall_seconds") or 0)
        if "base_accuracy" not in summary:
            accuracy = self.score(self.resolved["model"]["name_or_path"], run_dir / "eval_base.json", base=True)
            self._record(run_dir, base_accuracy=accuracy)

    def after(self, run_dir: Path) -> dict:
        """Evaluate the trained model unless ``summary.json`` already has its accuracy; return the summary (as
        ``before`` read or this protocol last wrote it)."""
        summary = read_summary(run_dir) if self._summary is None else self._summary
        if "final_accuracy" in summary:
            return summary
        accuracy = self.score(str(run_dir), run_dir / "eval_final.json", base=False)
        return self._record(run_dir, final_accuracy=accuracy)

    def _record(self, run_dir: Path, **figures) -> dict:
        """The one write of ``summary.json``: ``figures``, the reproduction and the wall time so far."""
        wall = round((self._earlier or 0.0) + time.time() - self.started, 1)
        self._summary = update_summary(run_dir, reproduction=self.reproduction, **figures, wall_seconds=wall)
        return self._summary

    def _arguments(self) -> tuple[str, dict, dict]:
        """``(task, data, arguments)`` of ``evaluate`` under this protocol, less the rewards."""
        task, args = self.arguments()
        data = args.pop("data")
        args.pop("rewards")
        return task, data, args

    def held_out(self):
        """The protocol's ``HeldOut`` evaluation, prepared on first use and kept: the held-out rows, their prompts
        and the scorer are the same for the base and the trained model (the trained model keeps its base's
        tokenizer), so the final evaluation reuses what the base evaluation loaded. It is prepared with the base
        model's tokenizer, loaded as the trainer loads it (the recipe's revision and ``trust_remote_code``). The
        launch's preflight has checked that model, so it is not checked again."""
        if self._held is None:
            from tinyzero_trl.evaluation.evaluate import evaluation

            task, data, args = self._arguments()
            model = self.resolved["model"]
            self._held = evaluation(task, model["name_or_path"], data=data, rewards=self.resolved["rewards"],
                                    revision=model.get("revision"),
                                    trust_remote_code=bool(model.get("trust_remote_code")), **args)
        return self._held

    def check(self) -> None:
        """Load the held-out rows and check the scorer against them, as ``score`` of the base model would, without
        loading weights or generating (a rehearsal runs it before anything else)."""
        self.held_out()

    def score(self, model_path: str, output: Path, *, base: bool) -> float:
        """Greedy (or the protocol's) held-out accuracy of ``model_path`` on the run's own task data.

        The base model is loaded with the recipe's revision and ``trust_remote_code``, exactly as the trainer
        loads it; answers are scored by the accuracy reward behind the recipe's rewards (or the protocol's
        ``scorer``).
        """
        held = self.held_out()
        result = held.score(model_path, output=str(output), load=None if base else {})  # the trained model: local
        print(f"[tinyzero-trl] {model_path}: {held.task} accuracy {result['accuracy']:.3f} on {result['num_items']} "
              "items", flush=True)
        return result["accuracy"]


# What a folder's ``evaluate:`` block may set beyond ``evaluation``'s keyword arguments (``task``), and which of those
# arguments the protocol sets itself from the run's config: the base model's revision and trust_remote_code (as the
# trainer loads it), the run's rewards (``scorer`` names another), and its data (``data`` merges over it).
_OWN_KEYS = {"task"}
_SET_BY_THE_RUN = {"rewards", "revision", "trust_remote_code", "data_overrides"}


def check_settings(settings: dict, where: str) -> None:
    """Refuse a folder's ``evaluate:`` block that ``evaluate`` would refuse, before anything runs (``reproduce``'s
    consistency check, so also its dry run): an unknown key (the closest ones named), a value of the wrong type
    (against ``evaluation``'s annotations, checked by pydantic), or one out of range (``Sampling``,
    ``check_sizes``). ``where`` prefixes the one-line error, e.g. the folder's config.yaml. Without this a typo in
    the block surfaced as a TypeError after the run directory was claimed."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    from tinyzero_trl.config.schema import closest
    from tinyzero_trl.errors import UserError
    from tinyzero_trl.evaluation.evaluate import check_sizes, default_temperature, evaluation
    from tinyzero_trl.evaluation.generation import Sampling

    hints = typing.get_type_hints(evaluation)
    valid = sorted(_OWN_KEYS | set(evaluate_defaults()) - _SET_BY_THE_RUN - {"output"})
    for key, value in settings.items():
        if key not in valid:
            raise UserError(f"{where}: evaluate.{key} is not an evaluate setting{closest(key, valid)} (valid: "
                            f"{', '.join(valid)})")
        try:
            TypeAdapter(hints[key]).validate_python(value, strict=True)
        except ValidationError:
            raise UserError(f"{where}: evaluate.{key}={value!r}: expected {_shown(hints[key])}") from None
    args = {**evaluate_defaults(), **settings}
    sampling = {k: args[k] for k in ("num_samples", "top_p", "top_k", "max_new_tokens", "seed", "stop",
                                     "stop_token_ids")}
    try:
        Sampling(temperature=default_temperature(args["temperature"], args["num_samples"]), **sampling)
        check_sizes(args["limit"], args["batch_size"])
    except UserError as err:
        raise UserError(f"{where}: evaluate: {err}") from None


def _shown(hint) -> str:
    """A type annotation as a user reads it: ``int``, ``int | None``, ``one of 'auto', 'vllm', 'hf'``."""
    import typing

    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def evaluate_defaults() -> dict:
    """``evaluate``'s keyword arguments and their defaults (what a protocol leaves unset runs with)."""
    import inspect

    from tinyzero_trl.evaluation.evaluate import evaluation

    return {**{name: p.default for name, p in inspect.signature(evaluation).parameters.items()
               if p.kind is p.KEYWORD_ONLY}, "output": None}
