"""``reproduce`` with vLLM evaluation gives the engine's memory back before training starts.

On a GPU an engine left alive in the parent is an out-of-memory crash in the child's own colocated engine. On
CPU the same is measured as resident memory: the process tree of ``tinyzero-trl reproduce`` is sampled while it
runs, and at the moment the training launch appears, nothing of the base evaluation's engine may be left and
the parent must be as small as before that engine started.
"""

from __future__ import annotations

import json

import pytest

from tinyzero_trl.run.status import read_status

from .conftest import MB


@pytest.mark.slow
def test_reproduce_releases_the_vllm_engine_before_training(reproduced, tmp_path):
    proc, out, log, samples = reproduced
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
    assert at_train[3] - at_train[2] < 400 * MB  # beside it only the training launcher, just started
    # Checked by breaking it: with an engine left alive in the parent, the tree held 2,757 MB at training start
    # (against 711) and VLLM::EngineCore was still running.
