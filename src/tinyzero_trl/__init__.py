"""TinyZero-TRL: reproduce R1-Zero-style GRPO results on the Hugging Face stack."""

__version__ = "0.1.0"
