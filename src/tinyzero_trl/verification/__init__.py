"""Judging runs against their reproduction's reference: ``verify`` (the verdict, exit codes), ``expected``
(``expected.json`` read and checked), ``sanity`` (what no honest run can log), ``report`` (``verify.md`` and a
plot per metric), ``curves`` (``curves.png``, the R1-Zero story of a run) and ``health`` (a run judged by the health
rules of ``run.health``: can it learn at all).

Imports ``run`` (the run directory's files) and ``rewards`` (each reward's bounds), never torch: verify reads a
run in a fraction of a second.
"""
