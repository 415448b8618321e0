"""hf_unlearn: make a transformers classifier forget whole classes, and publish the result honestly."""

__version__ = "0.1.0"

from .fisher import compute_fisher  # noqa: E402
from .mnemonic import MnemonicCodebook, MnemonicConfig, MnemonicTrainer  # noqa: E402
from .report import UnlearningReport  # noqa: E402
from .unlearner import FisherUnlearner, UnlearningConfig  # noqa: E402

__all__ = [
    "FisherUnlearner",
    "MnemonicCodebook",
    "MnemonicConfig",
    "MnemonicTrainer",
    "UnlearningConfig",
    "UnlearningReport",
    "__version__",
    "compute_fisher",
]
