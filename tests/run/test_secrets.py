"""A token given on the command line reaches the training processes and no file a run writes (issue 32: it was in
config.yaml, the file people attach to bug reports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinyzero_trl.run.secrets import SECRETS_ENV, redact_argv, restore, secrets_env, split

CLI_TOKEN, ENV_TOKEN, WANDB_KEY = "hf_PlantedOnTheCommandLine42", "hf_PlantedInTheEnvironment42", "wandbPlanted42"


def test_tokens_are_split_from_the_config_and_put_back_from_the_environment():
    resolved = {"training": {"hub_token": CLI_TOKEN, "max_steps": 2,
                             "model_init_kwargs": {"token": "hf_other", "dtype": "auto"}}, "seed": 1}
    redacted, tokens = split(resolved)
    assert redacted["training"]["hub_token"] == "<HUB_TOKEN>" and redacted["training"]["model_init_kwargs"] == {
        "token": "<TOKEN>", "dtype": "auto"}
    assert tokens == {"training.hub_token": CLI_TOKEN, "training.model_init_kwargs.token": "hf_other"}
    assert resolved["training"]["hub_token"] == CLI_TOKEN  # the caller's mapping is left as it was
    assert restore(redacted, secrets_env(resolved)) == resolved
    assert restore(redacted, {})["training"]["hub_token"] is None  # never the placeholder as a token
    assert secrets_env({"training": {"hub_token": None}}) == {}


def test_a_command_line_is_written_without_its_tokens():
    argv = ["grpo.py", "+countdown=x", f"+training.hub_token={CLI_TOKEN}", "training.max_steps=2"]
    assert redact_argv(argv) == ["grpo.py", "+countdown=x", "+training.hub_token=<HUB_TOKEN>", "training.max_steps=2"]


def test_the_launch_hands_the_token_to_the_ranks_and_prints_it_nowhere(tiny_model, tmp_path, monkeypatch, capsys):
    """The launcher's environment for the ranks carries the token; its printed launch line and config.yaml do not;
    a rank reading config.yaml back with that environment trains with the real token."""
    from tinyzero_trl.launch import run as launch_run
    from tinyzero_trl.launch.plan import prepare
    from tinyzero_trl.train.entry import load_run

    seen = {}
    monkeypatch.setattr(launch_run.supervise, "run", lambda cmd, env, debug=False, **_: (seen.update(env), (1, None))[1])
    out = tmp_path / "run"
    prepared = prepare(["+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu", f"model.name_or_path={tiny_model}",
                        "data.source=generate", f"training.output_dir={out}", f"+training.hub_token={CLI_TOKEN}"],
                       cpu=True)
    launch_run.run(prepared)
    assert json.loads(seen[SECRETS_ENV]) == {"training.hub_token": CLI_TOKEN}
    assert CLI_TOKEN not in capsys.readouterr().out and CLI_TOKEN not in (out / "config.yaml").read_text()
    monkeypatch.setenv(SECRETS_ENV, seen[SECRETS_ENV])
    cfg, _, _ = load_run(["--run", str(out)])
    assert cfg.training.hub_token == CLI_TOKEN


def _files_holding(root: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {s}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.slow
def test_no_token_in_any_file_of_a_run_and_a_rerun_still_resumes(tiny_model, tmp_path):
    """A real run with a token in the overrides and two in the environment: none of the three is in any file of
    the run directory (config.yaml, env.json, run.json, metrics.jsonl, checkpoints, training_args.bin, model), and
    the same command run again is recognised as the same run (not refused as "other settings")."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tinyzero_trl.cli", "train", "+countdown=grpo-qwen-2.5-3b-base", "+smoke=cpu",
           f"model.name_or_path={tiny_model}", "data.source=generate", f"training.output_dir={out}",
           f"+training.hub_token={CLI_TOKEN}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_TOKEN": ENV_TOKEN, "WANDB_API_KEY": WANDB_KEY}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-2" / "training_args.bin").is_file() and (out / "training_args.bin").is_file()
    assert _files_holding(out, [CLI_TOKEN, ENV_TOKEN, WANDB_KEY]) == []
    assert "hub_token: <HUB_TOKEN>" in (out / "config.yaml").read_text()
    assert CLI_TOKEN not in first.stdout + first.stderr
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and "already holds a completed run" in again.stdout, again.stderr[-2000:]
    assert _files_holding(out, [CLI_TOKEN, ENV_TOKEN, WANDB_KEY]) == []


def test_every_token_override_is_redacted_whatever_its_prefix_depth_or_value():
    assert redact_argv(["+hub_token=a", "~training.hub_token", "++x.y.api_token=b=c==", "+X_token=d",
                        "+training.token_limit=5", "training.hub_token"]) == [
        "+hub_token=<HUB_TOKEN>", "~training.hub_token", "++x.y.api_token=<API_TOKEN>", "+X_token=<X_TOKEN>",
        "+training.token_limit=5", "training.hub_token"]


def test_a_token_written_by_hand_in_config_yaml_is_kept():
    resolved = {"training": {"hub_token": "hf_by_hand", "run_name": "<RUN_NAME>"}}
    assert restore(resolved, {}) == resolved
