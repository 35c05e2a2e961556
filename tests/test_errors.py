"""Bad input at every entry point: one line on stderr naming the field or path, a documented exit code, no
traceback, and no run directory left looking finished (issue 20). One row per mistake a user makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinyzero_trl.cli import main

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
GRPO = str(Path(__file__).parents[1] / "src" / "tinyzero_trl" / "grpo.py")
RECIPE = "+countdown=grpo-qwen-2.5-3b-base"


def _files(tmp: Path) -> dict[str, str]:
    """Data files and paths the cases point at."""
    (tmp / "empty.jsonl").write_text("")
    (tmp / "bad.jsonl").write_text('{"nums": [1, 2], "target": 3}\n{oops\n')
    (tmp / "cols.jsonl").write_text('{"numbers": [1, 2], "goal": 3}\n' * 4)
    (tmp / "tasks.txt").write_text("1 2 = 3\n")
    (tmp / "weights.bin").write_text("not a model")
    (tmp / "nomodel").mkdir()
    return {k: str(tmp / v) for k, v in {"EMPTY": "empty.jsonl", "BAD": "bad.jsonl", "COLS": "cols.jsonl",
                                         "TXT": "tasks.txt", "FILE": "weights.bin", "NOMODEL": "nomodel"}.items()}


# (id, extra arguments after the smoke recipe, exit code, what stderr must say)
TRAIN_CASES = [
    ("typo-key", ["training.learning_rat=1e-5"], 2, "did you mean 'learning_rate'"),
    ("typo-key-added", ["+training.learnig_rate=1e-5"], 2, "did you mean 'learning_rate'"),
    ("typo-section", ["trainig.max_steps=3"], 2, "unknown config section 'trainig' in 'trainig.max_steps'; did you "
                                                 "mean 'training'?"),
    ("unset-key", ["training.top_k=5"], 2, "not set by the recipe: add it with +training.top_k=5"),
    ("two-recipes", ["+math=grpo-deepseek-distill-1.5b-inst"], 2, "2 recipes given"),
    ("bad-override", ["training.learning_rate=="], 2, "cannot parse the override"),
    ("wrong-type", ["training.learning_rate=abc"], 2, "training.learning_rate='abc': expected a number"),
    ("float-steps", ["training.max_steps=3.5"], 2, "training.max_steps=3.5: expected an integer"),
    ("negative-steps", ["training.max_steps=-5"], 2, "training.max_steps=-5: must be a positive number"),
    ("zero-lr", ["training.learning_rate=0"], 2, "training.learning_rate=0: must be greater than 0"),
    ("one-generation", ["training.num_generations=1"], 2, "needs at least 2"),
    ("bool-weight", ["rewards.countdown_format=true"], 2, "rewards.countdown_format=True: a reward's weight"),
    ("unknown-reward", ["+rewards.countdown_equaton=1.0"], 2, "did you mean 'countdown_equation'"),
    ("zero-weights", ["rewards.tinyzero_countdown=0"], 2, "every reward weight is 0"),
    ("bad-dtype", ["model.dtype=float8"], 2, "model.dtype='float8' is not one of"),
    ("section-scalar", ["model=3"], 2, "model=3: must be a mapping"),
    ("bad-task", ["data.task=chess"], 2, "data.task='chess' is not one of"),
    ("bad-source", ["data.source=ftp"], 2, "data.source='ftp' is not one of"),
    ("local-no-path", ["data.source=local"], 2, "data.source=local needs data.path"),
    ("no-data-file", ["data.source=local", "data.path=/no/such.jsonl"], 2, "data path /no/such.jsonl does not exist"),
    ("empty-data", ["data.source=local", "data.path=EMPTY"], 2, "is empty"),
    ("malformed-data", ["data.source=local", "data.path=BAD"], 2, "line 2: not valid JSON"),
    ("missing-columns", ["data.source=local", "data.path=COLS"], 2, "each row needs nums and target"),
    ("unknown-extension", ["data.source=local", "data.path=TXT"], 2, "unknown extension '.txt'"),
    ("bad-template", ["data.template=nope"], 2, "data.template='nope' is not a countdown template"),
    ("zero-train", ["data.num_train=0"], 2, "data.num_train=0: must be at least 1"),
    ("seed-type", ["seed=abc"], 2, "seed='abc': expected an integer"),
    ("stop-without-signal", ["stop_without_signal=0"], 2, "stop_without_signal=0: must be a number of logged steps"),
    ("model-is-file", ["model.name_or_path=FILE"], 2, "is a file; give the model's directory"),
    ("model-missing", ["model.name_or_path=/no/such/model"], 2, "no such model directory"),
    ("model-no-config", ["model.name_or_path=NOMODEL"], 2, "the directory has no config.json"),
    ("hub-offline", ["model.name_or_path=Qwen/Qwen2.5-3B"], 2, "hub could not provide it"),
    ("unwritable-output", ["training.output_dir=/proc/no/such"], 2, "cannot write there"),
]
LAUNCH_CASES = [
    ("unknown-accelerate", ["--accelerate", "zero9"], 2, "packaged: ddp, fsdp, zero1, zero2, zero3"),
    ("fsdp-on-cpu", ["--accelerate", "fsdp", "--num-processes", "2"], 2, "FSDP needs GPUs"),
    ("nodes-no-ip", ["--num-machines", "2", "--num-processes", "2"], 2, "needs --main-process-ip"),
    ("vllm-gpus-colocate", ["--vllm-gpus", "1"], 2, "--vllm-gpus needs a recipe with"),
]


@pytest.fixture
def files(tmp_path):
    return _files(tmp_path)


def _fill(args, files):
    return [next((a.replace(k, v) for k, v in files.items() if a.endswith("=" + k)), a) for a in args]


def _assert_one_line(code, err, want_code, message, out_dir: Path | None = None):
    assert code == want_code, err
    assert message in err, err
    assert "Traceback" not in err, err
    ours = [line for line in err.splitlines() if line.startswith("tinyzero-trl ")]
    assert len(ours) == 1 and message in ours[0], err
    if out_dir is not None and (out_dir / "run.json").is_file():
        assert json.loads((out_dir / "run.json").read_text()).get("status") != "completed"
    if out_dir is not None and out_dir.is_dir():  # a refused run leaves no empty run directory behind
        assert any(out_dir.iterdir()), f"{out_dir} was left behind, empty"


def _train(args, capsys, *, dry_run=False):
    code = main(["train", *(["--dry-run"] if dry_run else []), *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case, extra, want, message", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train(tiny_model, tmp_path, files, capsys, case, extra, want, message):
    out = tmp_path / "run"
    args = [RECIPE, "+smoke=cpu", f"model.name_or_path={tiny_model}", "data.source=generate",
            f"training.output_dir={out}", *_fill(extra, files)]
    code, err = _train(args, capsys)
    _assert_one_line(code, err, want, message, out)


@pytest.mark.parametrize("case, extra, want, message", LAUNCH_CASES, ids=[c[0] for c in LAUNCH_CASES])
def test_train_launch_options(tiny_model, tmp_path, capsys, case, extra, want, message):
    args = [*extra, RECIPE, "+smoke=cpu", f"model.name_or_path={tiny_model}", f"training.output_dir={tmp_path}/r"]
    _assert_one_line(*_train(args, capsys), want, message)


@pytest.mark.parametrize("args, message", [
    (["+countdown=grpo-nope", "model.name_or_path=m", "training.output_dir=o"], "recipe +countdown=grpo-nope does "
                                                                                 "not exist"),
    (["countdown=grpo-qwen-2.5-3b-base"], "'countdown' is a recipe group: write +countdown="),
    (["+countdwn=grpo-qwen-2.5-3b-base"], "unknown config key 'countdwn'; did you mean 'countdown'"),
    ([RECIPE, "training.learning_rat=1e-5"], "did you mean 'learning_rate'"),
    ([RECIPE, "model.name_or_path=/no/such/model"], "no such model directory"),  # before: exit 0
])
def test_dry_run_gives_the_same_one_line(capsys, args, message):
    """Before: a 60-line Hydra traceback for the same unknown key."""
    _assert_one_line(*_train(args, capsys, dry_run=True), 2, message)


def test_a_live_run_in_the_directory_is_not_touched(tiny_model, tmp_path, capsys):
    from tinyzero_trl.run.status import this_process

    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"status": "running", **this_process()}))
    args = [RECIPE, "+smoke=cpu", f"model.name_or_path={tiny_model}", "data.source=generate",
            f"training.output_dir={out}"]
    _assert_one_line(*_train(args, capsys), 2, "another run is using this directory")
    _assert_one_line(*_train([*args, "fresh=true"], capsys), 2, "another run is using this directory")
    assert json.loads((out / "run.json").read_text())["status"] == "running"


def test_a_run_made_with_other_settings_is_not_resumed(tiny_model, tmp_path, capsys):
    import yaml

    from tinyzero_trl.config.compose import compose

    out = tmp_path / "run"
    args = [RECIPE, "+smoke=cpu", f"model.name_or_path={tiny_model}", "data.source=generate",
            f"training.output_dir={out}"]
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(compose([*args, "training.learning_rate=5e-6"])))
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    (out / "run.json").write_text('{"status": "interrupted"}')
    _assert_one_line(*_train(args, capsys), 2, "holds a run made with other settings (training.learning_rate: "
                                               "5e-06 -> 1e-06")


def test_corrupt_run_json_in_the_output_directory_is_named(tiny_model, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{half")
    args = [RECIPE, "+smoke=cpu", f"model.name_or_path={tiny_model}", "data.source=generate",
            f"training.output_dir={out}"]
    _assert_one_line(*_train(args, capsys), 2, "run.json: not valid JSON")


@pytest.mark.parametrize("args, message", [
    (["countdown-7b", "--dry-run"], "known: "),
    (["countdown-tiny", "--dry-run", "--output-dir", "x", "training.learning_rat=1"], "did you mean 'learning_rate'"),
    (["countdown-3b", "--output-dir", "OUT"], "no CUDA GPU is visible"),
    (["countdown-tiny", "--output-dir", "/proc/no/such"], "cannot write there"),
])
def test_reproduce(tmp_path, capsys, args, message):
    if __import__("torch").cuda.is_available() and "countdown-3b" in args:
        pytest.skip("a GPU is visible here")
    args = [a.replace("OUT", str(tmp_path / "r")) for a in args]
    code = main(["reproduce", *args])
    _assert_one_line(code, capsys.readouterr().err, 2, message, tmp_path / "r")


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "no such run directory; make the run with `tinyzero-trl reproduce countdown-tiny --output-dir"),
    (lambda d: d.mkdir(), "the directory is empty; make the run with `tinyzero-trl reproduce countdown-tiny"),
])
def test_verify_names_the_command_that_makes_the_run(tmp_path, capsys, make, message):
    """Before: "run `tinyzero-trl reproduce NAME` first" with a literal NAME, and an empty directory "missing"."""
    make(tmp_path / "r")
    code = main(["verify", "countdown-tiny", "--run-dir", str(tmp_path / "r")])
    _assert_one_line(code, capsys.readouterr().err, 2, message)


def test_reproduce_help_lists_the_reproductions_and_its_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert "clevr-2b, clevr-tiny, countdown-0.5b" in out and "math-1.5b, math-tiny" in out and "KEY=VALUE" in out and "the reproduction:" in out


def test_only_reproduce_help_lists_the_folders(monkeypatch, capsys):
    """Every command builds the whole parser; the folders are listed when ``reproduce --help`` prints, not for a
    ``verify`` or a ``reproduce`` that runs (it used to scan them on every call)."""
    from tinyzero_trl import cli
    from tinyzero_trl.reproduce import folders

    listed = []
    real = folders.list_reproductions
    monkeypatch.setattr(folders, "list_reproductions", lambda: listed.append(1) or real())
    cli.build_parser().parse_args(["reproduce", "countdown-tiny", "--dry-run"])
    assert listed == []
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["reproduce", "--help"])
    assert listed == [1] and "countdown-tiny" in capsys.readouterr().out


def test_an_unreachable_hub_is_named_at_once():
    """Before: five retries with backoff (~25 s) for a hub id the hub cannot be asked about."""
    code = ("import time\nfrom tinyzero_trl.model.loading import check_model\nstart = time.monotonic()\ntry:\n"
            "    check_model('org/no-such-model')\nexcept Exception as err:\n    print(err)\n"
            "print('SECONDS=%.1f' % (time.monotonic() - start))")
    env = {**ENV, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": "/nonexistent-hf-home"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert "the hub could not provide it: http://127.0.0.1:9 cannot be reached" in proc.stdout, proc.stdout
    assert float(proc.stdout.split("SECONDS=")[1]) < 10, proc.stdout


def test_reproduce_takes_overrides_anywhere(capsys):
    """Before: `reproduce NAME --output-dir X key=value` failed with argparse's "unrecognized arguments"."""
    assert main(["reproduce", "countdown-tiny", "--output-dir", "/tmp/never", "seed=3", "--dry-run"]) == 0
    assert "grpo.py --run /tmp/never" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["countdown", "--model_path", "FILE"], "is a file; give the model's directory"),
    (["countdown", "--model_path", "NOMODEL"], "has no config.json"),
    (["countdown", "--model_path", "TINY", "--temperature", "-1"], "temperature=-1.0"),
    (["countdown", "--model_path", "TINY", "--scorer", "nope"], "--scorer 'nope' is not a reward"),
    (["math", "--model_path", "TINY", "--data-source", "local", "--data-path", "EMPTY"], "is empty"),
    # the data layer names its keys; evaluate's line names the flag that sets each (a path's own text is kept)
    (["math", "--model_path", "TINY", "--data-source", "local"], "--data-source=local needs --data-path=FILE"),
    (["math", "--model_path", "TINY", "--template", "{x}"], "--template='{x}': a math template must say"),
    (["math", "--model_path", "TINY", "--data-source", "local", "--data-path", "/nonexistent/data.path.jsonl"],
     "data file /nonexistent/data.path.jsonl does not exist: set --data-path to a"),
])
def test_evaluate(tiny_model, files, capsys, args, message):
    files = {**files, "TINY": tiny_model}
    code = main(["evaluate", *[files.get(a, a) for a in args]])
    _assert_one_line(code, capsys.readouterr().err, 2, message)


# ---------------------------------------------------------------- the real entry points, as processes


def _run(cmd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def test_trls_own_batch_check_refuses_the_run_before_anything_is_launched(tiny_model, tmp_path):
    """trl's GRPOConfig checks the batch against the launch's processes in the launcher: one line, nothing started."""
    out = tmp_path / "run"
    proc = _run([sys.executable, "-m", "tinyzero_trl.cli", "train", RECIPE, "+smoke=cpu",
                 f"model.name_or_path={tiny_model}", "data.source=generate", f"training.output_dir={out}",
                 "training.per_device_train_batch_size=3"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tinyzero-trl train: training: generation_batch_size (3) must be divisible"), last
    assert "accelerate.commands.launch" not in proc.stdout and not (out / "config.yaml").exists()


def test_a_failure_inside_the_training_process_ends_with_its_line_not_the_launchers_traceback(tiny_model, tmp_path):
    """Only the training process reads every row of a data file: a bad row fails there, and `train` shows that
    process's line last, with its exit code, and hides accelerate's traceback."""
    out, data = tmp_path / "run", tmp_path / "tasks.jsonl"
    rows = [{"input": "x", "gt_answer": json.dumps({"target": 3, "numbers": [1, 2]})}] * 12
    rows[5] = {"input": "x", "gt_answer": "{not json"}
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = _run([sys.executable, "-m", "tinyzero_trl.cli", "train", RECIPE, "+smoke=cpu",
                 f"model.name_or_path={tiny_model}", "data.source=local", f"data.path={data}", "data.num_test=2",
                 f"training.output_dir={out}"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "CalledProcessError" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"tinyzero-trl train: {data}: row 5 (counting from 0), field gt_answer: not valid JSON"), last
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("form", ["accelerate", "module"])
def test_the_original_command_forms_give_our_line(tiny_model, tmp_path, form):
    args = [RECIPE, "+smoke=cpu", f"model.name_or_path={tiny_model}", "training.learning_rat=1e-5",
            f"training.output_dir={tmp_path}"]
    if form == "accelerate":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu",
               "--mixed_precision", "no", GRPO, *args]
    else:
        cmd = [sys.executable, "-m", "tinyzero_trl.grpo", *args]
    proc = _run(cmd)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    ours = [i for i, line in enumerate(lines) if line.startswith("tinyzero-trl train: ")]
    assert len(ours) == 1 and "did you mean 'learning_rate'" in lines[ours[0]], proc.stderr[-2000:]
    # accelerate's own launcher may print after ours (outside our control); nothing of ours comes before it
    assert not any("Traceback" in line for line in lines[:ours[0]])
    if form == "module":
        assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_help_and_argument_errors_load_no_ml_stack():
    code = ("import sys\nfrom tinyzero_trl.cli import main\nfor argv in (['--help'], ['train', '--num-processes', "
            "'x'], ['health', '--help']):\n    try:\n        main(argv)\n    except SystemExit as e:\n        print('EXIT=' + str(e.code))\n"
            "print('LOADED=' + str(sorted(m for m in ('torch', 'transformers', 'datasets', 'trl', 'hydra') if m in "
            "sys.modules)))")
    proc = _run([sys.executable, "-c", code])
    marks = [line for line in proc.stdout.splitlines() if line.startswith(("EXIT=", "LOADED="))]
    assert marks == ["EXIT=0", "EXIT=2", "EXIT=0", "LOADED=[]"], proc.stdout + proc.stderr
    assert "invalid int value: 'x'" in proc.stderr
