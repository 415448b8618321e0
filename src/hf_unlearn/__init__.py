"""hf_unlearn: make a transformers classifier forget whole classes, and publish the result honestly."""

__version__ = "0.1.0"

from .mnemonic import MnemonicCodebook, MnemonicConfig, MnemonicTrainer  # noqa: E402

__all__ = sorted(["MnemonicCodebook", "MnemonicConfig", "MnemonicTrainer", "__version__"])
