"""evaluate: the scorer follows the run's rewards, and a pinned revision reaches the loader."""

from __future__ import annotations

import pytest
import yaml

from tinyzero_trl.errors import UserError
from tinyzero_trl.evaluation import evaluate as ev


def _run_dir(tmp_path, task, rewards):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"task": task, "source": "generate"},
                                                     "rewards": rewards}))
    (run / "config.json").write_text("{}")
    return run


def test_geometry_run_is_scored_with_the_reward_it_trained_on(tmp_path):
    run = _run_dir(tmp_path, "multimodal", {"math_accuracy": 1.0, "vl_format": 1.0})
    assert ev.scorer_name("multimodal", str(run)) == "math_accuracy"


def test_shaped_score_is_evaluated_on_exact_answers(tmp_path):
    run = _run_dir(tmp_path, "countdown", {"tinyzero_countdown": 1.0, "countdown_equation": 0.0})
    assert ev.scorer_name("countdown", str(run)) == "tinyzero_correct"  # TinyZero's own test of a right answer


def test_bare_model_uses_the_rewards_it_is_given_then_the_task_default(tmp_path):
    assert ev.scorer_name("multimodal", str(tmp_path), {"math_accuracy": 1.0}) == "math_accuracy"
    assert ev.scorer_name("multimodal", str(tmp_path)) == "count_accuracy"
    assert ev.scorer_name("math", str(tmp_path), scorer="think_format") == "think_format"
    with pytest.raises(UserError, match="--scorer 'nope'"):
        ev.scorer_name("math", str(tmp_path), scorer="nope")


def test_revision_and_remote_code_reach_the_loader(tmp_path, monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_check(name, key, **kwargs):
        seen["check"] = dict(kwargs, name=name)

    def fake_loader(name, images, **kwargs):
        seen["load"] = dict(kwargs, name=name)
        raise Stop

    monkeypatch.setattr("tinyzero_trl.model.loading.check_model", fake_check)
    monkeypatch.setattr("tinyzero_trl.model.loading.load_processing_class", fake_loader)
    with pytest.raises(Stop):
        ev.evaluate("countdown", "Qwen/Qwen2.5-3B", revision="abc123", trust_remote_code=True)
    want = {"name": "Qwen/Qwen2.5-3B", "revision": "abc123", "trust_remote_code": True}
    assert seen == {"check": want, "load": want}


def test_base_evaluation_of_a_reproduction_loads_the_pinned_revision(monkeypatch, tmp_path):
    """The protocol prepares one evaluation (the base model's pinned revision) and scores both models on it."""
    from tinyzero_trl.evaluation import evaluate as module
    from tinyzero_trl.evaluation.protocol import Protocol
    from tinyzero_trl.reproduce.folders import Reproduction

    prepared, scored = [], []

    class Held:
        task = "countdown"

        def score(self, path, *, output=None, load=None):
            scored.append((path, load))
            return {"accuracy": 0.5, "num_items": 2}

    monkeypatch.setattr(module, "evaluation", lambda task, path, **kw: prepared.append((path, kw)) or Held())
    resolved = {"model": {"name_or_path": "Qwen/Qwen2.5-3B", "revision": "r1", "trust_remote_code": False},
                "data": {"task": "countdown"}, "rewards": {"tinyzero_countdown": 1.0}}
    protocol = Protocol("countdown-3b", Reproduction.load("countdown-3b").evaluate, resolved)
    protocol.score("Qwen/Qwen2.5-3B", tmp_path / "e.json", base=True)
    protocol.score(str(tmp_path), tmp_path / "f.json", base=False)
    assert len(prepared) == 1  # rows, prompts and scorer are prepared once, for both models
    assert prepared[0][1]["revision"] == "r1" and prepared[0][1]["rewards"] == {"tinyzero_countdown": 1.0}
    assert scored == [("Qwen/Qwen2.5-3B", None), (str(tmp_path), {})]  # the trained model: no hub revision


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "model.bin").write_text("x") and p / "model.bin", "is a file"),
    (lambda p: p, "has no config.json"),
    (lambda p: p / "missing", "no such model directory"),
])
def test_bad_model_path_is_named(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        ev.evaluate("countdown", str(make(tmp_path)))


def _fake_generation(monkeypatch, answers):
    """HF generation replaced by fixed completions (the first of each item): the scoring path runs for real."""
    def fake(model, tokenizer, texts, sampling, **kwargs):
        assert len(texts) == len(answers)
        return [[a] * sampling.num_samples for a in answers]

    monkeypatch.setattr("tinyzero_trl.evaluation.generation.generate_hf", fake)


def test_accuracy_is_the_share_of_right_answers_on_a_benchmark_file(tiny_model, tmp_path, monkeypatch):
    """A benchmark folder's test split is the whole held-out set; known answers give an exact accuracy."""
    import json as _json

    bench = tmp_path / "bench"
    bench.mkdir()
    tasks = [([3, 5, 2], 13), ([1, 2, 3], 6), ([4, 4, 1], 17), ([6, 2, 5], 17)]
    (bench / "test.jsonl").write_text("".join(_json.dumps({"nums": n, "target": t}) + "\n" for n, t in tasks))
    _fake_generation(monkeypatch, [" 3*5-2</think> <answer>3*5-2</answer>", "<answer>1+2+3</answer>",
                                   "<answer>4*4+2</answer>", "no answer"])
    result = ev.evaluate("countdown", tiny_model, data_overrides={"source": "local", "path": str(bench),
                                                                  "test_split": "test", "template": "tiny"},
                         num_samples=2, temperature=1.0, progress=False)
    assert result["num_items"] == 4 and result["accuracy"] == 0.5 and result["pass_at_k"] == 0.5
    assert [it["scores"] for it in result["items"]] == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert result["scorer"] == "countdown_equation" and result["items"][2]["target"] == 17


def test_an_empty_held_out_set_is_an_error(tiny_model, tmp_path):
    (tmp_path / "test.jsonl").write_text('{"nums": [1, 2], "target": 3}\n')
    with pytest.raises(UserError, match="held-out set of countdown is empty"):
        ev.evaluate("countdown", tiny_model, data_overrides={"source": "local", "path": str(tmp_path),
                                                             "test_split": "test", "num_test": 0})


def test_the_data_root_fills_a_benchmark_path(tiny_model, tmp_path, monkeypatch):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "test.jsonl").write_text('{"nums": [1, 2], "target": 3}\n')
    monkeypatch.setenv("TINYZERO_DATA", str(tmp_path))
    _fake_generation(monkeypatch, ["<answer>1+2</answer>"])
    out = ev.evaluate("countdown", tiny_model, data_overrides={"source": "local", "path": "$TINYZERO_DATA/b",
                                                               "test_split": "test", "template": "tiny"},
                      progress=False)
    assert out["accuracy"] == 1.0


@pytest.mark.parametrize("arguments,says", [
    ({"limit": 0}, "limit=0 (need at least 1)"),
    ({"limit": -3}, "limit=-3 (need at least 1)"),  # a slice of nothing: an accuracy of 0.0 on no item, exit 0
    ({"batch_size": 0}, "batch_size=0 (need at least 1)"),  # was range()'s ValueError, deep in generation
])
def test_a_limit_or_batch_below_one_is_refused_before_the_data_loads(tiny_model, monkeypatch, arguments, says):
    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr("tinyzero_trl.model.loading.load_processing_class", no_loading)
    with pytest.raises(UserError, match="invalid evaluation settings: ") as err:
        ev.evaluate("countdown", tiny_model, data_overrides={"source": "generate"}, **arguments)
    assert says in str(err.value)


@pytest.mark.parametrize("where,says", [("a-file/eval.json", "--output=.*a-file: cannot write there"),
                                        (".", "a directory; give the JSON file to write")])
def test_an_output_it_cannot_write_is_refused_before_generating(tiny_model, tmp_path, monkeypatch, where, says):
    """--output in an unwritable place failed only when the result was written, after every generation."""
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr("tinyzero_trl.evaluation.generation.generate_hf", lambda *a, **k: pytest.fail("generated"))
    with pytest.raises(UserError, match=says):
        ev.evaluate("countdown", tiny_model, data_overrides={"source": "generate"}, output=str(tmp_path / where))
