"""The hub mirrors: the real layout, read by the same load_hub as the hub, and nothing read silently elsewhere."""

from __future__ import annotations

import pytest

from tinyzero_trl.data.sources import MIRROR_ENV, load_hub
from tinyzero_trl.errors import DataError
from tinyzero_trl.tiny.hub_mirrors import LAYOUTS, build_mirror, superclevr_sources

# What the research read of each hub dataset (hub-layouts.md section 1): splits, columns in order, their types.
REAL = {
    "Jiayi-Pan/Countdown-Tasks-3to4": ({"train"}, {"target": "Value('int64')", "nums": "List(Value('int64'))"}),
    "lkevinzc/CountDownZero": ({"train", "test"}, {"input": "Value('string')", "gt_answer": "Value('string')"}),
    "knoveleng/open-rs": ({"train"}, {"problem": "Value('string')", "solution": "Value('string')",
                                      "answer": "Value('string')", "level": "Value('string')"}),
    "HuggingFaceH4/MATH-500": ({"test"}, {"problem": "Value('string')", "solution": "Value('string')",
                                          "answer": "Value('string')", "subject": "Value('string')",
                                          "level": "Value('int64')", "unique_id": "Value('string')"}),
    "leonardPKU/clevr_cogen_a_train": ({"train"}, {"image": "Image(mode=None, decode=True)",
                                                   "problem": "Value('string')", "solution": "Value('string')"}),
}


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    for name in LAYOUTS:
        build_mirror(root, name)
    return root


def test_every_mirrored_dataset_is_one_the_research_read():
    assert set(LAYOUTS) == set(REAL)


@pytest.mark.parametrize("name", sorted(REAL))
def test_load_hub_reads_the_mirror_in_the_real_layout(name, mirrors, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(mirrors))
    splits, features = REAL[name]
    for split in splits:
        ds = load_hub(name, split=split)
        assert ds.column_names == list(features), f"{name} {split}: columns or their order"
        assert {k: repr(v) for k, v in ds.features.items()} == features
        assert 10 <= len(ds) <= 64  # a few dozen rows of ours
    with pytest.raises(DataError, match="Unknown split"):
        load_hub(name, split="validation")


def test_the_repository_folders_hold_only_hub_files(mirrors):
    files = {str(p.relative_to(mirrors / name)) for name in LAYOUTS for p in (mirrors / name).rglob("*") if p.is_file()}
    assert files == {"README.md", ".gitattributes", "test.jsonl", "data/train-00000-of-00001.parquet",
                     "data/test-00000-of-00001.parquet"}


def test_rows_are_usable_task_rows(mirrors, monkeypatch):
    """The gold answers the rewards read: oat's JSON, the boxed solution, the count inside <answer>."""
    import json

    monkeypatch.setenv(MIRROR_ENV, str(mirrors))
    gt = json.loads(load_hub("lkevinzc/CountDownZero", split="test")[0]["gt_answer"])
    assert isinstance(gt["target"], int) and all(isinstance(n, int) for n in gt["numbers"])
    assert "\\boxed{" in load_hub("knoveleng/open-rs", split="train")[0]["solution"]
    row = load_hub("leonardPKU/clevr_cogen_a_train", split="train")[0]
    assert row["image"].size == (112, 112) and row["solution"].startswith("<answer> ")


def test_a_mirror_root_without_the_dataset_is_an_error_not_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    with pytest.raises(DataError, match=f"{MIRROR_ENV}=.* has no mirror of dataset 'knoveleng/open-rs'"):
        load_hub("knoveleng/open-rs", split="train")


def test_a_pinned_revision_is_refused_by_a_mirror(mirrors, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(mirrors))
    with pytest.raises(DataError, match="revision 'abc123': the mirror .* one version only"):
        load_hub("knoveleng/open-rs", split="train", revision="abc123")


def test_a_rebuild_with_other_rows_replaces_the_mirror(tmp_path, monkeypatch):
    import dataclasses

    name = "knoveleng/open-rs"
    build_mirror(tmp_path, name)
    layout = LAYOUTS[name]
    monkeypatch.setitem(LAYOUTS, name, dataclasses.replace(layout, rows=lambda split: layout.rows(split)[:10]))
    build_mirror(tmp_path, name)
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert len(load_hub(name, split="train")) == 10


def test_superclevr_sources_are_what_the_folders_script_reads(tmp_path):
    import json

    folder = superclevr_sources(tmp_path, count=3)
    rows = [json.loads(line) for line in (folder / "superclevr_test200_counting_problems.jsonl").read_text().splitlines()]
    assert [r["image_path"] for r in rows] == [f"./images/superCLEVR_new_{25000 + k:06d}.png" for k in range(3)]
    assert all((folder / r["image_path"]).is_file() and 3 <= r["ground_truth"] <= 10 for r in rows)


def test_a_math_dataset_without_a_problem_column_is_named(tmp_path, monkeypatch):
    """load_math names the dataset and the column, not a KeyError from inside its prompt map."""
    import dataclasses

    from tinyzero_trl.data.math import load_math

    name = "knoveleng/open-rs"
    layout = LAYOUTS[name]
    renamed = dataclasses.replace(
        layout, features=(("question", "string"), *layout.features[1:]),
        rows=lambda split: [{"question": r["problem"], **{k: v for k, v in r.items() if k != "problem"}}
                            for r in layout.rows(split)])
    monkeypatch.setitem(LAYOUTS, name, renamed)
    for dataset in (name, "HuggingFaceH4/MATH-500"):
        build_mirror(tmp_path, dataset)
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    with pytest.raises(DataError, match=r"knoveleng/open-rs \(split train\): missing column\(s\) \['problem'\]"):
        load_math("hub", name=name)


def test_a_stamp_cut_short_by_a_crash_means_a_rebuild(tmp_path, monkeypatch):
    """The stamp is written last; one left truncated (a full disk, a kill mid-write) is not trusted, not a crash."""
    name = "knoveleng/open-rs"
    folder = build_mirror(tmp_path, name)
    stamp = folder.with_name(folder.name + ".mirror.json")
    stamp.write_text('{"dataset": "knoveleng/op')
    assert build_mirror(tmp_path, name) == folder
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert len(load_hub(name, split="train")) > 0 and stamp.read_text().endswith("}\n")
