"""Tiny models built offline: random ones of any recipe's architecture for smoke tests (``random_model``), the
pretrained bases the CPU miniatures start from (``pretrain``: what every base shares; ``countdown_base``,
``math_base``, ``clevr_base``: each miniature's recipe and documents), shipped in ``assets/`` with their build
record, which ``rebuild_check`` holds a rebuild against; and a rehearsal's stand-ins (``rehearsal``,
``rehearsal_models``: small models of a GPU recipe's architecture; ``hub_mirrors``: its datasets laid out like the
hub's).

Imports ``data`` (the task generators the bases are pretrained on), ``rewards`` and ``model``.
"""
