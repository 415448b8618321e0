"""The settings of the mnemonic family: [`MnemonicHeadConfig`] (``mnemonic_head``) and [`MnemonicDeepConfig`]
(``mnemonic``, which also holds the head edit's settings for its ``"search"`` / ``"paper"`` variants and its
fallback). Not to be confused with [`hf_unlearn.MnemonicConfig`], the training arguments of ``MnemonicTrainer``.
They are defined in ``methods/configs.py`` with the other methods' settings (importing them there needs no torch)."""

from __future__ import annotations

from ..configs import MnemonicDeepConfig, MnemonicHeadConfig

__all__ = ["MnemonicDeepConfig", "MnemonicHeadConfig"]
