"""The mnemonic family: class forgetting from the model's mnemonic codes (arXiv 2306.05670 and our edits).

One folder, three edits, each named by what it does (``mnemonic_variant`` of the method's settings, ``config.py``):

- ``mnemonic`` (variant ``"deep"``, the default; ``deep.py``): removes the forgotten classes from the
  representation, using a per-architecture plan of which modules write and read it (``plans.py``, a registry a new
  architecture adds one entry to); an architecture without a plan falls back to the head edit, loudly.
- ``mnemonic_head`` (variant ``"search"``; ``head.py``): the output layer only, a Fisher-ratio step searched on the
  codes; hides the classes' output, the features keep them.
- variant ``"paper"`` (``head.py``): the paper's lambda1/lambda2 perturbation of every targeted weight.
"""

from __future__ import annotations

from .. import register_method
from .config import MnemonicDeepConfig, MnemonicHeadConfig
from .deep import MAX_FORGET_PER_CLASS, MAX_RETAIN, MnemonicDeep, deep_forget_  # noqa: F401
from .head import Mnemonic, fisher_ratio, mnemonic_paper_, mnemonic_search_, per_class_code_fisher  # noqa: F401
from .plans import DEEP_PLANS, deep_plan, plan_parameters, register_deep_plan  # noqa: F401

register_method("mnemonic_head", MnemonicHeadConfig, Mnemonic)
register_method("mnemonic", MnemonicDeepConfig, MnemonicDeep)

# what each variant does, by name (the values of `mnemonic_variant`)
VARIANTS = {
    "deep": "remove the forgotten classes from the representation (per-architecture plan), rewrite their head rows",
    "search": "output layer only: a Fisher-ratio step grown until the forget codes are rejected (mnemonic_head)",
    "paper": "the paper's perturbation w +/- alpha * f_F / f_R of every targeted weight (arXiv 2306.05670)",
}

__all__ = [
    "DEEP_PLANS",
    "MAX_FORGET_PER_CLASS",
    "MAX_RETAIN",
    "VARIANTS",
    "Mnemonic",
    "MnemonicDeep",
    "MnemonicDeepConfig",
    "MnemonicHeadConfig",
    "deep_forget_",
    "deep_plan",
    "fisher_ratio",
    "mnemonic_paper_",
    "mnemonic_search_",
    "per_class_code_fisher",
    "plan_parameters",
    "register_deep_plan",
]
