"""Tiny models built offline: random ones of any recipe's architecture for smoke tests (``random_model``), and the
pretrained bases the CPU miniatures start from (``pretrain``: what every base shares; ``countdown_base``,
``math_base``: each miniature's recipe and documents), shipped in ``assets/`` with their build record.

Imports ``data`` (the task generators the bases are pretrained on), ``rewards`` and ``model``.
"""
