"""GRPO training entry point: the script every launch runs on every rank (see ``train.entry``).

    accelerate launch --config_file CONFIG src/tinyzero_trl/grpo.py +countdown=grpo-qwen-2.5-3b-base
    python -m tinyzero_trl.grpo +math=grpo-deepseek-distill-1.5b-inst training.output_dir=runs/math
    accelerate launch ... grpo.py --run RUN_DIR        # what `tinyzero-trl train` and `reproduce` launch

It stays at this path because the original TinyZero-TRL commands name it.
"""

from __future__ import annotations

from tinyzero_trl.train.entry import leave, main

if __name__ == "__main__":
    leave(main())
