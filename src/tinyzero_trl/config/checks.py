"""What can be checked of a run before any process trains: its directory, its model and its data.

``preflight`` is run once per launch, by whoever starts the training processes (``tinyzero-trl train`` and
``reproduce``, or ``grpo.py`` started directly); each check fails in seconds with one line, instead of after the
launch or a base evaluation.
"""

from __future__ import annotations

from tinyzero_trl.config.schema import RunConfig


def preflight(cfg: RunConfig) -> None:
    """The model exists; the task's settings and a local data file are usable (read without loading:
    ``Task.check``); the run directory can be written. That last, since it creates the directory: a run refused
    for its model or data leaves no empty run directory behind."""
    from tinyzero_trl.data import check_data
    from tinyzero_trl.model.loading import check_model
    from tinyzero_trl.run.files import check_writable

    check_model(cfg.model.name_or_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code)
    check_data(cfg.data)
    check_writable(cfg.output_dir)
