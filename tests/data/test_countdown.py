from fractions import Fraction
from itertools import permutations

import pytest

from tinyzero_trl.data.countdown import (
    ASSISTANT_PREFILL,
    countdown_prompt,
    format_countdown,
    generate_countdown,
    is_heldout,
    load_countdown,
)
from tinyzero_trl.data.sources import DataError


def solvable(nums, target, ops="+-*/") -> bool:
    """Brute force over every binary tree of every ordering, exact arithmetic (an independent check)."""
    def values(items):
        if len(items) == 1:
            yield items[0]
            return
        for i in range(1, len(items)):
            for a in values(items[:i]):
                for b in values(items[i:]):
                    if "+" in ops:
                        yield a + b
                    if "-" in ops:
                        yield a - b
                    if "*" in ops:
                        yield a * b
                    if "/" in ops and b != 0:
                        yield a / b

    return any(v == target for perm in permutations(Fraction(n) for n in nums) for v in values(list(perm)))


def test_generated_tasks_are_solvable_and_in_range():
    ds = generate_countdown(60, seed=3)
    assert ds.column_names == ["nums", "target"]
    assert {len(n) for n in ds["nums"]} == {3, 4}  # the default mixes 3- and 4-number tasks
    for nums, target in zip(ds["nums"], ds["target"]):
        assert all(1 <= n <= 99 for n in nums) and 10 <= target <= 100
        assert solvable(nums, target), (nums, target)


def test_same_seed_same_rows_other_seed_other_rows():
    assert generate_countdown(20, seed=1).to_dict() == generate_countdown(20, seed=1).to_dict()
    assert generate_countdown(20, seed=1).to_dict() != generate_countdown(20, seed=2).to_dict()


def test_generator_options_are_respected():
    ds = generate_countdown(30, seed=0, min_numbers=3, max_numbers=3, max_number=9, min_target=1, max_target=30)
    assert all(len(n) == 3 and max(n) <= 9 for n in ds["nums"])
    assert all(1 <= t <= 30 for t in ds["target"])


def test_impossible_ranges_raise_instead_of_looping():
    with pytest.raises(ValueError, match="widen"):
        generate_countdown(5, min_numbers=2, max_numbers=2, max_number=1, min_target=50, max_target=60)


def test_default_prompt_is_the_original_readme_prompt(tiny_tokenizer):
    out = format_countdown({"nums": [3, 7, 12], "target": 16}, tiny_tokenizer)
    assert out["target"] == 16 and out["nums"] == [3, 7, 12]
    assert "Using the numbers [3, 7, 12], create an equation that equals 16." in out["prompt"]
    assert "You are a helpful assistant. You first thinks" in out["prompt"]
    # continue_final_message: the prefilled assistant turn is left open, ending in <think>
    assert out["prompt"].endswith(ASSISTANT_PREFILL)


def test_tinyzero_base_template_is_plain_text():
    prompt = countdown_prompt([1, 2], 3, template="tinyzero-base")
    assert prompt.startswith("A conversation between User and Assistant.")
    assert "\nAssistant: Let me solve this step by step.\n<think>" in prompt


def test_unknown_template_names_the_choices():
    with pytest.raises(ValueError, match="tinyzero-base"):
        countdown_prompt([1, 2], 3, template="nope")


def test_generated_splits_never_test_on_a_training_task():
    # 3 numbers in 1..6 make only ~560 distinct tasks: a stream split would test on training tasks.
    opts = dict(seed=5, min_numbers=3, max_numbers=3, max_number=6, min_target=1, max_target=100)
    splits = load_countdown("generate", num_train=2000, num_test=100, generate=opts)
    assert len(splits["train"]) == 2000 and len(splits["test"]) == 100
    key = lambda n, t: (tuple(sorted(n)), t)  # noqa: E731
    train = {key(n, t) for n, t in zip(splits["train"]["nums"], splits["train"]["target"])}
    test = {key(n, t) for n, t in zip(splits["test"]["nums"], splits["test"]["target"])}
    assert train and test and not train & test
    assert all(is_heldout(n, t) for n, t in zip(splits["test"]["nums"], splits["test"]["target"]))
    again = load_countdown("generate", num_train=2000, num_test=100, generate=opts)
    assert again["test"].to_dict() == splits["test"].to_dict()


def test_held_out_split_too_small_is_a_clear_error():
    # Two 1s make only the tasks "1 1 = 1" and "1 1 = 2", and neither hashes into the held-out split.
    assert not is_heldout([1, 1], 1) and not is_heldout([1, 1], 2)
    opts = dict(min_numbers=2, max_numbers=2, min_number=1, max_number=1, min_target=1, max_target=2)
    with pytest.raises(DataError, match="held-out"):
        load_countdown("generate", num_train=10, num_test=50, generate=opts)


def test_ops_limit_the_generated_solution():
    ds = generate_countdown(40, seed=2, min_numbers=3, max_numbers=3, max_number=6, min_target=1, ops="+-*")
    assert all(solvable(n, t, ops="+-*") for n, t in zip(ds["nums"], ds["target"]))
    with pytest.raises(ValueError, match="ops"):
        generate_countdown(5, ops="+^")


def test_local_file_missing_column_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"nums": [1, 2]}\n{"nums": [3, 4]}\n')
    with pytest.raises(DataError, match="target"):
        load_countdown("local", path=str(path))


def test_local_file_missing_or_malformed(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_countdown("local", path=str(tmp_path / "none.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nums": [1, 2], "target": 3}\n{this is not json\n')
    with pytest.raises(DataError, match="could not be parsed"):
        load_countdown("local", path=str(bad))


def test_local_jsonl_is_split_train_then_test(tmp_path):
    rows = generate_countdown(12, seed=0)
    path = tmp_path / "tasks.jsonl"
    rows.to_json(str(path))
    splits = load_countdown("local", path=str(path), num_test=4)
    assert len(splits["train"]) == 8 and splits["test"]["nums"] == rows["nums"][8:]


def test_hub_offline_gives_a_clear_error():
    with pytest.raises(DataError, match="data.source=local"):
        load_countdown("hub", name="Jiayi-Pan/Countdown-Tasks-3to4")
