"""GRPO training entry point: the script every launch runs on every rank.

    accelerate launch --config_file CONFIG src/tinyzero_trl/grpo.py +countdown=grpo-qwen-2.5-3b-base
    python -m tinyzero_trl.grpo +math=grpo-deepseek-distill-1.5b-inst training.output_dir=runs/math
    accelerate launch ... grpo.py --config RUN_DIR/config.yaml    # what `tinyzero-trl train` launches

Given overrides, Hydra composes the recipe (``recipes.compose``); given ``--config``, the resolved config that
``tinyzero-trl train`` or ``reproduce`` already composed and checked is read back as it is. Either way
``config.validate`` checks it and ``trainer.train`` runs TRL. A bad config exits 2 with one line, no traceback.
"""

from __future__ import annotations

import sys
import traceback

from tinyzero_trl.errors import EXIT_FAILED, EXIT_INTERRUPTED, UserError, report

SIGTERM_EXIT = 143  # 128 + SIGTERM, what a shell reports for a process ended by it


def load_config(argv: list[str]) -> dict:
    """The raw config: read from ``--config FILE``, or composed from Hydra overrides."""
    if argv[:1] == ["--config"]:
        from tinyzero_trl.run_dir import read_yaml

        if len(argv) != 2:
            raise UserError("--config takes one file and nothing else (put overrides in the file, or pass "
                            "overrides without --config)")
        return read_yaml(argv[1], error=UserError)
    from tinyzero_trl.recipes import compose

    return compose(argv)


def main(argv: list[str] | None = None) -> int:
    """Validate a config and train; return the exit code (0, 1 failed, 2 bad input, 130/143 interrupted)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    from tinyzero_trl.config import validate

    try:
        raw = load_config(argv)
        config = validate(raw)
        from tinyzero_trl.trainer import (  # heavy imports only after the config is known good
            Interrupted,
            train,
        )

        try:
            train(config, resolved=raw)
        except Interrupted as err:
            report("train", f"training {err.args[0]}; rerun the same command to resume", code=SIGTERM_EXIT,
                   every_rank=True)
            return SIGTERM_EXIT
        return 0
    except UserError as err:
        report("train", str(err), code=err.exit_code)
        return err.exit_code
    except KeyboardInterrupt:
        report("train", "training interrupted by SIGINT (Ctrl-C); rerun the same command to resume",
               code=EXIT_INTERRUPTED, every_rank=True)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug or a library failure: the traceback first, then the one line
        traceback.print_exc()
        report("train", f"{type(err).__name__}: {err} (traceback above)", code=EXIT_FAILED, every_rank=True)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
