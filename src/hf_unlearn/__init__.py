"""hf_unlearn: make a transformers classifier forget whole classes, and publish the result honestly.

The public names below are imported on first use, so that ``import hf_unlearn`` (and the ``hf-unlearn --help``
command) does not pay for importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "FisherUnlearner": ".unlearner",
    "ForgettingAudit": ".audit",
    "MnemonicCodebook": ".mnemonic",
    "MnemonicConfig": ".mnemonic",
    "MnemonicTrainer": ".mnemonic",
    "UnlearningConfig": ".unlearning_config",
    "UnlearningIncompleteError": ".unlearner",
    "UnlearningReport": ".report",
    "audit_forgetting": ".audit",
    "compute_fisher": ".fisher",
}

__all__ = [
    "FisherUnlearner",
    "ForgettingAudit",
    "MnemonicCodebook",
    "MnemonicConfig",
    "MnemonicTrainer",
    "UnlearningConfig",
    "UnlearningIncompleteError",
    "UnlearningReport",
    "__version__",
    "audit_forgetting",
    "compute_fisher",
]

if TYPE_CHECKING:  # pragma: no cover
    from .audit import ForgettingAudit, audit_forgetting
    from .fisher import compute_fisher
    from .mnemonic import MnemonicCodebook, MnemonicConfig, MnemonicTrainer
    from .report import UnlearningReport
    from .unlearner import FisherUnlearner, UnlearningIncompleteError
    from .unlearning_config import UnlearningConfig


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
