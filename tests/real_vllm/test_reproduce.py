"""``reproduce`` with vLLM evaluation gives the engine's memory back before training starts.

On a GPU an engine left alive in the parent is an out-of-memory crash in the child's own colocated engine. On
CPU the same is measured as resident memory: the process tree of ``tinyzero-trl reproduce`` is sampled while it
runs, and at the moment the training launch appears, nothing of the base evaluation's engine may be left and
the parent must be as small as before that engine started.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from tinyzero_trl.run_dir import read_status

from .conftest import env, kill_group

TIMEOUT = 600
MB = 1024 * 1024


def reproduction(root, model: str) -> str:
    folder = root / "vllm-tiny"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "claim": "test: evaluation with vLLM around colocated vLLM training",
        "recipe": "countdown=grpo-qwen-2.5-3b-base",
        "overrides": ["+smoke=cpu", "data.source=generate", f"model.name_or_path={model}", "training.use_vllm=true"],
        "cpu": True, "num_processes": 1, "hardware": "CPU",
        "evaluate": {"task": "countdown", "backend": "vllm", "max_new_tokens": 16, "limit": 8}}))
    for name in ("expected.json", "run.sh", "README.md"):
        (folder / name).write_text("{}" if name.endswith(".json") else "")
    return folder.name


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss(procs) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline()) + " " + p.name()
    except psutil.NoSuchProcess:
        return ""


@pytest.mark.slow
def test_reproduce_releases_the_vllm_engine_before_training(vllm_model, tmp_path):
    name = reproduction(tmp_path, vllm_model)
    out = tmp_path / "run"
    log = tmp_path / "reproduce.log"
    samples = []  # (seconds, phase, parent RSS, tree RSS, names of engine processes)
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "tinyzero_trl.cli", "reproduce", name, "--output-dir", str(out)],
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env(TINYZERO_REPRODUCTIONS=str(tmp_path)))
        parent, start = psutil.Process(proc.pid), time.monotonic()
        try:
            while proc.poll() is None and time.monotonic() - start < TIMEOUT:
                procs = tree(parent)
                lines = [cmdline(p) for p in procs[1:]]
                phase = ("train" if any("accelerate.commands.launch" in c for c in lines)
                         else "eval" if any("tinyzero_trl.generation" in c for c in lines) else "parent")
                engines = [c for c in lines if "tinyzero_trl.generation" in c or "EngineCore" in c]
                samples.append((time.monotonic() - start, phase, rss(procs[:1]), rss(procs), engines))
                time.sleep(0.25)
        finally:
            kill_group(proc)
    assert proc.returncode == 0, log.read_text(errors="replace")[-4000:]
    assert read_status(out)["status"] == "completed"
    summary = json.loads((out / "summary.json").read_text())
    assert "base_accuracy" in summary and "final_accuracy" in summary
    assert json.loads((out / "eval_base.json").read_text())["backend"] == "vllm"

    first_eval = next(i for i, s in enumerate(samples) if s[1] == "eval")
    first_train = next(i for i, s in enumerate(samples) if s[1] == "train")
    assert first_eval < first_train
    before = samples[first_eval][2]  # the parent as the engine's process starts
    engine_peak = max(s[3] for s in samples[first_eval:first_train])
    at_train = samples[first_train]
    figures = {"parent_rss_mb_before_engine": round(before / MB), "tree_rss_mb_peak_with_engine": round(engine_peak / MB),
               "parent_rss_mb_at_training_start": round(at_train[2] / MB),
               "tree_rss_mb_at_training_start": round(at_train[3] / MB)}
    print("reproduce memory (RSS):", figures)
    (tmp_path / "memory.json").write_text(json.dumps(figures))
    assert engine_peak - before > 300 * MB  # an engine really was measured
    assert not at_train[4], at_train[4]  # no evaluation or engine process left when training starts
    assert at_train[2] - before < 100 * MB  # the parent never held the engine
