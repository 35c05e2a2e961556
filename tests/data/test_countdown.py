import json

import datasets
import pytest

from tinyzero_trl.config import DataConfig
from tinyzero_trl.data import check_data, load_task_data
from tinyzero_trl.data.countdown import (
    ASSISTANT_PREFILL,
    countdown_prompt,
    format_countdown,
    generate_countdown,
    is_heldout,
    load_countdown,
)
from tinyzero_trl.data.sources import DataError
from tinyzero_trl.rewards.tinyzero import tinyzero_countdown_score


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


# oat-zero's data (lkevinzc/CountDownZero): the prompt text in `input`, the task as JSON in `gt_answer`.
def oat_row(nums, target, tag=""):
    return {"input": f"User: Using the numbers {nums}, make {target}.{tag}\nAssistant: Let me solve this step by "
                     "step.\n<think>", "gt_answer": json.dumps({"target": target, "numbers": nums})}


TRAIN = [oat_row([3, 4, 6], 18 + i, f" train {i}") for i in range(6)]
TEST = [oat_row([2, 5, 9], 1 + i, f" test {i}") for i in range(4)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def oat_folder(tmp_path, train=True):
    if train:
        write_jsonl(tmp_path / "train.jsonl", TRAIN)
    write_jsonl(tmp_path / "test.jsonl", TEST)
    return str(tmp_path)


def test_oat_rows_give_nums_and_target_and_their_own_prompt(tmp_path):
    path = write_jsonl(tmp_path / "cdz.jsonl", TRAIN)
    splits = load_task_data(DataConfig(task="countdown", source="local", path=path, num_test=2, template="dataset"))
    assert splits["train"]["nums"] == [[3, 4, 6]] * 4 and splits["train"]["target"] == [18, 19, 20, 21]
    assert splits["test"]["target"] == [22, 23]  # a single file: the rows after the training ones
    assert splits["train"]["prompt"] == [r["input"] for r in TRAIN[:4]]  # fed raw, no chat template
    # The parsed columns are what the rewards read: TinyZero's (= oat-zero's) score of a right and a wrong answer.
    scores = tinyzero_countdown_score(["...</think> <answer>6 * 3</answer>", "<answer>3 * 4 + 6 + 0</answer>",
                                       "<answer>(4 - 3) * 6 * 3</answer>", "<answer>3 * 4 + 6</answer>"],
                                      nums=[splits["train"]["nums"][0]] * 4, target=[splits["train"]["target"][0]] * 4)
    assert scores == [0.1, 0.1, 0.1, 1.0]


def test_test_rows_come_from_the_test_split(tmp_path):
    folder = oat_folder(tmp_path)
    splits = load_countdown("local", path=folder, test_split="test", num_test=3)
    assert splits["test"]["target"] == [1, 2, 3]  # the first num_test rows of test.jsonl
    assert splits["train"]["target"] == [18, 19, 20, 21, 22, 23]  # all of train.jsonl: none held out
    assert len(load_countdown("local", path=folder, test_split="test")["test"]) == 4  # num_test unset: all
    assert len(load_countdown("local", path=folder, test_split="test", num_train=2, num_test=99)["train"]) == 2
    assert load_countdown("local", path=folder)["test"]["target"] == [1, 2, 3, 4]  # a folder's test file is used
    data = DataConfig(task="countdown", source="local", path=folder, test_split="test", num_test=2, template="dataset")
    splits = load_task_data(data)
    assert splits["test"]["prompt"] == [TEST[0]["input"], TEST[1]["input"]]
    check_data(data)


def test_the_hub_path_loads_the_named_test_split(monkeypatch):
    import tinyzero_trl.data.countdown as cd

    calls = []

    def fake_hub(name, *, split, revision=None, config=None):
        calls.append((name, split, revision))
        return datasets.Dataset.from_list({"train": TRAIN, "test": TEST}[split])

    monkeypatch.setattr(cd, "load_hub", fake_hub)
    data = DataConfig(task="countdown", source="hub", name="lkevinzc/CountDownZero", test_split="test", num_test=3,
                      template="dataset", revision="abc")
    splits = load_task_data(data)
    assert calls == [("lkevinzc/CountDownZero", "train", "abc"), ("lkevinzc/CountDownZero", "test", "abc")]
    assert splits["test"]["target"] == [1, 2, 3] and splits["test"]["nums"] == [[2, 5, 9]] * 3
    assert len(splits["train"]) == 6 and splits["train"]["prompt"][0] == TRAIN[0]["input"]
    calls.clear()
    tinyzero = load_countdown("hub", num_test=2)  # no test split: the rows after the training ones, as TinyZero
    assert calls == [("Jiayi-Pan/Countdown-Tasks-3to4", "train", None)]
    assert tinyzero["test"]["target"] == [22, 23]


@pytest.mark.parametrize(("gt_answer", "why"), [
    ("{not json", "not valid JSON"),
    ('[1, 2]', "not a JSON object"),
    ('{"target": 5}', "'numbers'"),
    ('{"numbers": [1, 4]}', "'target'"),
    ('{"target": "5", "numbers": [1, 4]}', "'target'"),
    ('{"target": 5, "numbers": [1, true]}', "'numbers'"),
    ('{"target": 5, "numbers": []}', "'numbers'"),
    ('{"target": 5.5, "numbers": [1, 4]}', "'target'"),
])
def test_a_malformed_gt_answer_names_the_row_and_the_field(tmp_path, gt_answer, why):
    rows = TRAIN[:3] + [{"input": "p", "gt_answer": gt_answer}] + TRAIN[3:]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=rf"bad.jsonl: row 3 \(counting from 0\), field gt_answer: .*{why}"):
        load_countdown("local", path=path)


def test_split_and_template_errors(tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", TRAIN)
    with pytest.raises(DataError, match="needs data.path to be a folder"):
        load_countdown("local", path=path, test_split="test")
    (tmp_path / "f").mkdir()
    with pytest.raises(DataError, match=r"no test split dev.jsonl .*found \['test.jsonl', 'train.jsonl'\]"):
        load_countdown("local", path=oat_folder(tmp_path / "f"), test_split="dev")
    with pytest.raises(DataError, match="generated tasks have no named splits"):
        load_countdown("generate", test_split="test")
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"nums": [1, 2], "target": 3}] * 4)
    with pytest.raises(DataError, match="column 'input'"):
        load_task_data(DataConfig(task="countdown", source="local", path=plain, template="dataset"))
    with pytest.raises(DataError, match="nums and target, or gt_answer"):
        load_countdown("local", path=write_jsonl(tmp_path / "neither.jsonl", [{"input": "x"}] * 4))


def test_an_evaluation_only_folder_loads_but_cannot_train(tmp_path):
    folder = oat_folder(tmp_path, train=False)
    data = DataConfig(task="countdown", source="local", path=folder, template="dataset")
    splits = load_task_data(data)
    assert len(splits["train"]) == 0 and splits["test"]["target"] == [1, 2, 3, 4]
    with pytest.raises(DataError, match="no training rows"):
        check_data(data)


# How a source drew its rows: Mini-R1 shuffles the whole split with seed 42 before it takes its 50,000 rows; oat drops
# prompts over 256 tokens after it took its rows (its first 1,000 test rows are fewer after the filter).
def test_shuffle_seed_draws_the_rows_a_seeded_shuffle_gives(tmp_path):
    rows = generate_countdown(40, seed=1)
    path = tmp_path / "tasks.jsonl"
    rows.to_json(str(path))
    splits = load_countdown("local", path=str(path), num_train=10, num_test=5, shuffle_seed=42)
    pool = rows.shuffle(seed=42)  # the source's own call: dataset.shuffle(seed=42).select(range(...))
    assert splits["train"]["target"] == pool["target"][:10] and splits["test"]["target"] == pool["target"][10:15]
    assert splits["train"]["target"] != rows["target"][:10]  # not the head of the file
    assert load_countdown("local", path=str(path), num_train=10, num_test=5)["train"]["target"] == rows["target"][:10]


def test_max_prompt_tokens_drops_long_prompts_after_the_rows_are_taken(tmp_path, tiny_tokenizer):
    long_row = oat_row([2, 5, 9], 99, " and more" * 60)
    folder = tmp_path / "cdz"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [TRAIN[0], long_row, TRAIN[1]])
    write_jsonl(folder / "test.jsonl", [TEST[0], long_row, TEST[1], TEST[2]])
    data = DataConfig(task="countdown", source="local", path=str(folder), test_split="test", num_test=3,
                      template="dataset", max_prompt_tokens=64)
    assert len(tiny_tokenizer(long_row["input"])["input_ids"]) > 64 >= len(tiny_tokenizer(TEST[2]["input"])["input_ids"])
    splits = load_task_data(data, tiny_tokenizer)
    assert splits["train"]["target"] == [18, 19]  # the long prompt is dropped, the rest keep their order
    assert splits["test"]["target"] == [1, 2]  # the first 3 rows, then the filter: 2 left (as oat's 1,000 -> fewer)
    unfiltered = load_task_data(data.model_copy(update={"max_prompt_tokens": None}), tiny_tokenizer)
    assert len(unfiltered["test"]) == 3 and len(unfiltered["train"]) == 3
    with pytest.raises(DataError, match="needs a tokenizer"):
        load_task_data(data)


def test_tasks_that_do_not_draw_with_them_refuse_the_draw_options(math_jsonl):
    for option in ({"shuffle_seed": 42}, {"max_prompt_tokens": 256}):
        with pytest.raises(DataError, match=f"data.{next(iter(option))} is not used by the math task"):
            check_data(DataConfig(task="math", source="local", path=math_jsonl, **option))
        with pytest.raises(DataError, match="multimodal task"):
            check_data(DataConfig(task="multimodal", source="generate", **option))
    with pytest.raises(DataError, match="shuffle_seed"):
        load_countdown("generate", num_train=4, num_test=2, shuffle_seed=1)
