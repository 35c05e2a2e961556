"""GRPO training entry point, a Hydra application.

    accelerate launch --config_file CONFIG src/tinyzero_trl/grpo.py +countdown=grpo-qwen-2.5-3b-base
    python -m tinyzero_trl.grpo +math=grpo-deepseek-distill-1.5b-inst training.output_dir=runs/math

Hydra composes the recipe and overrides; ``config.validate`` checks them; ``trainer.train`` runs TRL.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from tinyzero_trl.config import ConfigError, validate
from tinyzero_trl.data.sources import DataError


def run(cfg: DictConfig):
    """Validate a composed config and train; a bad config exits 2 with a one-line reason."""
    try:
        raw = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except Exception as err:  # omegaconf's MissingMandatoryValue and interpolation errors
        key = getattr(err, "full_key", None)
        msg = f"{key} is not set: add {key}=..." if key else str(err).splitlines()[0]
        sys.exit(f"config error: {msg}")
    try:
        config = validate(raw)
        from tinyzero_trl.trainer import train  # heavy imports only after the config is known good

        return train(config, resolved=raw)
    except (ConfigError, DataError) as err:
        sys.exit(f"config error: {err}")


@hydra.main(config_path="configs", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
