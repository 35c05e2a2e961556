"""Starting training processes on this machine and others: the plan (``plan``: compose, check once, the
``accelerate launch`` command and its CPU settings, prepared once as plain data), carrying it out (``run``:
preflight, claim, train, and a caller's work before and after),
supervising the process tree (``supervise``), sizing a run (``scale``), vLLM's server (``vllm_server``) and the
plugin vLLM's CPU build needs (``vllm_plugin``, loaded by vLLM itself).

Imports ``config`` and ``run``; never the trainer (it is started as ``grpo.py``, a process of its own) nor
evaluation. Nothing is imported here, so that vLLM's plugin loader stays light.
"""
