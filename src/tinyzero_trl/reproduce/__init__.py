"""Reproductions: the folders under ``reproductions/`` (``folders``: one read gives a run's overrides, launch
options and header as a ``Folder``), one run end to end (``pipeline``), and our own reference curves recorded from
several seeds (``record``).

The top of the package below the command line: imports ``launch``, ``evaluation``, ``verification``, ``config``
and ``tiny``.
"""
