"""UnlearningConfig: what to forget, with which method, and how the outcome is checked."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

CONFIG_FILE = "unlearning_config.json"
FORGET_SCOPES = ("classes", "samples")
BUILT_IN_METHODS = (
    "mnemonic",
    "mnemonic_head",
    "fisher_mask",
    "ssd",
    "fisher_noise",
    "logit_suppression",
    "neggrad_plus",
)
DEFAULT_METHOD = {"classes": "mnemonic", "samples": "neggrad_plus"}  # when `method` is not given
POSITIVE_FIELDS = ("mnemonic_margin", "lambda1", "lambda2", "ssd_alpha", "ssd_lambda", "noise_alpha")


@dataclass
class UnlearningConfig:
    r"""
    Configuration for [`FisherUnlearner`]: what to forget and how. Every field has the papers' default; ``method``
    picks which fields apply. Works with [`~transformers.HfArgumentParser`], so each field is a command-line flag.
    Save and load it with [`save_pretrained`] / [`from_pretrained`] (a sorted JSON file recording the library
    version).

    Parameters that control what is forgotten:
        method (`str`, defaults to `"mnemonic"` for classes, `"neggrad_plus"` for samples):
            A method registered in `hf_unlearn.methods.METHODS`: `"neggrad_plus"` (samples scope only, the default
            there: fine-tuning on the retained rows with forget-loss ascent up to chance level, see
            `finetune_fraction`), `"mnemonic"` (from the model's mnemonic codes, no
            training data; removes the forgotten classes from the representation, see `mnemonic_variant`),
            `"mnemonic_head"` (the same codes, output layer only: hides the classes' output), `"fisher_mask"`,
            `"ssd"`, `"fisher_noise"` (from forget and retain data) or `"logit_suppression"` (the baseline that only
            lowers the output bias).
        forget_scope (`str`, defaults to `"classes"`):
            What is forgotten: `"classes"` (every sample of `forget_classes`) or `"samples"` (exactly the training
            rows given as `forget_dataset`, or as `forget_rows` of a `train_dataset`, whatever their classes). A
            method declares the scopes it supports (`UnlearningMethod.scopes`): `fisher_mask`, `ssd` and
            `fisher_noise` do both; `mnemonic` (codes are per class) and `logit_suppression` (an output bias per
            class) only `"classes"`. In samples scope success is not accuracy 0 on the forgotten rows but looking
            like held-out data (see `verification_tolerance`).
        forget_classes (`list[str]`, defaults to `[]`):
            Classes to forget: ids or label names (e.g. `3` or `"LOC"`). Required in classes scope; must stay empty
            in samples scope (the rows say what is forgotten).
        seed (`int`, defaults to `0`):
            Seed for anything random (Fisher-noise draws, SSD's shuffled full-data pass).
        target_modules (`list[str]` or `None`, defaults to `None`):
            Parameters the edit may touch (module or parameter names, wildcards allowed). Default: the output layer
            for mnemonic `"search"`, the output bias for `"logit_suppression"`, every parameter otherwise.

    Parameters that control how the outcome is checked:
        verification_tolerance (`float`, defaults to `0.05`):
            Classes scope: after the edit, the forget classes' accuracy is measured on every evidence available (their
            learned codes, the forget samples, the forget-class rows of the evaluation data). The forgetting counts as
            verified when it is at most this on every one of them. Samples scope: the forget rows' accuracy (at their
            training labels) may exceed the held-out accuracy on `eval_dataset` by at most this, and their
            loss-based membership AUC against the held-out rows may exceed 0.5 by at most the larger of this and two
            standard errors of a chance AUC, and the held-out accuracy may fall by at most the larger of this and two
            binomial standard errors from that of the model before the edit (a wrecked model would otherwise make the
            forget rows "look like" held-out rows); without `eval_dataset` the outcome is "unverified".
            Classes scope also requires that the model recognised each forget class before the edit on some evidence
            (accuracy above this): a class it already got wrong has nothing to forget and is not counted.
        max_retained_drop (`float`, defaults to `0.05`):
            Classes scope: the retained classes' accuracy is measured before and after the edit on the same evidence
            (their codes, up to 512 retained samples, the retained rows of the evaluation data); a fall of more than
            this on any of them makes the edit "incomplete" (refused and restored unless `allow_incomplete`).
        allow_incomplete (`bool`, defaults to `False`):
            By default an edit that cannot be verified (accuracy above the tolerance, or no evidence at all) raises
            `UnlearningIncompleteError` and the model is restored. With `True` the edit is kept and the report
            records `"incomplete"` or `"unverified"`.

    Parameters that control the mnemonic method:
        mnemonic_variant (`str`, defaults to `"deep"`):
            `"deep"` (method `"mnemonic"` only: the forgotten classes' readout directions leave every layer of the
            representation; falls back to `"search"` for architectures it does not support or when
            `target_modules` is set), `"search"` (data-free step search on the codes, edits the output layer; what
            `"mnemonic_head"` always does unless `"paper"`) or `"paper"` (the paper's lambda1/lambda2 perturbation).
        mnemonic_margin (`float`, defaults to `1.0`):
            search: forget codes must end with a margin at most -mnemonic_margin times their original margin.
        mnemonic_retain_margin (`float`, defaults to `0.25`):
            search: retained codes must keep at least this fraction of their original margin. In [0, 1).
        mnemonic_direction (`str`, defaults to `"code"`):
            search: sign of the step, `"code"` (ascent on the codes' loss) or `"weight"` (shrink the output rows).
        lambda1 (`float`, defaults to `1e-3`), lambda2 (`float`, defaults to `10.0`):
            paper: step where no weight stands out, and cap of the largest step in a tensor (the paper's MNIST
            values).

    Parameters that control Fisher masking:
        mask_ratio (`float`, defaults to `0.02`):
            Fraction of the scored weights set to zero. In (0, 1).
        mask_fisher_kind (`str`, defaults to `"batch_true"`):
            Fisher kind for the scores (`"batch_true"` as the authors, `"empirical"`, `"true"`, `"batch"`).

    Parameters that control the peer baselines:
        ssd_alpha (`float`, defaults to `10.0`), ssd_lambda (`float`, defaults to `1.0`):
            SSD's selection threshold and dampening constant.
        noise_alpha (`float`, defaults to `1e-6`):
            Fisher forgetting's noise scale.

    Parameters that control the rows recipe (`"neggrad_plus"`, samples scope):
        finetune_fraction (`float`, defaults to `0.1`):
            Optimizer steps as a fraction of the original training run's, read from the `trainer_state.json` that
            `Trainer` writes beside the model (else in its last `checkpoint-*`), else from the `training_args.json`
            recipe that `MnemonicTrainer` saves (its epochs over the retained plus forgotten rows). In (0, 1].
        finetune_max_steps (`int` or `None`, defaults to `None`):
            The number of steps, instead of `finetune_fraction` (needed when the model folder holds neither file;
            without either the recipe makes one pass over the retained rows and says so in the report).
        finetune_max_seconds (`float` or `None`, defaults to `None`):
            Wall-clock cap on the recipe (seconds); it stops at the first step past it.
        finetune_learning_rate (`float` or `None`), finetune_batch_size (`int` or `None`), defaults to `None`:
            Default: the original run's (peak logged learning rate and batch size in `trainer_state.json`, else the
            `training_args.json` recipe's), else 5e-5 and 16.
        forget_ascent_fraction (`float`, defaults to `0.5`):
            Fraction of the steps that also push the forget rows' loss up to chance level (the rest fine-tune on the
            retained rows only). In [0, 1]; 0 is plain fine-tuning on the retained rows.
        forget_ascent_target (`str`, defaults to `"auto"`):
            The loss each forget row is pushed up to: `"probe"` (per row, what a linear probe fitted on the retained
            rows' features gives it, at most chance level: ordinary rows end near held-out rows, mislabeled rows
            higher), `"chance"` (log of the number of classes) or `"auto"` (`"chance"` when the rows' labels are
            concentrated on one class far beyond the retained rows' share of it, as poisoned rows relabelled to a
            backdoor's target class are; else `"probe"`).

    Parameters that control one-shot edits of rows (`"fisher_mask"`, `"ssd"`, `"fisher_noise"` in samples scope):
        strength_search (`bool`, defaults to `True`):
            With `eval_dataset` (held-out rows), the edit's strength is chosen from the held-out rows: from weak to
            the configured value (`mask_ratio`, `ssd_alpha`, `noise_alpha` is the strongest rung), the first strength
            whose edit passes the samples verification is kept; none passing, the model is restored and the edit is
            reported incomplete. `False`: the configured strength, once.

    Parameters that control the Fisher passes:
        fisher_batch_size (`int`, defaults to `16`):
            Samples per Fisher chunk or mini-batch.
        max_forget_samples (`int` or `None`), max_retain_samples (`int` or `None`), defaults to `None`:
            Caps on the samples the Fisher passes read.
    """

    # Parameters that control what is forgotten
    method: str | None = field(
        default=None,
        metadata={
            "help": f"Unlearning method: a name registered in hf_unlearn.methods.METHODS {BUILT_IN_METHODS}. "
            "Default: mnemonic for --forget_scope classes, neggrad_plus for --forget_scope samples."
        },
    )
    forget_scope: str = field(
        default="classes",
        metadata={
            "help": "'classes' (forget every sample of --forget_classes) or 'samples' (forget exactly the given "
            "training rows, whatever their classes; fisher_mask, ssd, fisher_noise)."
        },
    )
    forget_classes: list[str] = field(
        default_factory=list,
        metadata={"help": "Classes to forget: ids or label names (e.g. 3 or 'LOC'); empty in samples scope."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for anything random (Fisher-noise draws, SSD's shuffle)."})
    target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Parameters the edit may touch (module/parameter names, wildcards allowed). Default: the output "
            "layer for mnemonic 'search', the output bias for logit_suppression, every parameter otherwise."
        },
    )

    # Parameters that control how the outcome is checked
    verification_tolerance: float = field(
        default=0.05,
        metadata={
            "help": "Largest forget-class accuracy, on every evidence available (learned codes, forget samples, "
            "forget-class rows of the eval data), at which the forgetting counts as verified. Samples scope: how far the "
            "forget rows' accuracy may exceed the held-out rows' and the held-out accuracy may fall (at least 2 s.e.)."
        },
    )
    max_retained_drop: float = field(
        default=0.05,
        metadata={
            "help": "Classes scope: largest fall of the retained classes' accuracy, on every evidence measured before "
            "and after the edit (their codes, retained samples, retained rows of the eval data), at which the "
            "forgetting counts as verified; a larger fall makes the edit incomplete (refused and restored)."
        },
    )
    allow_incomplete: bool = field(
        default=False,
        metadata={
            "help": "Keep an edit whose forgetting is incomplete or cannot be checked (the report says so) instead "
            "of raising UnlearningIncompleteError and restoring the model."
        },
    )

    # Parameters that control the mnemonic method
    mnemonic_variant: str = field(
        default="deep",
        metadata={
            "help": "'deep' (mnemonic: remove the classes from the representation), 'search' (data-free step search "
            "on the codes, output layer only) or 'paper' (lambda1/lambda2)."
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

    # Parameters that control Fisher masking
    mask_ratio: float = field(default=0.02, metadata={"help": "fisher_mask: fraction of scored weights zeroed."})
    mask_fisher_kind: str = field(
        default="batch_true", metadata={"help": "fisher_mask: Fisher kind ('batch_true' as the authors, 'empirical')."}
    )

    # Parameters that control the peer baselines
    ssd_alpha: float = field(default=10.0, metadata={"help": "ssd: selection threshold (10; 5 for ViT in SSD)."})
    ssd_lambda: float = field(default=1.0, metadata={"help": "ssd: dampening constant."})
    noise_alpha: float = field(default=1e-6, metadata={"help": "fisher_noise: noise scale alpha."})

    # Parameters that control the rows recipe (neggrad_plus)
    finetune_fraction: float = field(
        default=0.1,
        metadata={"help": "neggrad_plus: steps as a fraction of the original run's (trainer_state.json)."},
    )
    finetune_max_steps: int | None = field(
        default=None, metadata={"help": "neggrad_plus: number of steps (instead of finetune_fraction)."}
    )
    finetune_max_seconds: float | None = field(
        default=None, metadata={"help": "neggrad_plus: wall-clock cap in seconds."}
    )
    finetune_learning_rate: float | None = field(
        default=None, metadata={"help": "neggrad_plus: learning rate (default: the original run's peak, else 5e-5)."}
    )
    finetune_batch_size: int | None = field(
        default=None, metadata={"help": "neggrad_plus: batch size (default: the original run's, else 16)."}
    )
    forget_ascent_fraction: float = field(
        default=0.5,
        metadata={"help": "neggrad_plus: fraction of the steps pushing the forget rows' loss up to chance level."},
    )
    forget_ascent_target: str = field(
        default="auto",
        metadata={
            "help": "neggrad_plus: the loss each forget row is pushed up to: 'probe' (what a linear probe fitted on the "
            "retained rows' features gives it, at most chance level), 'chance' (log of the number of classes) or "
            "'auto' (chance when the rows' labels are concentrated on one class as a backdoor's are, else probe)."
        },
    )

    # Parameters that control one-shot edits of rows
    strength_search: bool = field(
        default=True,
        metadata={
            "help": "Samples scope, fisher_mask / ssd / fisher_noise: choose the edit's strength from the held-out "
            "rows (eval_dataset), up to the configured value; False: the configured strength once."
        },
    )

    # Parameters that control the Fisher passes
    fisher_batch_size: int = field(
        default=16,
        metadata={
            "help": "Samples per Fisher chunk / mini-batch. The batched kinds depend on it: the Fisher-masking "
            "authors use 128 and SSD's 64 (set those to reproduce them); 16 is kept as the default because the "
            "library's measured results and small-data defaults were set with it."
        },
    )
    max_forget_samples: int | None = field(default=None, metadata={"help": "Cap on forget samples for the Fisher."})
    max_retain_samples: int | None = field(default=None, metadata={"help": "Cap on retain samples for the Fisher."})

    def __post_init__(self):
        from .methods import METHODS

        if self.method is None:  # the scope's default method
            self.method = DEFAULT_METHOD.get(self.forget_scope, DEFAULT_METHOD["classes"])
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {sorted(METHODS)}, got {self.method!r}.")
        if isinstance(self.forget_classes, (int, str)):
            self.forget_classes = [self.forget_classes]
        self.forget_classes = list(self.forget_classes)
        if self.forget_scope not in FORGET_SCOPES:
            raise ValueError(f"`forget_scope` must be one of {FORGET_SCOPES}, got {self.forget_scope!r}.")
        if self.forget_scope == "samples" and self.forget_classes:
            raise ValueError(
                "`forget_classes` must be empty with forget_scope='samples': the rows given say what is forgotten "
                "(use forget_scope='classes' to forget whole classes)."
            )
        scopes = getattr(METHODS[self.method], "scopes", ("classes",))
        if self.forget_scope not in scopes:
            able = sorted(n for n, m in METHODS.items() if self.forget_scope in getattr(m, "scopes", ("classes",)))
            raise ValueError(
                f"`forget_scope` {self.forget_scope!r} is not supported by method {self.method!r} (it forgets "
                f"{' or '.join(scopes)} only); methods that do: {able}."
            )
        if self.mnemonic_direction not in ("code", "weight"):
            raise ValueError(f"`mnemonic_direction` must be 'code' or 'weight', got {self.mnemonic_direction!r}.")
        if self.mnemonic_variant not in ("deep", "search", "paper"):
            raise ValueError(f"`mnemonic_variant` must be 'deep', 'search' or 'paper', got {self.mnemonic_variant!r}.")
        for name in POSITIVE_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
                raise ValueError(f"`{name}` must be a positive finite number, got {v!r}.")
        if not 0.0 <= self.mnemonic_retain_margin < 1.0:
            raise ValueError(f"`mnemonic_retain_margin` must lie in [0, 1), got {self.mnemonic_retain_margin!r}.")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"`mask_ratio` must lie in (0, 1), got {self.mask_ratio!r}.")
        if self.mask_fisher_kind not in ("batch_true", "empirical", "true", "batch"):
            raise ValueError(f"`mask_fisher_kind` is not a Fisher kind: {self.mask_fisher_kind!r}.")
        t = self.verification_tolerance
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t < 1.0:
            raise ValueError(f"`verification_tolerance` must lie in [0, 1), got {t!r}.")
        d = self.max_retained_drop
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d <= 1.0:
            raise ValueError(f"`max_retained_drop` must lie in [0, 1], got {d!r}.")
        if not isinstance(self.allow_incomplete, bool):
            raise ValueError(f"`allow_incomplete` must be True or False, got {self.allow_incomplete!r}.")
        f = self.finetune_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < f <= 1.0:
            raise ValueError(f"`finetune_fraction` must lie in (0, 1], got {f!r}.")
        f = self.forget_ascent_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
            raise ValueError(f"`forget_ascent_fraction` must lie in [0, 1], got {f!r}.")
        for name in ("finetune_max_steps", "finetune_batch_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"`{name}` must be a positive integer or None, got {v!r}.")
        for name in ("finetune_max_seconds", "finetune_learning_rate"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf")):
                raise ValueError(f"`{name}` must be a positive finite number or None, got {v!r}.")
        if self.forget_ascent_target not in ("auto", "probe", "chance"):
            raise ValueError(
                f"`forget_ascent_target` must be 'auto', 'probe' or 'chance', got {self.forget_ascent_target!r}."
            )
        if not isinstance(self.strength_search, bool):
            raise ValueError(f"`strength_search` must be True or False, got {self.strength_search!r}.")
        if int(self.fisher_batch_size) < 1:
            raise ValueError(f"`fisher_batch_size` must be >= 1, got {self.fisher_batch_size}.")
        for name in ("max_forget_samples", "max_retain_samples"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"`{name}` must be >= 1 or None, got {v}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Writes ``unlearning_config.json`` (sorted keys, with the library version) into ``save_directory``."""
        from . import __version__

        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_FILE)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({**self.to_dict(), "hf_unlearn_version": __version__}, f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> UnlearningConfig:
        """Reads ``unlearning_config.json`` from ``directory`` (or the file itself); unknown keys are ignored."""
        path = os.path.join(directory, CONFIG_FILE) if os.path.isdir(directory) else str(directory)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"`directory` {str(directory)!r} holds no {CONFIG_FILE}.")
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})
