"""Multimodal task data: the synthetic shapes generator, hub/local loading, and TRL's vision prompt format."""

from __future__ import annotations

import json
import random
from collections import deque

import datasets
import pytest

from tinyzero_trl.config import DataConfig
from tinyzero_trl.data import check_data, load_task_data
from tinyzero_trl.data.multimodal import (
    COLORS,
    COUNT_INSTRUCTION,
    generate_shapes,
    gold_answer,
    load_multimodal,
    multimodal_prompt,
    render_scene,
)
from tinyzero_trl.data.sources import DataError


def cfg(**kw) -> DataConfig:
    return DataConfig(**{"task": "multimodal", "source": "generate", "num_train": 6, "num_test": 4, **kw})


def components(image):
    """Connected regions of each object color, found from the pixels alone: [(color, fill ratio of bbox)]."""
    width, height = image.size
    px = image.load()
    by_rgb = {rgb: name for name, rgb in COLORS.items()}
    seen, found = set(), []
    for y in range(height):
        for x in range(width):
            if (x, y) in seen or px[x, y] not in by_rgb:
                continue
            rgb, queue, cells = px[x, y], deque([(x, y)]), []
            seen.add((x, y))
            while queue:
                cx, cy = queue.popleft()
                cells.append((cx, cy))
                for nx, ny in ((cx + 1, cy), (cx - 1, cy), (cx, cy + 1), (cx, cy - 1)):
                    if 0 <= nx < width and 0 <= ny < height and (nx, ny) not in seen and px[nx, ny] == rgb:
                        seen.add((nx, ny))
                        queue.append((nx, ny))
            xs, ys = [c[0] for c in cells], [c[1] for c in cells]
            box = (max(xs) - min(xs) + 1) * (max(ys) - min(ys) + 1)
            found.append((by_rgb[rgb], len(cells) / box))
    return found


def shape_of(fill: float) -> str:
    # A filled square covers its box, a disc about pi/4 of it, a triangle about half.
    return "square" if fill > 0.9 else "circle" if fill > 0.68 else "triangle"


def test_generator_is_deterministic_and_seeded():
    a, b, c = generate_shapes(8, seed=3), generate_shapes(8, seed=3), generate_shapes(8, seed=4)
    assert a["problem"] == b["problem"] and a["solution"] == b["solution"]
    assert [im.tobytes() for im in a["image"]] == [im.tobytes() for im in b["image"]]
    assert [im.tobytes() for im in a["image"]] != [im.tobytes() for im in c["image"]]


@pytest.mark.parametrize("size", [56, 112])
def test_every_answer_matches_what_the_image_shows(size):
    ds = generate_shapes(40, seed=11, size=size)
    kinds = set()
    for image, problem, solution, color, shape in zip(ds["image"], ds["problem"], ds["solution"], ds["color"],
                                                      ds["shape"]):
        assert image.size == (size, size) and image.mode == "RGB"
        seen = [(c, shape_of(fill)) for c, fill in components(image)]
        if problem == "How many objects are there?":
            expected = len(seen)
            kinds.add("all")
        elif problem.startswith("How many ") and problem.endswith(" objects are there?"):
            asked = problem[len("How many "):-len(" objects are there?")]
            assert asked == color
            expected = sum(c == asked for c, _ in seen)
            kinds.add("color")
        else:
            asked = problem[len("How many "):-len("s are there?")]
            assert asked == shape
            expected = sum(s == asked for _, s in seen)
            kinds.add("shape")
        assert solution == str(expected) and expected >= 1, problem
    assert kinds == {"all", "color", "shape"}


def test_render_scene_objects_never_touch():
    image = render_scene([(c, "square", cell) for cell, c in enumerate(["red", "blue"] * 4 + ["green"])])
    assert sorted(c for c, _ in components(image)) == sorted(["red", "blue"] * 4 + ["green"])


def test_generator_rejects_bad_arguments():
    with pytest.raises(DataError, match="unknown colors"):
        generate_shapes(2, colors=["purple"])
    with pytest.raises(DataError, match="max_objects"):
        generate_shapes(2, max_objects=10)


def test_generated_splits_have_trl_vision_columns():
    splits = load_task_data(cfg(generate={"size": 56, "max_objects": 4}), None, seed=5)
    assert len(splits["train"]) == 6 and len(splits["test"]) == 4
    row = splits["train"][0]
    assert {"prompt", "image", "solution", "problem"} <= set(splits["train"].column_names)
    assert isinstance(splits["train"].features["image"], datasets.Image)
    assert row["image"].size == (56, 56)
    (user,) = row["prompt"]
    assert user["role"] == "user"
    assert [p["type"] for p in user["content"]] == ["image", "text"]
    assert user["content"][1]["text"] == row["problem"] + COUNT_INSTRUCTION
    # The test split is not the start of the train stream, and the same seed gives the same data.
    assert [i.tobytes() for i in splits["train"]["image"][:4]] != [i.tobytes() for i in splits["test"]["image"]]
    again = load_task_data(cfg(generate={"size": 56, "max_objects": 4}), None, seed=5)
    assert again["test"]["solution"] == splits["test"]["solution"]


def test_prompt_is_what_trl_fills_with_the_image():
    from trl.data_utils import prepare_multimodal_messages

    row = load_multimodal(cfg(system_prompt="Be brief.", instruction=" Answer."), None, seed=0)["train"][0]
    filled = prepare_multimodal_messages(row["prompt"], images=[row["image"]])
    assert filled[0] == {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}
    image_part = filled[1]["content"][0]
    assert image_part["type"] == "image" and image_part["image"] is row["image"]
    assert filled[1]["content"][1]["text"] == row["problem"] + " Answer."


def test_multimodal_prompt_default_instruction_is_r1v():
    (user,) = multimodal_prompt("How many objects are there?")
    assert user["content"][1]["text"] == (
        "How many objects are there?  Output the thinking process in <think> </think> and final answer (number) "
        "in <answer> </answer> tags.")


@pytest.mark.parametrize("solution, gold", [("<answer> 3 </answer>", "3"), ("7", "7"), (4, "4"),
                                            ("<think>2?</think> <answer>2</answer><answer> 5 </answer>", "5"),
                                            ("  \\frac{1}{2} ", "\\frac{1}{2}")])
def test_gold_answer_accepts_r1v_and_bare_solutions(solution, gold):
    assert gold_answer(solution) == gold


def _png(path, color):
    from PIL import Image

    Image.new("RGB", (28, 28), color).save(path)


def test_local_jsonl_with_relative_image_paths(tmp_path):
    (tmp_path / "imgs").mkdir()
    rows = []
    for i in range(6):
        _png(tmp_path / "imgs" / f"{i}.png", (10 * i, 0, 0))
        rows.append({"image": f"imgs/{i}.png", "problem": f"How many? {i}", "solution": f"<answer> {i} </answer>",
                     "extra": i})
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load_task_data(cfg(source="local", path=str(path), num_train=None, num_test=2), None)
    assert len(splits["train"]) == 4 and len(splits["test"]) == 2
    assert splits["test"]["solution"] == ["4", "5"]
    assert splits["train"][1]["image"].getpixel((0, 0)) == (10, 0, 0)
    assert "extra" not in splits["train"].column_names


def test_local_missing_image_or_column_is_a_clear_error(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"image": "nope.png", "problem": "p", "solution": "1"}) + "\n")
    with pytest.raises(DataError, match="not found"):
        load_multimodal(cfg(source="local", path=str(path)), None)
    path.write_text(json.dumps({"image": "nope.png", "problem": "p"}) + "\n")
    with pytest.raises(DataError, match="solution"):
        load_multimodal(cfg(source="local", path=str(path)), None)


def test_hub_rows_in_r1v_form_are_mapped(monkeypatch):
    from PIL import Image

    import tinyzero_trl.data.multimodal as mm

    rows = {"image": [Image.new("RGB", (30, 20), "white") for _ in range(5)],
            "problem": [f"How many cubes? {i}" for i in range(5)],
            "solution": [f"<answer> {i} </answer>" for i in range(5)], "thinking": ["x"] * 5}
    calls = []

    def fake_hub(name, *, split, revision=None, config=None):
        calls.append((name, split, revision))
        return datasets.Dataset.from_dict(rows)

    monkeypatch.setattr(mm, "load_hub", fake_hub)
    splits = load_multimodal(cfg(source="hub", num_train=None, num_test=1, revision="abc"), None)
    assert calls == [("leonardPKU/clevr_cogen_a_train", "train", "abc")]
    assert splits["train"]["solution"] == ["0", "1", "2", "3"] and splits["test"]["solution"] == ["4"]
    assert set(splits["train"].column_names) == {"image", "problem", "solution", "prompt"}


def test_template_is_refused_and_pixel_limits_reach_the_processor():
    with pytest.raises(DataError, match="instruction"):
        load_multimodal(cfg(template="r1-chat"), None)

    class Processor:
        class image_processor:  # noqa: N801 - mimics the attribute of a real processor
            size = {"shortest_edge": 1, "longest_edge": 2}

    load_multimodal(cfg(min_pixels=3136, max_pixels=401408), Processor())
    assert Processor.image_processor.size == {"shortest_edge": 3136, "longest_edge": 401408}


def _image_rows(folder, n, start=0, with_input=True):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(start, start + n):
        _png(folder / "images" / f"{i}.png", (i, 0, 0))
        row = {"image": f"images/{i}.png", "problem": f"How many items? {i}", "solution": str(i)}
        if with_input:
            row["input"] = f"How many items? {i} First output the thinking process in <think> </think> tags."
        rows.append(row)
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_folder_of_splits_and_the_rows_own_question_text(tmp_path):
    _write(tmp_path / "train.jsonl", _image_rows(tmp_path, 5))
    _write(tmp_path / "test.jsonl", _image_rows(tmp_path, 3, start=10))
    data = cfg(source="local", path=str(tmp_path), num_train=None, num_test=None, template="dataset")
    splits = load_task_data(data, None)
    assert splits["train"]["solution"] == ["0", "1", "2", "3", "4"]  # nothing held out of train
    assert splits["test"]["solution"] == ["10", "11", "12"]  # the whole test file
    assert splits["test"][0]["image"].getpixel((0, 0)) == (10, 0, 0)
    text = splits["test"][0]["prompt"][0]["content"][1]["text"]
    assert text == "How many items? 10 First output the thinking process in <think> </think> tags."  # no instruction
    default = load_task_data(cfg(source="local", path=str(tmp_path), num_test=2, num_train=None), None)
    assert default["test"]["solution"] == ["10", "11"]
    assert default["test"][0]["prompt"][0]["content"][1]["text"] == "How many items? 10" + COUNT_INSTRUCTION
    check_data(data)


def test_an_evaluation_only_folder(tmp_path):
    _write(tmp_path / "test.jsonl", _image_rows(tmp_path, 4))
    data = cfg(source="local", path=str(tmp_path), num_train=None, num_test=None, template="dataset")
    splits = load_task_data(data, None)
    assert len(splits["train"]) == 0 and splits["test"]["solution"] == ["0", "1", "2", "3"]
    with pytest.raises(DataError, match="no training rows"):
        check_data(data)
    no_input = tmp_path / "other"
    no_input.mkdir()
    _write(no_input / "test.jsonl", _image_rows(no_input, 2, with_input=False))
    with pytest.raises(DataError, match="input"):
        load_task_data(cfg(source="local", path=str(no_input), template="dataset"), None)


def test_hub_test_split(monkeypatch):
    from PIL import Image

    import tinyzero_trl.data.multimodal as mm

    def rows(n, offset):
        return {"image": [Image.new("RGB", (8, 8), "white") for _ in range(n)],
                "problem": [f"q{i}" for i in range(offset, offset + n)],
                "solution": [f"<answer> {i} </answer>" for i in range(offset, offset + n)]}

    calls = []

    def fake_hub(name, *, split, revision=None, config=None):
        calls.append((name, split))
        return datasets.Dataset.from_dict(rows(4, 0) if split == "train" else rows(3, 100))

    monkeypatch.setattr(mm, "load_hub", fake_hub)
    splits = load_multimodal(cfg(source="hub", name="some/set", test_split="validation", num_test=2, num_train=None))
    assert calls == [("some/set", "train"), ("some/set", "validation")]
    assert splits["train"]["solution"] == ["0", "1", "2", "3"] and splits["test"]["solution"] == ["100", "101"]
    with pytest.raises(DataError, match="no named splits"):
        load_multimodal(cfg(test_split="test"))


def test_questions_pick_what_is_asked():
    ds = generate_shapes(30, seed=2, questions=["color"])
    assert all(p.startswith("How many ") and p.endswith(" objects are there?") and p != "How many objects are there?"
               for p in ds["problem"])
    with pytest.raises(DataError, match="questions"):
        generate_shapes(2, questions=["size"])


def test_train_and_held_out_scenes_never_overlap():
    from tinyzero_trl.data.multimodal import draw_scene, scene_is_heldout

    # The split is a property of the scene (order of its objects does not matter), not of the seed or question.
    scene = [("red", "circle", 0), ("blue", "square", 4)]
    assert scene_is_heldout(scene) == scene_is_heldout(list(reversed(scene)))
    opts = dict(grid=3, min_objects=1, max_objects=2, colors=["red", "blue"], shapes=["circle", "square"])
    rng = random.Random(0)
    train = {tuple(sorted(draw_scene(rng, side="train", **opts), key=lambda o: o[2])) for _ in range(400)}
    test = {tuple(sorted(draw_scene(rng, side="test", **opts), key=lambda o: o[2])) for _ in range(400)}
    assert train and test and not train & test  # a small space, so both sides are drawn many times over
    assert all(not scene_is_heldout(s) for s in train) and all(scene_is_heldout(s) for s in test)
    either = {scene_is_heldout(draw_scene(rng, **opts)) for _ in range(200)}
    assert either == {True, False}


def test_generate_seed_fixes_the_scenes_whatever_the_run_seed():
    opts = {"seed": 7, "size": 56, "max_objects": 4}
    a = load_task_data(cfg(generate=opts), None, seed=1)
    b = load_task_data(cfg(generate=opts), None, seed=2)
    assert a["test"]["solution"] == b["test"]["solution"] and a["train"]["problem"] == b["train"]["problem"]
    assert [i.tobytes() for i in a["test"]["image"]] == [i.tobytes() for i in b["test"]["image"]]


def test_a_scene_space_too_small_to_split_is_one_error_not_a_hang():
    """grid 1, one object, one colour: 3 possible scenes, none of them held out, so no test scene exists; before,
    the draw looped forever (a run hung before its first step)."""
    with pytest.raises(DataError, match=r"no held-out scene in 10,000 draws .* too small to split"):
        generate_shapes(2, grid=1, max_objects=1, colors=["red"], side="test")


@pytest.mark.parametrize("key", ["side", "seeds", "num_samples"])
def test_data_generate_names_a_key_it_cannot_take(key):
    """side and num_samples belong to the splits (a TypeError from the generator's call before), and a typo is
    named, with what is known."""
    with pytest.raises(DataError, match=rf"^data\.generate\.{key}: not a setting .* known: .*max_objects"):
        load_task_data(cfg(generate={key: 1}), None, seed=5)
