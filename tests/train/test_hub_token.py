"""train.trainer.hub_token_to_environment: a ``training.hub_token`` never reaches a pickle of the arguments.

transformers pickles the arguments into ``training_args.bin`` in ``_save`` and again in ``_push_from_checkpoint``,
which uploads that folder to the hub at every checkpoint; the token lives in ``HF_TOKEN`` instead, where
huggingface_hub reads it for every call that passes none."""

import io

import huggingface_hub
import torch
from trl import GRPOConfig

from tinyzero_trl.train.trainer import hub_token_to_environment

SECRET = "hf_SECRET_never_in_a_file_123"


def _pickled(args) -> bytes:
    buffer = io.BytesIO()
    torch.save(args, buffer)  # what Trainer writes as training_args.bin, in _save and in _push_from_checkpoint
    return buffer.getvalue()


def test_the_token_leaves_the_arguments_and_authenticates_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    args = GRPOConfig(output_dir=str(tmp_path), hub_token=SECRET, report_to=[], bf16=False, use_cpu=True)
    assert SECRET.encode() in _pickled(args)  # the leak this guards against: the pickle carries the token
    hub_token_to_environment(args)
    assert SECRET.encode() not in _pickled(args)
    assert args.hub_token is None
    assert huggingface_hub.get_token() == SECRET  # what upload_folder(token=None) authenticates with


def test_no_token_leaves_the_environment_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_users_shell")
    args = GRPOConfig(output_dir=str(tmp_path), report_to=[], bf16=False, use_cpu=True)
    hub_token_to_environment(args)
    assert args.hub_token is None and huggingface_hub.get_token() == "hf_from_the_users_shell"


def test_a_placeholder_is_not_a_token(tmp_path, monkeypatch):
    """A config read back from config.yaml without its secrets holds ``<HUB_TOKEN>``: never sent as a token."""
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_users_shell")
    args = GRPOConfig(output_dir=str(tmp_path), hub_token="<HUB_TOKEN>", report_to=[], bf16=False, use_cpu=True)
    hub_token_to_environment(args)
    assert args.hub_token is None and huggingface_hub.get_token() == "hf_from_the_users_shell"
