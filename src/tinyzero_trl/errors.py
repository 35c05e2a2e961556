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
    every_rank = False  # True where one machine alone meets it (its line must not wait for rank 0 to print it)


class ConfigError(UserError):
    """A recipe or override that cannot run; the message says which key and what to do."""


class DataError(UserError):
    """Task data that cannot be used as given; the message names the file or dataset and the fix."""


class RunDirError(UserError):
    """A run directory that cannot be used (unwritable, another run still alive in it, unreadable files)."""


ERROR_FILE_ENV = "TINYZERO_ERROR_FILE"  # set by `tinyzero-trl train` for its training processes


def report(command: str, message: str, *, code: int = EXIT_BAD_INPUT, every_rank: bool = False) -> None:
    """Print the one line a failed ``command`` leaves on stderr, once per launch.

    A training process launched by ``tinyzero-trl train`` also leaves the line (and exit code) in the file named
    by ``$TINYZERO_ERROR_FILE``: the first rank to fail writes it, and the launching process shows it as its own
    last line instead of the launcher's traceback. Without that file only rank 0 prints, since every rank meets
    the same configuration error (``every_rank`` for errors that may hit one rank alone).
    """
    import json
    import os
    import sys

    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        try:
            with open(path, "x", encoding="utf-8") as fh:
                json.dump({"code": code, "message": message, "rank": os.environ.get("RANK")}, fh)
        except FileExistsError:
            return  # another rank has already reported
        except OSError:
            pass
    elif not every_rank and os.environ.get("RANK", "0") != "0":
        return
    print(f"tinyzero-trl {command}: {message}", file=sys.stderr, flush=True)


class NoLearningSignal(UserError):
    """A run stopped by ``stop_without_signal``: every group had the same reward for that many logged steps."""

    exit_code = EXIT_FAILED


class Diverged(UserError):
    """A run stopped by the ``diverged`` health rule: a step's update left weights that are not finite numbers."""

    exit_code = EXIT_FAILED


class UnusableRun(UserError):
    """A run (or a reference) that cannot be judged: missing, unfinished, corrupt or impossible files; verify exit 2."""


def yaml_problem(err: Exception) -> str:
    """A YAML parse error as "line L, column C: what is wrong" (PyYAML puts the position on another line)."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
