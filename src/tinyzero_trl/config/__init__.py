"""A run's configuration: recipes composed by Hydra (``compose``), checked into one typed object (``schema``), and
what can be checked of it before training (``checks``).

Imports ``data`` (the task registry), ``rewards`` (the reward registry), ``model`` and ``run`` (the checks) and
trl (``GRPOConfig``), never the trainer, the launcher or anything above them.
"""

from tinyzero_trl.config.schema import DataConfig, LoraConfig, ModelConfig, RunConfig, validate
from tinyzero_trl.errors import ConfigError

__all__ = ["ConfigError", "DataConfig", "LoraConfig", "ModelConfig", "RunConfig", "validate"]
