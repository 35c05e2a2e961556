"""Inside a training process: the entry every rank runs (``entry``), TRL's ``GRPOTrainer`` built from the checked
config and the run directory kept honest while it trains (``trainer``), and our trainer callbacks
(``callbacks``: metrics.jsonl, stop at a step; ``health``: the health rules while the run trains).

Imports ``config``, ``data``, ``rewards``, ``model`` and ``run``; never the launcher or evaluation.
"""
