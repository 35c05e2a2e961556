"""reproductions/clevr-2b/prepare_superclevr200.py --from-dir, offline on a tiny fake in R1-V's format, and the
folder it writes read back by the multimodal loader as R1-V's evaluation prompt."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

from tinyzero_trl.config import DataConfig
from tinyzero_trl.data import load_task_data
from tinyzero_trl.rewards import REWARDS

SCRIPT = Path(__file__).resolve().parents[2] / "reproductions" / "clevr-2b" / "prepare_superclevr200.py"
GOLDS = [4, 9, 10]


@pytest.fixture(scope="module")
def prep():
    spec = importlib.util.spec_from_file_location("prepare_superclevr200", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_r1v(folder: Path, *, as_zip: bool) -> None:
    """Three problems as R1-V's jsonl writes them, with generated PNGs as a folder or inside images.zip."""
    from PIL import Image

    folder.mkdir(parents=True)
    lines = []
    for k, gold in enumerate(GOLDS):
        name = f"superCLEVR_new_{25000 + k:06d}.png"
        lines.append(json.dumps({"image_path": f"./images/{name}",
                                 "question": "How many different items are there in the image?", "ground_truth": gold}))
        image = Image.new("RGB", (64, 48), (40 * k, 0, 0))
        if as_zip:
            path = folder / name
            image.save(path)
            with zipfile.ZipFile(folder / "images.zip", "a") as zf:
                zf.write(path, f"images/{name}")
            path.unlink()
        else:
            (folder / "images").mkdir(exist_ok=True)
            image.save(folder / "images" / name)
    (folder / "superclevr_test200_counting_problems.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("as_zip", [False, True])
def test_from_dir_writes_r1v_eval_as_a_local_dataset(prep, tmp_path, as_zip, capsys):
    fake_r1v(tmp_path / "r1v", as_zip=as_zip)
    out = tmp_path / "out"
    assert prep.main(["--out", str(out), "--from-dir", str(tmp_path / "r1v")]) == 0
    assert "is not R1-V's problem file" in capsys.readouterr().err  # a fake: said, and recorded
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 3 and manifest["problems_match_r1v"] is False
    assert manifest["images"]["images/superCLEVR_new_025001.png"]["width"] == 64
    rows = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert [r["solution"] for r in rows] == ["4", "9", "10"] and rows[0]["image"] == "images/superCLEVR_new_025000.png"

    # What `evaluate multimodal --data-source local --data-path OUT --template dataset` loads: all rows, R1-V's text.
    data = DataConfig(task="multimodal", source="local", path=str(out), template="dataset")
    test = load_task_data(data, None)["test"]
    assert len(test) == 3 and test["solution"] == ["4", "9", "10"]
    user = test[0]["prompt"][0]
    assert user["role"] == "user" and user["content"][0] == {"type": "image", "text": None}
    assert user["content"][1]["text"] == ("How many different items are there in the image? First output the thinking "
                                          "process in <think> </think> and final answer (number) in <answer> </answer> "
                                          "tags.")
    assert test[1]["image"].getpixel((0, 0)) == (40, 0, 0)
    outputs = ["<think>x</think><answer>4</answer>", "<answer> 8 </answer>", "<answer>\n10\n</answer>"]
    assert REWARDS["r1v_count_eval"](outputs, solution=test["solution"]) == [1.0, 0.0, 1.0]


def test_from_dir_errors_name_what_is_missing(prep, tmp_path):
    with pytest.raises(SystemExit, match="no superclevr_test200_counting_problems.jsonl"):
        prep.main(["--out", str(tmp_path / "o"), "--from-dir", str(tmp_path)])
    fake_r1v(tmp_path / "r1v", as_zip=False)
    (tmp_path / "r1v" / "images" / "superCLEVR_new_025002.png").unlink()
    with pytest.raises(SystemExit, match="1 of 3 images not found .*superCLEVR_new_025002.png"):
        prep.main(["--out", str(tmp_path / "o"), "--from-dir", str(tmp_path / "r1v")])
    (tmp_path / "r1v" / "superclevr_test200_counting_problems.jsonl").write_text('{"image_path": "a.png"}\n')
    with pytest.raises(SystemExit, match="line 1: expected image_path"):
        prep.main(["--out", str(tmp_path / "o"), "--from-dir", str(tmp_path / "r1v")])


def test_the_pinned_problem_file_is_r1vs(prep):
    assert prep.PROBLEMS_URL.startswith(f"https://raw.githubusercontent.com/Deep-Agent/R1-V/{prep.R1V_COMMIT}/")
    assert prep.QUESTION_TEMPLATE.format(Question="Q?") == (
        "Q? First output the thinking process in <think> </think> and final answer (number) in <answer> </answer> "
        "tags.")


def test_download_mode_fetches_checks_and_cleans_up(prep, tmp_path, monkeypatch):
    """The download path, offline: file:// URLs stand in for GitHub and the Super-CLEVR server."""
    fake_r1v(tmp_path / "r1v", as_zip=True)
    problems = tmp_path / "r1v" / "superclevr_test200_counting_problems.jsonl"
    monkeypatch.setattr(prep, "PROBLEMS_URL", problems.as_uri())
    monkeypatch.setattr(prep, "IMAGES_URL", (tmp_path / "r1v" / "images.zip").as_uri())
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="is not R1-V's"):  # a problem file that is not the pinned one is refused
        prep.main(["--out", str(out)])
    monkeypatch.setattr(prep, "PROBLEMS_SHA256", prep.sha256(problems))
    (out / ".download" / "superclevr_test200_counting_problems.jsonl").unlink()
    assert prep.main(["--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["problems_match_r1v"] is True and manifest["images_zip_sha256"] == prep.sha256(
        tmp_path / "r1v" / "images.zip")
    assert not (out / ".download").exists() and len(list((out / "images").iterdir())) == 3
