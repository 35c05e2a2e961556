"""Reproduction folders as a user meets them: list, dry runs, and the provenance of every reference number."""

import json
import os
import subprocess
import sys

import pytest

from tinyzero_trl.reproductions import REQUIRED_FILES, Reproduction, list_reproductions, reproductions_root
from tinyzero_trl.verify import RULES

ALL = ["clevr-2b", "countdown-0.5b", "countdown-1.5b", "countdown-3b", "countdown-3b-instruct", "countdown-tiny",
       "math-1.5b", "math-tiny"]


def cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "tinyzero_trl.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_list_shows_them_all():
    assert list_reproductions() == ALL
    out = cli("list").stdout
    assert all(name in out for name in ALL)


@pytest.mark.parametrize("name", ALL)
def test_each_folder_has_its_four_files_and_an_executable_run_sh(name):
    folder = reproductions_root() / name
    for file in REQUIRED_FILES:
        assert (folder / file).is_file(), f"{name}/{file} missing"
    assert os.access(folder / "run.sh", os.X_OK)
    Reproduction.load(name)  # config.yaml has only known keys


@pytest.mark.parametrize("name", ALL)
def test_every_reference_check_has_a_known_rule_and_a_source(name):
    expected = json.loads((reproductions_root() / name / "expected.json").read_text())
    assert expected["checks"], f"{name}: no checks"
    for spec in expected["checks"]:
        assert spec["rule"] in RULES
        assert len(spec.get("source", "")) > 20, f"{name}: a check without a real source: {spec}"
        if spec["rule"] == "band":
            assert all(p["low"] <= p.get("value", p["low"]) <= p["high"] for p in spec["points"])


@pytest.mark.parametrize("name", ["countdown-3b", "math-1.5b", "clevr-2b"])
def test_dry_run_works_offline_and_names_the_accelerate_launch(name):
    proc = cli("reproduce", name, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "accelerate.commands.launch" in proc.stdout and "--config_file" in proc.stdout
    assert "GPU memory" in proc.stdout and "processes" in proc.stdout


@pytest.mark.parametrize("name", ["countdown-tiny", "math-tiny"])
def test_cpu_reproduction_plan_asks_for_no_gpu(name):
    tiny = cli("reproduce", name, "--dry-run")
    assert tiny.returncode == 0, tiny.stderr[-2000:]
    assert "host memory" in tiny.stdout and "GPUs needed" not in tiny.stdout
    assert "GPUs needed" in cli("reproduce", "countdown-3b", "--dry-run").stdout


def test_run_sh_dry_run_is_the_same_plan():
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run(["bash", str(reproductions_root() / "countdown-3b" / "run.sh"), "--dry-run"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "+countdown=grpo-qwen-2.5-3b-base" in proc.stdout


def test_unknown_reproduction_lists_the_known_ones():
    proc = cli("reproduce", "countdown-7b", "--dry-run")
    assert proc.returncode == 2 and "countdown-3b" in proc.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_reproduction_refuses_to_start_on_cpu(tmp_path):
    proc = cli("reproduce", "countdown-3b", "--output-dir", str(tmp_path / "r"))
    assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr
    assert not (tmp_path / "r" / "run.json").exists()
