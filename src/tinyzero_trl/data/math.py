"""Math competition data: MATH-500 for evaluation, a MATH training set, local files, and the prompt format."""

from __future__ import annotations

import datasets

from tinyzero_trl.data.sources import (
    DataError,
    check_columns,
    load_hub,
    load_local,
    peek_local,
    refuse_draw_options,
    require_columns,
)
from tinyzero_trl.data.tasks import Task, register_task

MATH500 = "HuggingFaceH4/MATH-500"  # columns: problem, solution, answer, subject, level, unique_id
# The MATH training split in the form open-r1's early GRPO recipes used (problem, solution with \boxed{}).
MATH_TRAIN = "DigitalLearningGmbH/MATH-lighteval"

# open-r1's instruction for R1-Distill models: reason step by step, box the final answer.
BOXED_INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def format_math(example: dict, system_prompt: str | None, instruction: str | None, tokenizer=None,
                template: str | None = None) -> dict:
    """Format a MATH example as a conversational prompt (the original README's function).

    ``template``, when given, is the user turn with ``{problem}`` where the problem goes (an evaluation harness's
    own prompt, e.g. lighteval's MATH-500 query); ``instruction`` is appended after it. ``tokenizer`` is accepted
    for the original signature; the prompt stays a message list so that TRL applies the chat template itself.
    """
    problem = example["problem"]
    if template is not None:
        problem = template.replace("{problem}", problem)
    if instruction is not None:
        problem = problem + instruction
    prompt = []
    if system_prompt is not None:
        prompt.append({"role": "system", "content": system_prompt})
    prompt.append({"role": "user", "content": problem})
    return {"prompt": prompt}


def _require_gold(columns: list[str], where: str) -> None:
    if "solution" not in columns and "answer" not in columns:
        raise DataError(f"{where}: needs a 'solution' or an 'answer' column; found {columns}")


def _with_solution(ds: datasets.Dataset, where: str) -> datasets.Dataset:
    """Ensure a ``solution`` column for the reward: MATH-500 style ``answer`` serves when there is none."""
    _require_gold(ds.column_names, where)
    if "solution" in ds.column_names:
        return ds
    return ds.add_column("solution", list(ds["answer"]))


def _require_rows(rows: int, path) -> None:
    # The last rows are held out: a file too small to keep a row for each side is an error, never a test set
    # that is secretly the training set.
    if rows < 2:
        raise DataError(f"{path}: {rows} row(s); need at least 2 (one to train on, one held out)")


def load_math(
    source: str = "hub",
    *,
    path: str | None = None,
    name: str = MATH_TRAIN,
    test_name: str = MATH500,
    revision: str | None = None,
    num_train: int | None = None,
    num_test: int | None = None,
    generate: dict | None = None,
) -> datasets.DatasetDict:
    """Return ``{"train", "test"}``: a MATH training split and MATH-500 (hub), a local file split in two, or
    generated problems (``generate``: arguments of ``math_synthetic.generate_math``, the math-tiny miniature)."""
    if source == "hub":
        train = load_hub(name, split="train", revision=revision)
        test = load_hub(test_name, split="test")
        # Named here, not as a KeyError deep in the prompt formatting: a hub dataset whose columns are not MATH's.
        check_columns(train, ["problem"], where=f"{name} (split train)")
        check_columns(test, ["problem"], where=f"{test_name} (split test)")
    elif source == "local":
        if not path:
            raise DataError("data.source=local needs data.path=FILE (a .jsonl with problem and solution/answer)")
        full = load_local(path, ["problem"])
        # The last rows are held out, at most half of a small file, as for countdown.
        _require_rows(len(full), path)
        n_test = num_test if num_test is not None else max(1, len(full) // 10)
        n_test = min(n_test, len(full) // 2)
        train, test = full.select(range(len(full) - n_test)), full.select(range(len(full) - n_test, len(full)))
    elif source == "generate":
        from tinyzero_trl.data.math_synthetic import generate_math

        sizes = {k: v for k, v in {"num_train": num_train, "num_test": num_test}.items() if v is not None}
        train, test = generate_math(**sizes, **(generate or {}))
    else:
        raise DataError(f"data.source={source!r} is not available for math; use hub, local or generate")
    train, test = _with_solution(train, path or name), _with_solution(test, path or test_name)
    if num_train is not None:
        train = train.select(range(min(num_train, len(train))))
    if num_test is not None:
        test = test.select(range(min(num_test, len(test))))
    return datasets.DatasetDict(train=train, test=test)


# ---------------------------------------------------------------------------------------------------------
# The math task, as the registry knows it.

def _check_settings(data) -> None:
    refuse_draw_options(data, "math")
    if data.test_split is not None:
        raise DataError("data.test_split is not used by the math task: its test set is MATH-500 (hub), the last rows "
                        "of the local file, or generated; unset it")
    if data.template is not None and "{problem}" not in data.template:
        raise DataError(f"data.template={data.template!r}: a math template must say where the problem goes, with "
                        "{problem}")


def load_task(data, processing_class=None, *, seed: int = 0) -> datasets.DatasetDict:
    """``data``'s math splits with ``format_math``'s conversational prompts."""
    _check_settings(data)
    common = {k: v for k, v in {"name": data.name, "revision": data.revision}.items() if v is not None}
    splits = load_math(data.source, path=data.path, num_train=data.num_train, num_test=data.num_test,
                       generate=data.generate, **common)
    return splits.map(lambda ex: format_math(ex, data.system_prompt, data.instruction, processing_class,
                                             template=data.template))


def check_task(data) -> None:
    """The settings the math task does not take, and a local file's columns and rows, without loading it."""
    _check_settings(data)
    if data.source == "local":
        if not data.path:
            raise DataError("data.source=local needs data.path=FILE (a .jsonl with problem and solution/answer)")
        columns, rows = peek_local(data.path)
        require_columns(columns, rows, ["problem"], where=str(data.path))
        _require_gold(columns, str(data.path))
        _require_rows(rows, data.path)


TASK = register_task(Task(
    name="math", load=load_task, check=check_task,
    evaluation_data={"task": "math", "source": "hub", "instruction": BOXED_INSTRUCTION},
    scorer_rewards=("math_accuracy",),
))
