import pytest

from tinyzero_trl.data.math import BOXED_INSTRUCTION, format_math, load_math
from tinyzero_trl.data.sources import DataError


def test_format_math_matches_the_original_readme():
    out = format_math({"problem": "1+1?"}, "sys", BOXED_INSTRUCTION, None)
    assert out == {"prompt": [{"role": "system", "content": "sys"},
                              {"role": "user", "content": "1+1?" + BOXED_INSTRUCTION}]}
    assert format_math({"problem": "x"}, None, None, None) == {"prompt": [{"role": "user", "content": "x"}]}


def test_format_math_does_not_mutate_the_example():
    example = {"problem": "x"}
    format_math(example, None, "!", None)
    assert example == {"problem": "x"}


def test_local_math_file_splits_and_keeps_solution(math_jsonl):
    splits = load_math("local", path=math_jsonl, num_test=2)
    assert len(splits["train"]) == 6 and len(splits["test"]) == 2
    assert "\\boxed" in splits["train"][0]["solution"]


def test_answer_column_serves_as_solution(tmp_path):
    path = tmp_path / "m500.jsonl"
    path.write_text('{"problem": "p1", "answer": "\\\\frac{1}{2}"}\n{"problem": "p2", "answer": "3"}\n')
    splits = load_math("local", path=str(path), num_test=1)
    assert splits["test"][0]["solution"] == "3"


def test_missing_solution_and_answer_is_named(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"problem": "p1"}\n{"problem": "p2"}\n')
    with pytest.raises(DataError, match="'solution' or an 'answer'"):
        load_math("local", path=str(path))


def test_a_one_row_file_is_refused_not_evaluated_on_its_training_row(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text('{"problem": "p1", "answer": "3"}\n')
    with pytest.raises(DataError, match="need at least 2"):
        load_math("local", path=str(path))


def test_train_and_test_rows_never_overlap_in_a_small_file(tmp_path):
    path = tmp_path / "three.jsonl"
    path.write_text("".join(f'{{"problem": "p{i}", "answer": "{i}"}}\n' for i in range(3)))
    splits = load_math("local", path=str(path), num_test=8)  # asks for more than the file can spare
    train, test = set(splits["train"]["problem"]), set(splits["test"]["problem"])
    assert train and test and not train & test


def test_a_harness_template_places_the_problem():
    template = "Solve the following math problem efficiently and clearly.\n\n{problem}"
    out = format_math({"problem": "What is $\\frac{1}{2}$?"}, None, None, None, template=template)
    assert out["prompt"] == [{"role": "user", "content": template.replace("{problem}", "What is $\\frac{1}{2}$?")}]
