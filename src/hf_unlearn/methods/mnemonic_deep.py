"""Deprecated location of the deep mnemonic edit: it lives in ``hf_unlearn.methods.mnemonic.deep`` (plans in
``hf_unlearn.methods.mnemonic.plans``). This module re-exports its public names for old imports."""

from .mnemonic.deep import (  # noqa: F401
    ALPHAS,
    ALPHAS_FEW_SHOT,
    KEEP_MARGIN,
    MAX_FORGET_PER_CLASS,
    MAX_RETAIN,
    MAX_RETAIN_DROP,
    RIDGE,
    MnemonicDeep,
    deep_forget_,
)
from .mnemonic.plans import deep_plan, plan_parameters  # noqa: F401
