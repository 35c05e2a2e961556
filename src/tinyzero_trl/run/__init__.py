"""The run directory: every file a run leaves, and the rules for reading and reusing one.

A run directory (``training.output_dir``) holds ``config.yaml`` (the resolved config every rank trains from),
``run.json`` (running, completed, interrupted or failed, with the process and a heartbeat), ``env.json`` (what it
ran on), ``metrics.jsonl`` (one line per logged step), ``summary.json`` (held-out accuracy before and after),
checkpoints and the final model.

- ``files``: reading and writing JSON and YAML atomically, with errors that name the file;
- ``status``: ``run.json``, and telling a live run from a dead one;
- ``claim``: what a launch may do in a directory (start, resume, extend, nothing), and ``config.yaml``;
- ``environment``: ``env.json``;
- ``metrics``: ``metrics.jsonl``, read (the writer is a trainer callback, ``train.callbacks``);
- ``summary``: ``summary.json``;
- ``health``: the health rules over a run's logged steps (the trainer callback is ``train.health``).
- ``rehearsal``: ``rehearsal.json``, the mark of a rehearsal (a GPU reproduction's path run on CPU).

This package imports only the standard library, PyYAML and ``tinyzero_trl.errors``: verification reads a run
without torch.
"""
