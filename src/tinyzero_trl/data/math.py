"""Math competition data: MATH-500 for evaluation, a MATH training set, local files, and the prompt format."""

from __future__ import annotations

import datasets

from tinyzero_trl.data.sources import DataError, load_hub, load_local

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


def _with_solution(ds: datasets.Dataset, where: str) -> datasets.Dataset:
    """Ensure a ``solution`` column for the reward: MATH-500 style ``answer`` serves when there is none."""
    if "solution" in ds.column_names:
        return ds
    if "answer" in ds.column_names:
        return ds.add_column("solution", list(ds["answer"]))
    raise DataError(f"{where}: needs a 'solution' or an 'answer' column; found {ds.column_names}")


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
    elif source == "local":
        if not path:
            raise DataError("data.source=local needs data.path=FILE (a .jsonl with problem and solution/answer)")
        full = load_local(path, ["problem"])
        # The last rows are held out (at most half of a small file, as for countdown); a file too small to keep a
        # row for each side is an error, never a test set that is secretly the training set.
        if len(full) < 2:
            raise DataError(f"{path}: {len(full)} row(s); need at least 2 (one to train on, one held out)")
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
