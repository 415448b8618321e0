"""The settings of the built-in methods, one [`MethodConfig`] dataclass per method (registered with it).

They live apart from the methods' code so that reading them (``hf-unlearn forget --help`` lists every setting) does
not import torch. Each method's module re-exports its own (``from hf_unlearn.methods.ssd import SSDConfig``); the
mnemonic family's are also in ``methods/mnemonic/config.py``. Field names are ``hf-unlearn forget`` flags, so they
carry the method's prefix unless two methods mean the same setting by them (the mnemonic family).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..unlearning_config import MethodConfig, check_bool, check_choice, check_number

FISHER_KINDS = ("batch_true", "empirical", "true", "batch")  # hf_unlearn.fisher.KINDS, without importing torch
LOGIT_MARGIN = 0.01  # logit units below the best retained class: a tie must not let the class win
# defaults of the deep mnemonic edit: the constants of ``methods/mnemonic/deep.py`` (a test checks they agree)
RIDGE = 1.0
KEEP_MARGIN = 0.85
MAX_RETAIN_DROP = 0.01
MAX_FORGET_PER_CLASS = 32
MAX_RETAIN = 256


@dataclass
class FisherMaskConfig(MethodConfig):
    """Settings of method ``fisher_mask``.

    Args:
        mask_ratio (`float`, defaults to `0.02`): fraction of the scored weights set to zero, in (0, 1); in samples
            scope the strongest rung of the strength search.
        mask_fisher_kind (`str`, defaults to `"batch_true"`): Fisher kind of the scores (`"batch_true"` as the
            authors, `"empirical"`, `"true"`, `"batch"`).
    """

    mask_ratio: float = field(default=0.02, metadata={"help": "Fraction of the scored weights zeroed, in (0, 1)."})
    mask_fisher_kind: str = field(
        default="batch_true",
        metadata={"help": f"Fisher kind of the scores: {', '.join(FISHER_KINDS)} ('batch_true' as the authors)."},
    )

    def __post_init__(self):
        check_number(self, "mask_ratio", 0.0, 1.0)
        check_choice(self, "mask_fisher_kind", FISHER_KINDS)


@dataclass
class SSDConfig(MethodConfig):
    """Settings of method ``ssd``.

    Args:
        ssd_alpha (`float`, defaults to `10.0`): selection threshold: a weight is dampened where its importance on
            the forget data exceeds ``ssd_alpha`` times its importance on all data (the authors use 5 for ViT); in
            samples scope the strongest rung of the strength search.
        ssd_lambda (`float`, defaults to `1.0`): dampening constant.
    """

    ssd_alpha: float = field(default=10.0, metadata={"help": "Selection threshold (10; 5 for ViT in SSD)."})
    ssd_lambda: float = field(default=1.0, metadata={"help": "Dampening constant."})

    def __post_init__(self):
        for name in ("ssd_alpha", "ssd_lambda"):
            check_number(self, name)


@dataclass
class FisherNoiseConfig(MethodConfig):
    """Settings of method ``fisher_noise``.

    Args:
        noise_alpha (`float`, defaults to `1e-6`): noise scale (the variance is ``noise_alpha`` over the retained
            data's Fisher); in samples scope the strongest rung of the strength search.
    """

    noise_alpha: float = field(default=1e-6, metadata={"help": "Noise scale alpha."})

    def __post_init__(self):
        check_number(self, "noise_alpha")


@dataclass
class LogitSuppressionConfig(MethodConfig):
    """Settings of method ``logit_suppression``.

    Args:
        logit_margin (`float`, defaults to `LOGIT_MARGIN` = 0.01): how far (logit units) each forgotten class ends
            below the best retained class on its codes and samples; a tie must not let the class win.
    """

    logit_margin: float = field(
        default=LOGIT_MARGIN,
        metadata={"help": "Logit units each forgotten class ends below the best retained class on its evidence."},
    )

    def __post_init__(self):
        check_number(self, "logit_margin")


@dataclass
class NegGradPlusConfig(MethodConfig):
    """Settings of method ``neggrad_plus`` (the module docstring says how the recipe uses them).

    Args:
        finetune_fraction (`float`, defaults to `0.1`): optimizer steps as a fraction of the original training run's,
            read from the `trainer_state.json` that `Trainer` writes beside the model (else in its last
            `checkpoint-*`), else from the `training_args.json` recipe that `MnemonicTrainer` saves. In (0, 1].
        finetune_max_steps (`int` or `None`): the number of steps instead of `finetune_fraction` (needed when the
            model folder holds neither file; without either the recipe makes one pass over the retained rows).
        finetune_max_seconds (`float` or `None`): wall-clock cap on the recipe; it stops at the first step past it.
        finetune_learning_rate (`float` or `None`), finetune_batch_size (`int` or `None`): default: the original
            run's (peak logged learning rate and batch size), else 5e-5 and 16.
        forget_ascent_fraction (`float`, defaults to `0.5`): fraction of the steps that also push the forget rows'
            loss up to its target (the rest fine-tune on the retained rows only). In [0, 1]; 0 is plain fine-tuning.
        forget_ascent_target (`str`, defaults to `"auto"`): the loss each forget row is pushed up to: `"probe"` (what
            a linear probe fitted on the retained rows' features gives it, at most chance level), `"chance"` (log of
            the number of classes), `"heldout"` (at least the probe's, and the model's loss on the held-out row of
            the same rank, forget rows ranked by the probe's loss; needs `eval_dataset`, else the probe's) or
            `"auto"` (`"chance"` when the rows' labels are concentrated on one class far beyond the retained rows'
            share of it, as a backdoor's relabelled rows are; else `"probe"`).
        suspect_poison (`bool`, defaults to `True`): when the forget rows are relabelled to one class (a backdoor),
            also forget the retained rows of that class that the model represents like the named ones rather than
            like the rest of the class (poisoned rows the request did not name), and treat the rows as poison only
            when the model represents them apart from that class (else they are a deletion request within one
            class); `False`: the named rows only, poison whenever their labels say so.
        known_poison (`bool`, defaults to `False`): the named rows are known to be poisoned (found by an audit,
            say), possibly only some of them: they are pushed to chance whatever their labels show, and when most
            of them carry one label (a backdoor's target class) the retained rows of that class are searched for the
            rest without first testing whether the named rows look like poison (with `suspect_poison`). For a few
            named rows (3-4 on digits), which the automatic tests cannot tell from a deletion request.
    """

    finetune_fraction: float = field(
        default=0.1, metadata={"help": "Steps as a fraction of the original run's (trainer_state.json), in (0, 1]."}
    )
    finetune_max_steps: int | None = field(
        default=None, metadata={"help": "Number of steps (instead of --finetune_fraction)."}
    )
    finetune_max_seconds: float | None = field(default=None, metadata={"help": "Wall-clock cap in seconds."})
    finetune_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate (default: the original run's peak, else 5e-5)."}
    )
    finetune_batch_size: int | None = field(
        default=None, metadata={"help": "Batch size (default: the original run's, else 16)."}
    )
    forget_ascent_fraction: float = field(
        default=0.5, metadata={"help": "Fraction of the steps pushing the forget rows' loss up to its target."}
    )
    forget_ascent_target: str = field(
        default="auto",
        metadata={
            "help": "The loss each forget row is pushed up to: 'probe' (what a linear probe fitted on the retained "
            "rows' features gives it, at most chance level), 'chance' (log of the number of classes), 'heldout' (the "
            "held-out row of the same rank's loss, from eval_dataset) or 'auto' (chance when the rows' labels are "
            "concentrated on one class as a backdoor's are, else probe)."
        },
    )
    suspect_poison: bool = field(
        default=True,
        metadata={
            "help": "Backdoor (rows relabelled to one class): poison only if the model also represents the rows apart "
            "from that class, and then also forget retained rows of that class it represents like them (unnamed "
            "poison). False: the named rows only, poison whenever their labels say so."
        },
    )

    known_poison: bool = field(
        default=False,
        metadata={
            "help": "The named rows are known to be poisoned (possibly only some of the poison): push them to chance "
            "and search the retained rows of their label for the rest without testing whether they look like poison."
        },
    )

    def __post_init__(self):
        check_bool(self, "suspect_poison")
        check_bool(self, "known_poison")
        check_number(self, "finetune_fraction", 0.0, 1.0, closed="(]")
        check_number(self, "forget_ascent_fraction", 0.0, 1.0, closed="[]")
        for name in ("finetune_max_steps", "finetune_batch_size"):
            check_number(self, name, optional=True, integer=True)
        for name in ("finetune_max_seconds", "finetune_learning_rate"):
            check_number(self, name, optional=True)
        check_choice(self, "forget_ascent_target", ("auto", "probe", "chance", "heldout"))


@dataclass
class MnemonicHeadConfig(MethodConfig):
    """Settings of method ``mnemonic_head``: the output-layer edit from the codes (``head.py``).

    Args:
        mnemonic_variant (`str`, defaults to `"search"`): `"search"` (a Fisher-ratio step on the output layer, grown
            until the forget codes are rejected) or `"paper"` (the paper's lambda1/lambda2 perturbation of every
            targeted weight, arXiv 2306.05670).
        mnemonic_margin (`float`, defaults to `1.0`): search: forget codes must end with a margin at most
            -mnemonic_margin times their original margin.
        mnemonic_retain_margin (`float`, defaults to `0.25`): search: retained codes must keep at least this fraction
            of their original margin. In [0, 1).
        mnemonic_direction (`str`, defaults to `"code"`): search: sign of the step, `"code"` (ascent on the codes'
            loss) or `"weight"` (shrink the output rows).
        lambda1 (`float`, defaults to `1e-3`), lambda2 (`float`, defaults to `10.0`): paper: step where no weight
            stands out, and cap of the largest step in a tensor (the paper's MNIST values).
    """

    variants: ClassVar[tuple[str, ...]] = ("search", "paper")

    mnemonic_variant: str = field(
        default="search",
        metadata={
            "help": "'search' (a Fisher-ratio step on the output layer grown until the forget codes are rejected) or "
            "'paper' (the paper's lambda1/lambda2 perturbation of every targeted weight); --method mnemonic also "
            "'deep' (remove the classes from the representation)."
        },
    )
    mnemonic_margin: float = field(
        default=1.0,
        metadata={"help": "search: forget codes must end with margin <= -mnemonic_margin x their original margin."},
    )
    mnemonic_retain_margin: float = field(
        default=0.25,
        metadata={"help": "search: retained codes must keep at least this fraction of their original margin."},
    )
    mnemonic_direction: str = field(
        default="code",
        metadata={
            "help": "search: sign of the weight edit, 'code' (ascent on the code's loss) or 'weight' (shrink the "
            "output rows)."
        },
    )
    lambda1: float = field(default=1e-3, metadata={"help": "paper: step where no weight stands out (MNIST 1e-3)."})
    lambda2: float = field(default=10.0, metadata={"help": "paper: cap of the largest step in a tensor (MNIST 10)."})

    def __post_init__(self):
        check_choice(self, "mnemonic_variant", self.variants)
        check_choice(self, "mnemonic_direction", ("code", "weight"))
        for name in ("mnemonic_margin", "lambda1", "lambda2"):
            check_number(self, name)
        check_number(self, "mnemonic_retain_margin", 0.0, 1.0, closed="[)")


@dataclass
class MnemonicDeepConfig(MnemonicHeadConfig):
    """Settings of method ``mnemonic``: the deep edit (``deep.py``), plus those of the head edit it runs for the
    ``"search"`` and ``"paper"`` variants and falls back to (see [`MnemonicHeadConfig`]).

    Args:
        mnemonic_variant (`str`, defaults to `"deep"`): `"deep"` (the forgotten classes' readout directions leave the
            representation; falls back to `"search"` for architectures without a plan or when `target_modules` is
            set), `"search"` or `"paper"` (the head edit of `mnemonic_head`).
        deep_ridge (`float`, defaults to `RIDGE` = 1.0): ridge strength of the readers' compensation, relative to the
            mean energy per input dimension.
        deep_alphas (`list[float]` or `None`, defaults to `None`): shares of the readout direction shared with the
            retained classes that are removed, tried in order (the first that keeps the retained classes is kept).
            `None`: the ladder ``deep.py`` picks (`ALPHAS` from the codes, `ALPHAS_FEW_SHOT` with retained samples,
            smaller ones on the plans measured to need them).
        deep_keep_margin (`float`, defaults to `KEEP_MARGIN` = 0.85): the retained codes must keep this fraction of
            their margin on average (and all stay correct) for a share to be kept.
        deep_max_retain_drop (`float`, defaults to `MAX_RETAIN_DROP` = 0.01): with retained samples, their accuracy
            may fall by at most this.
        deep_max_forget_per_class (`int`, defaults to `MAX_FORGET_PER_CLASS` = 32), deep_max_retain_samples (`int`,
            defaults to `MAX_RETAIN` = 256): the few-shot evidence the one-shot edit takes at most.
    """

    variants: ClassVar[tuple[str, ...]] = ("deep", "search", "paper")

    mnemonic_variant: str = field(
        default="deep",
        metadata={
            "help": "'deep' (mnemonic: remove the classes from the representation), 'search' (data-free step search "
            "on the codes, output layer only) or 'paper' (lambda1/lambda2). mnemonic_head: 'search' or 'paper'."
        },
    )
    deep_ridge: float = field(
        default=RIDGE, metadata={"help": "deep: ridge strength of the readers' compensation (relative)."}
    )
    deep_alphas: list[float] | None = field(
        default=None,
        metadata={
            "help": "deep: shares of the readout direction shared with the retained classes that are removed, tried "
            "in order (the first that keeps the retained classes is kept). Default: a ladder per plan and evidence."
        },
    )
    deep_keep_margin: float = field(
        default=KEEP_MARGIN, metadata={"help": "deep: average fraction of their margin the retained codes keep."}
    )
    deep_max_retain_drop: float = field(
        default=MAX_RETAIN_DROP, metadata={"help": "deep: largest fall of the retained samples' accuracy."}
    )
    deep_max_forget_per_class: int = field(
        default=MAX_FORGET_PER_CLASS, metadata={"help": "deep: most forget samples per class taken (few-shot)."}
    )
    deep_max_retain_samples: int = field(
        default=MAX_RETAIN, metadata={"help": "deep: most retained samples taken (few-shot)."}
    )

    def __post_init__(self):
        super().__post_init__()
        check_number(self, "deep_ridge")
        if self.deep_alphas is not None:
            self.deep_alphas = list(self.deep_alphas)
            bad = [a for a in self.deep_alphas if isinstance(a, bool) or not isinstance(a, (int, float))]
            if not self.deep_alphas or bad or not all(0.0 <= a <= 1.0 for a in self.deep_alphas):
                raise ValueError(
                    f"`deep_alphas` must be a non-empty list of numbers in [0, 1], got {self.deep_alphas!r}."
                )
        check_number(self, "deep_keep_margin", 0.0, 1.0, closed="[]")
        check_number(self, "deep_max_retain_drop", 0.0, 1.0, closed="[]")
        for name in ("deep_max_forget_per_class", "deep_max_retain_samples"):
            check_number(self, name, integer=True)
