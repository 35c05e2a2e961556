"""The training process: what ``grpo.py`` runs on every rank.

    accelerate launch ... grpo.py --run RUN_DIR           # what `tinyzero-trl train` and `reproduce` launch
    accelerate launch --config_file CONFIG src/tinyzero_trl/grpo.py +countdown=grpo-qwen-2.5-3b-base
    python -m tinyzero_trl.grpo --config FILE             # a resolved config of your own

With ``--run`` the launcher has already composed and checked the run, claimed its directory and written
``RUN_DIR/config.yaml``: every rank reads that file back as the typed config and trains. Given Hydra overrides
(or ``--config FILE``) nothing has been done yet, so every rank composes (or reads) and checks the config, runs
the preflight and claims the directory, all read-only and reaching the same decision without talking to the
others, and the main process writes ``config.yaml``. A bad config exits 2 with one line, no traceback.
"""

from __future__ import annotations

import atexit
import gc
import io
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import NoReturn

from tinyzero_trl.errors import EXIT_FAILED, EXIT_INTERRUPTED, UserError, report

SIGTERM_EXIT = 143  # 128 + SIGTERM, what a shell reports for a process ended by it
# How long a rank waits for RUN_DIR/config.yaml to appear (the main machine writes it; the others read it
# through a shared filesystem). Override with $TINYZERO_CONFIG_WAIT (seconds).
CONFIG_WAIT_SECONDS = 120.0


def wait_for_run_config(run_dir: Path, timeout: float | None = None) -> Path:
    """``RUN_DIR/config.yaml``, waiting up to ``timeout`` seconds for the main machine to write it."""
    from tinyzero_trl.run.claim import CONFIG_FILE

    path = Path(run_dir) / CONFIG_FILE
    if timeout is None:
        timeout = float(os.environ.get("TINYZERO_CONFIG_WAIT", CONFIG_WAIT_SECONDS))
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() >= deadline:
            err = UserError(f"{path}: not written after {timeout:.0f} s. Machine rank 0 writes the run's config "
                            "there before its trainers start; every machine of a launch needs the same "
                            "training.output_dir, on a filesystem they all share")
            err.every_rank = True  # a non-main machine alone meets it: its ranks are all > 0
            raise err
        time.sleep(1.0)
    return path


def load_run(argv: list[str]):
    """``(RunConfig, resolved mapping, claimed)`` from ``--run RUN_DIR``, ``--config FILE`` or Hydra overrides."""
    from tinyzero_trl.config.schema import validate
    from tinyzero_trl.run.files import read_yaml

    if argv[:1] in (["--run"], ["--config"]):
        if len(argv) != 2:
            raise UserError(f"{argv[0]} takes one path and nothing else (put overrides in the config, or pass "
                            "overrides without it)")
        if argv[0] == "--run":
            from tinyzero_trl.run.secrets import restore

            # config.yaml holds placeholders for tokens; the launcher handed the real ones over in the environment
            resolved = restore(read_yaml(wait_for_run_config(Path(argv[1])), error=UserError))
            return validate(resolved), resolved, True
        resolved = read_yaml(argv[1], error=UserError)
    else:
        from tinyzero_trl.config.compose import compose

        resolved = compose(argv)
    return validate(resolved), resolved, False


def claim_here(cfg, resolved: dict) -> str | None:
    """Preflight and claim on every rank (read-only, the same answer everywhere); the main process then sets an old
    run aside (``fresh``) and writes ``config.yaml``. A line when there is nothing to do (a finished run)."""
    from accelerate import PartialState

    from tinyzero_trl.config.checks import preflight
    from tinyzero_trl.run.claim import claim, start_run

    preflight(cfg)
    done = claim(cfg.output_dir, resolved, fresh=cfg.fresh)
    if done:
        return done
    state = PartialState(cpu=bool(cfg.training.use_cpu))
    with state.main_process_first():
        if state.is_main_process:
            start_run(cfg.output_dir, {**resolved, "fresh": False}, fresh=cfg.fresh)
    return None


def main(argv: list[str] | None = None) -> int:
    """Check a config and train; return the exit code (0, 1 failed, 2 bad input, 130/143 interrupted)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    try:
        cfg, resolved, claimed = load_run(argv)
        if not claimed:
            done = claim_here(cfg, resolved)
            if done:
                if os.environ.get("RANK", "0") == "0":
                    print(f"[tinyzero-trl] {done}")
                return 0
        from tinyzero_trl.train.trainer import (  # heavy imports only after the config is good
            Interrupted,
            train,
        )

        try:
            train(cfg)
        except Interrupted as err:
            report("train", f"training {err.args[0]}; rerun the same command to resume", code=SIGTERM_EXIT,
                   every_rank=True)
            return SIGTERM_EXIT
        return 0
    except UserError as err:
        report("train", str(err), code=err.exit_code, every_rank=err.every_rank)
        return err.exit_code
    except KeyboardInterrupt:
        report("train", "training interrupted by SIGINT (Ctrl-C); rerun the same command to resume",
               code=EXIT_INTERRUPTED, every_rank=True)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug or a library failure: the traceback first, then the one line
        traceback.print_exc()
        report("train", f"{type(err).__name__}: {err} (traceback above)", code=EXIT_FAILED, every_rank=True)
        return EXIT_FAILED


def leave(code: int) -> NoReturn:
    """End the training process with ``code``: wait for its other threads, run its exit handlers, and stop there,
    without the interpreter's teardown.

    A gloo worker thread can still be freeing the last barrier's work, and with it the tensors of an all-gather
    ZeRO-3 left in flight, when the main thread has begun tearing Python down. Freeing a tensor takes the GIL; in
    teardown that ends the thread (pthread_exit) through a C++ frame that may not throw, and std::terminate aborts
    the rank ("terminate called without an active exception"). A core dump of one such rank showed exactly this
    stack; 3 of 107 finished ZeRO-3 runs on two CPU cores exited -6 so, and their launches 1, with ``run.json``
    reading completed. ``destroy_process_group`` cannot prevent it: torch keeps a used group's threads alive
    (a DDP model is enough). What a normal exit does before the teardown still happens here, in its order:
    non-daemon threads finish, the exit handlers (logging, reward pools, trackers) run, and every file still open
    is flushed (the teardown would have closed it: a reward plugin's log keeps its last lines).
    """
    # What Py_FinalizeEx calls first, and no public function offers: threading's own exit callbacks (a thread pool's
    # workers are told to stop there; joined before that, they would wait forever), then the join of non-daemon
    # threads, then the atexit handlers.
    threading._shutdown()  # noqa: SLF001
    atexit._run_exitfuncs()  # noqa: SLF001
    for stream in [obj for obj in gc.get_objects() if isinstance(obj, io.IOBase)] + [sys.stdout, sys.stderr]:
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, detached or unwritable: nothing to keep
            pass
    os._exit(code)
