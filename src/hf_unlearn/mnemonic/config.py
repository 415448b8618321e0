"""MnemonicConfig: TrainingArguments plus the mnemonic-code settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from .codebook import DISTRIBUTIONS


@dataclass
class MnemonicConfig(TrainingArguments):
    r"""
    Configuration for [`MnemonicTrainer`]: every [`~transformers.TrainingArguments`] field plus the fields below.
    Works with [`~transformers.HfArgumentParser`], so each field is a command-line flag.

    Parameters that control the mnemonic codes:
        mnemonic_mix_ratio (`float`, defaults to `0.1`):
            t_mix, the probability that a training example is replaced by its class's code (label kept). The paper
            uses 0.1 (MNIST, CUB, Cars) and 0.3 (CIFAR-10) and recommends at most 0.3. Must lie in [0, 1);
            [`MnemonicTrainer.train`] refuses 0, and a ratio that would show some class's code fewer than a handful of
            times over the run.
        mnemonic_seed (`int`, defaults to `0`):
            Seed of the codes and of the per-sample replacement draws.
        mnemonic_codes_per_class (`int`, defaults to `1`):
            Codes per class (the paper uses one).
        mnemonic_distribution (`str`, defaults to `"uniform"`):
            Image codes: `"uniform"` draws U[0,1) pixels and applies the image processor's normalisation (the
            authors' code); `"normal"` draws N(0,1) pixels (the paper's text).
        mnemonic_text_length (`int`, defaults to `16`):
            Random tokens per text code, special tokens excluded.
        mnemonic_balance_classes (`bool`, defaults to `True`):
            Show the codes of rare classes as often as an average class's. A replaced example gets its own class's
            code, so a code is shown in proportion to its class's frequency, and a rare class may see its code too
            seldom to learn it. With balancing, classes with fewer than half the mean number of examples are topped
            up to the mean number of code presentations: classes above the mean donate part of their replaced
            examples, whose slots then carry a rare class's code and that class's label. Every class is still
            replaced at the same rate t_mix, so no class loses more of its real examples than the others. Without
            rare classes this is exactly the paper's scheme. Needs the training labels up front (a dataset with a
            `labels` or `label` column); otherwise it is off.

    Parameter that records where the model comes from:
        base_model (`str` or `None`, defaults to `None`):
            Hub id of the pretrained checkpoint training starts from, recorded beside the codes
            (`mnemonic_codebook.json`) and named as `base_model` on this trainer's model card and on the card of every
            model unlearned from it. By default it is the model's `name_or_path` when that is a Hub id (or a
            `huggingface_hub` cache folder of one), else the base recorded in the local folder it was loaded from
            by hf_unlearn. A local path is refused: it would be published.
    """

    # Parameters that control the mnemonic codes
    mnemonic_mix_ratio: float = field(
        default=0.1,
        metadata={
            "help": "t_mix: probability of replacing a training example by its class's code, in [0, 1). Training "
            "refuses 0 and ratios too small to teach every class its code."
        },
    )
    mnemonic_seed: int = field(default=0, metadata={"help": "Seed of the mnemonic codes and replacement draws."})
    mnemonic_codes_per_class: int = field(default=1, metadata={"help": "Number of mnemonic codes per class."})
    mnemonic_distribution: str = field(
        default="uniform",
        metadata={"help": "Image code distribution: 'uniform' (U[0,1) then normalised) or 'normal' (N(0,1))."},
    )
    mnemonic_text_length: int = field(
        default=16, metadata={"help": "Random tokens per text code (special tokens excluded)."}
    )

    mnemonic_balance_classes: bool = field(
        default=True,
        metadata={
            "help": "Top up the code presentations of rare classes (under half the mean count) with slots donated "
            "by classes above the mean; the replacement rate stays t_mix for every class."
        },
    )

    base_model: str | None = field(
        default=None,
        metadata={
            "help": "Hub id of the pretrained checkpoint training starts from, recorded with the codes and named as "
            "base_model on the model cards (default: the model's name_or_path when it is a Hub id)."
        },
    )

    def __post_init__(self):
        from ..hub.lineage import check_base_model

        check_base_model(self.base_model)
        r = self.mnemonic_mix_ratio
        if not isinstance(r, (int, float)) or r != r or not 0.0 <= float(r) < 1.0:
            raise ValueError(f"`mnemonic_mix_ratio` must lie in [0, 1), got {r!r}.")
        if int(self.mnemonic_codes_per_class) < 1:
            raise ValueError(f"`mnemonic_codes_per_class` must be >= 1, got {self.mnemonic_codes_per_class}.")
        if self.mnemonic_distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"`mnemonic_distribution` must be one of {DISTRIBUTIONS}, got {self.mnemonic_distribution!r}."
            )
        if int(self.mnemonic_text_length) < 1:
            raise ValueError(f"`mnemonic_text_length` must be >= 1, got {self.mnemonic_text_length}.")
        super().__post_init__()
