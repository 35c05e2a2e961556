"""Held-out evaluation: how completions are drawn (``generation``: one ``Sampling`` for HF text, HF image+text and
vLLM), how a saved model is scored on its task (``evaluate``: the held-out rows, prompts and scorer prepared once as a
``HeldOut``, then scored on one model or several), and a reproduction's before/after protocol (``protocol``: one
``HeldOut`` for both models, recorded in ``summary.json``).

Imports ``config`` (``DataConfig``), ``data``, ``rewards``, ``model`` and ``run``; never the trainer or the
launcher.
"""
