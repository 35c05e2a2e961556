"""``reproduce NAME --rehearse``: only what a CPU cannot hold is replaced, a broken folder fails in one line before any
training step, and verify never passes a rehearsal."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tinyzero_trl import cli
from tinyzero_trl.config.compose import compose
from tinyzero_trl.reproduce.folders import Reproduction, reproductions_root
from tinyzero_trl.reproduce.rehearsal_plan import plan_rehearsal

GPU = ["clevr-2b", "countdown-0.5b", "countdown-1.5b", "countdown-3b", "countdown-3b-instruct", "math-1.5b"]
# Everything a rehearsal may change in a folder's resolved config; the rest (rewards, data source and name, the
# split rule, lr and schedule, batch shape, generations, loss, beta, vLLM mode ...) is the folder's own.
ALLOWED = {"model.name_or_path", "model.dtype", "model.revision", "training.bf16", "training.max_completion_length",
           "training.max_steps", "training.use_vllm", "stop_at_step", "data.num_train", "data.num_test",
           "data.revision"}


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("vllm", [False, True])
@pytest.mark.parametrize("name", GPU)
def test_a_rehearsal_changes_only_what_it_lists(name, vllm, tmp_path, cache):
    from tinyzero_trl.launch.plan import prepare
    from tinyzero_trl.tiny.rehearsal import build_rehearsal_model

    repro = Reproduction.load(name)
    plan = plan_rehearsal(repro, tmp_path / "run", assets=cache / "assets", vllm=vllm)
    real = flatten(compose(repro.hydra_overrides(tmp_path / "run", [])))
    rehearsal = flatten(compose(repro.hydra_overrides(tmp_path / "run", plan.overrides)))
    changed = {k for k in set(real) | set(rehearsal) if real.get(k) != rehearsal.get(k)}
    assert changed <= ALLOWED, changed - ALLOWED
    assert rehearsal["model.name_or_path"] == plan.model_dir and rehearsal["model.dtype"] == "float32"
    assert rehearsal["training.max_completion_length"] <= 32 and not rehearsal.get("training.bf16")
    assert {k for k in rehearsal if k.startswith("rewards.")} == {k for k in real if k.startswith("rewards.")}
    whats = {r.what for r in plan.replacements}
    assert {"model", "steps"} <= whats and all(r.why for r in plan.replacements)
    assert ("data" in whats) == (real["data.source"] == "hub")
    if real.get("training.use_vllm") and not vllm:
        assert "generation" in whats  # HF generate instead of vLLM, said so
    if vllm and real.get("training.vllm_mode") == "server":
        assert plan.vllm_server and "weights sent to the vLLM server" in whats
    # trl's own batch checks, for the processes the rehearsal starts (prepare wants the stand-in built)
    build_rehearsal_model(plan.model, plan.model_dir)
    prepare(repro.hydra_overrides(tmp_path / "run", plan.overrides), accelerate=repro.accelerate,
            num_processes=plan.num_processes, cpu=True)
    assert plan.evaluate["scorer" if "scorer" in repro.evaluate else "task"] == \
        repro.evaluate["scorer" if "scorer" in repro.evaluate else "task"]


def test_a_stop_at_step_keeps_its_share_of_the_schedule(tmp_path):
    plan = plan_rehearsal(Reproduction.load("math-1.5b"), tmp_path, assets=tmp_path, vllm=False)
    assert "stop_at_step=2" in plan.overrides and "training.max_steps=10" in plan.overrides  # 100 of 500
    assert (plan.real_last_step, plan.last_step) == (100, 2)
    inst = plan_rehearsal(Reproduction.load("countdown-3b-instruct"), tmp_path, assets=tmp_path, vllm=False)
    assert "training.max_steps=4" in inst.overrides and inst.real_last_step == 450  # 2 logged steps of 2


def test_a_rehearsal_lists_the_health_rules_it_cannot_judge(tmp_path):
    plan = plan_rehearsal(Reproduction.load("countdown-3b"), tmp_path, assets=tmp_path, vllm=False)
    unjudged = plan.record()["health_not_judged"]
    # random weights: no learning signal to lose; 2 logged steps: too few for a rule that needs 3
    assert {"no_signal", "entropy_collapse", "greedy_sampling"} <= set(unjudged) and all(unjudged.values())
    assert "vllm_out_of_step" not in unjudged  # a sync gap shows on random weights as well


def test_a_cpu_reproduction_is_not_rehearsed(tmp_path):
    from tinyzero_trl.errors import UserError

    with pytest.raises(UserError, match="countdown-tiny is a CPU reproduction"):
        plan_rehearsal(Reproduction.load("countdown-tiny"), tmp_path, assets=tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Broken folders: each fails with one line, exit 2, before anything is launched (no run directory is even claimed).

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # stand-in models and mirrors, built once for these tests


def broken(tmp_path, monkeypatch, cache, *, overrides=(), evaluate=None, check=None) -> str:
    root = tmp_path / "reproductions"
    shutil.copytree(reproductions_root() / "countdown-0.5b", root / "broken")
    config = yaml.safe_load((root / "broken" / "config.yaml").read_text())
    config["overrides"] = list(overrides)
    config["evaluate"] = {**config["evaluate"], **(evaluate or {})}
    (root / "broken" / "config.yaml").write_text(yaml.safe_dump(config))
    if check is not None:
        expected = json.loads((root / "broken" / "expected.json").read_text())
        expected["checks"].append(check)
        (root / "broken" / "expected.json").write_text(json.dumps(expected))
    monkeypatch.setenv("TINYZERO_REPRODUCTIONS", str(root))
    monkeypatch.setenv("TINYZERO_CACHE", str(cache))
    return "broken"


def rehearse_fails(name, tmp_path, capsys) -> str:
    out = tmp_path / "run"
    code = cli.main(["reproduce", name, "--rehearse", "--output-dir", str(out)])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("tinyzero-trl ")]
    assert code == 2, captured.out[-2000:] + captured.err[-2000:]
    assert len(lines) == 1 and captured.err.rstrip().endswith(lines[0]), captured.err[-2000:]
    assert "Traceback" not in captured.out + captured.err
    assert not (out / "config.yaml").exists() and not (out / "metrics.jsonl").exists()  # nothing claimed, no step
    launched = [line for line in captured.out.splitlines() if line.startswith("[tinyzero-trl] ")
                and "accelerate.commands.launch" in line]  # what launch.run prints when it starts the trainers
    assert not launched
    return lines[0]


def test_a_reward_missing_from_the_registry(tmp_path, monkeypatch, capsys, cache):
    name = broken(tmp_path, monkeypatch, cache, overrides=["+rewards.countdown_equations=1.0"])
    line = rehearse_fails(name, tmp_path, capsys)
    assert "unknown reward 'rewards.countdown_equations'; did you mean 'countdown_equation'" in line


def test_an_expected_metric_the_recipe_never_logs(tmp_path, monkeypatch, capsys, cache):
    check = {"metric": "rewards/mini_r1_equation/mean", "rule": "report", "window": 5,
             "source": "a check of a reward this recipe does not train with"}
    name = broken(tmp_path, monkeypatch, cache, check=check)
    line = rehearse_fails(name, tmp_path, capsys)
    assert "expected.json checks[3]: metric 'rewards/mini_r1_equation/mean' is never logged" in line
    assert "'tinyzero_countdown', 'countdown_equation', 'countdown_format'" in line


@pytest.mark.parametrize("scorer,says", [
    ("r1v_count_eval", "scorer 'r1v_count_eval' reads ['solution', 'answer'], which the countdown task's held-out "
                       "rows lack (they have ['target', 'nums'])"),
    ("countdown_format", "scorer 'countdown_format' judges no answer"),
    ("equation_score", "evaluate.scorer='equation_score' is not a registered reward"),
])
def test_an_evaluation_scorer_the_task_lacks(scorer, says, tmp_path, monkeypatch, capsys, cache):
    name = broken(tmp_path, monkeypatch, cache, evaluate={"scorer": scorer})
    assert says in rehearse_fails(name, tmp_path, capsys)


def test_a_dataset_column_renamed_on_the_hub(tmp_path, monkeypatch, capsys, cache):
    """As if Jiayi-Pan/Countdown-Tasks-3to4 renamed ``nums`` to ``numbers``: its mirror has the new layout."""
    import dataclasses

    from tinyzero_trl.tiny import hub_mirrors

    dataset = "Jiayi-Pan/Countdown-Tasks-3to4"
    layout = hub_mirrors.LAYOUTS[dataset]

    def rows(split):
        return [{"target": r["target"], "numbers": r["nums"]} for r in layout.rows(split)]

    renamed = dataclasses.replace(layout, rows=rows, features=(("target", "int64"), ("numbers", "sequence: int64")))
    monkeypatch.setitem(hub_mirrors.LAYOUTS, dataset, renamed)
    line = rehearse_fails(broken(tmp_path, monkeypatch, cache), tmp_path, capsys)
    assert f"{dataset}: each row needs nums and target, or gt_answer" in line and "found ['target', 'numbers']" in line
