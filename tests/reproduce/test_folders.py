"""Reproduction folders as a user meets them: list, dry runs, and the provenance of every reference number."""

import json
import os
import subprocess
import sys

import pytest

from tinyzero_trl.config.compose import compose
from tinyzero_trl.reproduce.folders import (
    REQUIRED_FILES,
    Reproduction,
    list_reproductions,
    reproductions_root,
)
from tinyzero_trl.verification.verify import RULES

ALL = ["clevr-2b", "clevr-tiny", "countdown-0.5b", "countdown-1.5b", "countdown-3b", "countdown-3b-instruct", "countdown-tiny",
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
def test_dry_run_works_offline_and_plans_what_the_folder_pins(name):
    """The plan names the folder's model, accelerate config and process count, and fits the hardware it states."""
    repro = Reproduction.load(name)
    proc = cli("reproduce", name, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" : ", 1) for line in proc.stdout.splitlines() if " : " in line)
    launch = lines["launch      "]
    assert f"accelerate_configs/{repro.accelerate}.yaml" in launch
    assert f"--num_processes {repro.num_processes} " in launch and "grpo.py --run " in launch
    model = compose([f"+{repro.recipe}"])["model"]["name_or_path"]
    assert lines["model       "].startswith(model + " (~") and "B parameters" in lines["model       "]
    assert "); fits the " in lines["memory/GPU  "]
    assert lines["GPUs needed "].endswith("(enough)")


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


# ---------------------------------------------------------------- the published numbers, judged as verify would

GPU_ANCHORED = ["countdown-3b", "countdown-3b-instruct", "math-1.5b", "clevr-2b"]


def _curve(points: list[dict], step: int) -> float:
    """The reference curve at ``step``: linear between published points, flat beyond them."""
    xs = [(p["step"], p["value"]) for p in points]
    if step <= xs[0][0]:
        return xs[0][1]
    for (a, va), (b, vb) in zip(xs, xs[1:]):
        if a <= step <= b:
            return va + (vb - va) * (step - a) / (b - a)
    return xs[-1][1]


def _synthetic_run(name: str, out, shift: float = 0.0):
    """A run that follows the source's published numbers, each judged value lowered by ``shift`` band widths."""
    import yaml

    repro = Reproduction.load(name)
    expected = json.loads((repro.folder / "expected.json").read_text())
    last = max([p["step"] for c in expected["checks"] for p in c.get("points", [])] + [40])
    rows = [{"step": s, "loss": 0.01, "grad_norm": 0.5} for s in range(1, last + 1)]
    summary = {}
    for check in expected["checks"]:
        width = lambda c: (c.get("high", 1.0) - c.get("low", 0.0)) * shift  # noqa: E731
        if "summary" in check:
            summary[check["summary"]] = max(0.0, check.get("value", 0.5) - width(check))
        elif check["rule"] == "band":
            cut = width(check["points"][0])
            for row in rows:
                row[check["metric"]] = max(0.0, _curve(check["points"], row["step"]) - cut)
        elif check["rule"] == "rises":
            for row in rows:
                row[check["metric"]] = 0.1 + 0.4 * row["step"] / last
        else:
            for row in rows:
                row.setdefault(check["metric"], 0.5)
    out.mkdir(parents=True)
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "summary.json").write_text(json.dumps(summary))
    (out / "run.json").write_text(json.dumps({"status": "completed", "global_step": last}))
    (out / "config.yaml").write_text(yaml.safe_dump(repro.pinned(out)[0]))
    return out


@pytest.mark.parametrize("name", GPU_ANCHORED)
def test_a_run_that_follows_the_published_numbers_passes_and_one_a_band_lower_fails(name, tmp_path):
    good = cli("verify", name, "--run-dir", str(_synthetic_run(name, tmp_path / "good")))
    assert good.returncode == 0, good.stdout + good.stderr
    low = cli("verify", name, "--run-dir", str(_synthetic_run(name, tmp_path / "low", shift=1.0)))
    assert low.returncode == 1 and "FAIL" in low.stdout, low.stdout + low.stderr


@pytest.mark.parametrize("name", GPU_ANCHORED)
def test_every_gpu_reproduction_has_a_numeric_cited_check_beyond_a_direction(name):
    """No GPU reproduction is judged by `rises` alone; each judged number writes down its two error terms."""
    expected = json.loads((reproductions_root() / name / "expected.json").read_text())
    numeric = [c for c in expected["checks"] if c["rule"] in ("band", "between", "at_least", "final_mean")]
    assert numeric, f"{name} has no numeric check"
    for check in numeric:
        for holder in check.get("points", [check]):
            assert "reading_error" in holder and "seed_spread" in holder, (name, holder)
    assert expected.get("follows") and expected.get("deviations")


def test_read_folder_resolves_everything_a_run_needs_once(tmp_path):
    """One read gives the run's overrides (recipe, pins, run directory, the user's last), launch options and header
    as plain fields; a tiny base's path comes first, and a dry run (build_base=False) builds nothing."""
    from tinyzero_trl.reproduce.folders import read_folder

    folder = read_folder("math-tiny", output_dir=tmp_path / "run", extra=["seed=1"], build_base=False)
    repro = folder.repro
    assert folder.output_dir == tmp_path / "run"
    assert folder.overrides[0] == f"+{repro.recipe}" and folder.overrides[-1] == "seed=1"
    assert f"training.output_dir={tmp_path / 'run'}" in folder.overrides
    assert any(o.startswith("model.name_or_path=") for o in folder.overrides)
    assert folder.launch == repro.launch_options() and folder.header == repro.header()
