"""The errors a user can fix, kept free of heavy imports so that ``--help`` and argument errors stay instant.

Every subcommand turns one of these into a single line on stderr (``cli.main``) with the exit code it carries;
anything else is a bug and gets a one-line report too, with the traceback behind ``--debug``.

Exit codes of ``tinyzero-trl``: 0 success (verify: PASS), 1 the work itself failed (verify: FAIL; training
did not complete), 2 bad input (a config key, a path, a data file; verify: the run cannot be judged), 3 verify
had nothing to judge (UNCHECKED), 130 interrupted.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNCHECKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UserError(ValueError):
    """Input the user can fix; the message names the field or path and says what to do."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(UserError):
    """A recipe or override that cannot run; the message says which key and what to do."""


class DataError(UserError):
    """Task data that cannot be used as given; the message names the file or dataset and the fix."""


class RunDirError(UserError):
    """A run directory that cannot be used (unwritable, another run still alive in it, unreadable files)."""
