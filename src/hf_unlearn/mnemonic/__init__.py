"""Mnemonic codes: the codebook, its training config and the Trainer that teaches them."""

from .codebook import MnemonicCodebook
from .config import MnemonicConfig
from .trainer import MnemonicTrainer

__all__ = ["MnemonicCodebook", "MnemonicConfig", "MnemonicTrainer"]
