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
    with pytest.raises(DataError, match="bad.jsonl line 2: not valid JSON"):
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
