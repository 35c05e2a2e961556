"""Held-out evaluation: how completions are drawn (``generation``: one ``Sampling`` for HF text, HF image+text and
vLLM), how a saved model is scored on its task (``evaluate``), and a reproduction's before/after protocol
(``protocol``, recorded in ``summary.json``).

Imports ``config`` (``DataConfig``), ``data``, ``rewards``, ``model`` and ``run``; never the trainer or the
launcher.
"""
