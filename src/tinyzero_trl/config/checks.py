"""What can be checked of a run before any process trains: its directory, its model and its data.

Every plan, a dry run's too, has checked that a model path on this machine holds a model (``compose.resolve``).
``preflight`` runs once per launch, before any training process starts (``launch.run`` for ``tinyzero-trl
train``, ``reproduce`` and a rehearsal, or ``grpo.py`` started directly): what is left of the model (a hub id's
lookup), the data, the run directory. Each check fails in seconds with one line, instead of after the launch or a
base evaluation, and none is made twice.
"""

from __future__ import annotations

import os

from tinyzero_trl.config.schema import RunConfig


def preflight(cfg: RunConfig, *, path_checked: bool = False) -> None:
    """The model exists; the task's settings and a local data file are usable (read without loading:
    ``Task.check``); the run directory can be written. That last, since it creates the directory: a run refused
    for its model or data leaves no empty run directory behind. ``path_checked``: the plan has checked the
    model's local path (``compose.resolve``), so what is left of the model is a hub id's lookup."""
    from tinyzero_trl.data import check_data
    from tinyzero_trl.model.loading import check_hub_model, check_model_path
    from tinyzero_trl.run.files import check_writable

    model = cfg.model
    local = os.path.isdir(os.path.expanduser(model.name_or_path)) if path_checked else check_model_path(
        model.name_or_path)
    if not local:
        check_hub_model(model.name_or_path, revision=model.revision, trust_remote_code=model.trust_remote_code)
    check_data(cfg.data)
    check_writable(cfg.output_dir)

