"""MnemonicTrainer: a drop-in Trainer that also teaches each class its mnemonic code."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from ..utils import IMAGE, check_labels, detect_modality, get_logger, num_labels_of, unwrap_model
from .codebook import MnemonicCodebook
from .config import MnemonicConfig

logger = get_logger(__name__)


def class_mix_ratios(counts: Any, mix_ratio: float, max_ratio: float) -> torch.Tensor:
    """Per-class replacement rates that present every class's code equally often.

    The rates replace ``mix_ratio`` of all examples overall (``sum(rate_c * n_c) == mix_ratio * sum(n_c)``) and give
    each class with examples the same expected number of code presentations ``rate_c * n_c``, except that no rate
    exceeds ``max(max_ratio, mix_ratio)``: the budget a capped (rare) class cannot use goes to the others equally.
    Equal counts give ``mix_ratio`` for every class. Classes without examples keep ``mix_ratio`` (never drawn).

    Args:
        counts: number of training examples per class, shape ``(num_labels,)``.
        mix_ratio: t_mix, the overall fraction of replaced examples.
        max_ratio: the largest rate a class may get.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
    rates = torch.full_like(counts, float(mix_ratio))
    present = counts > 0
    if mix_ratio <= 0 or not present.any():
        return rates.float()
    cap = max(float(max_ratio), float(mix_ratio))
    budget = float(mix_ratio) * float(counts.sum())
    capped = torch.zeros_like(present)
    while True:
        free = present & ~capped
        if not free.any():
            break
        per_class = (budget - float((cap * counts[capped]).sum())) / int(free.sum())
        over = free & (per_class > cap * counts)
        if not over.any():
            rates[free] = per_class / counts[free]
            break
        capped |= over
    rates[capped] = cap
    return rates.float()


class MnemonicTrainer(Trainer):
    """[`~transformers.Trainer`] that replaces each training example by its class's mnemonic code with probability
    ``args.mnemonic_mix_ratio`` (label kept; arXiv 2306.05670). Evaluation and prediction are untouched.

    With ``args.mnemonic_balance_classes`` (the default) the probability depends on the example's class so that
    every code is shown about equally often while t_mix of all examples are replaced overall (see
    [`class_mix_ratios`]); on class-balanced data this is exactly the paper's single rate. The rates are in
    ``trainer.class_mix_ratios``.

    The codebook is built from the model (``config.num_labels``, input shape) and ``args.mnemonic_seed`` unless one
    is given, and is written beside the weights by ``save_model()`` and every checkpoint. Resuming from a checkpoint
    reloads the codes stored there.

    Args:
        model: a transformers classifier taking ``pixel_values`` or ``input_ids``.
        args: a [`MnemonicConfig`].
        codebook: an existing [`MnemonicCodebook`] for this model (optional).
        **kwargs: everything [`~transformers.Trainer`] takes (``train_dataset``, ``data_collator``,
            ``processing_class``, ``callbacks``, ...).
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        args: MnemonicConfig | None = None,
        *trainer_args: Any,
        codebook: MnemonicCodebook | None = None,
        **kwargs: Any,
    ):
        if model is None:
            raise ValueError("`model` is required: MnemonicTrainer needs the classifier to build its codes for.")
        if args is None:
            args = MnemonicConfig(output_dir="trainer_output", report_to="none")
        if not isinstance(args, MnemonicConfig):
            raise TypeError(
                f"`args` must be a MnemonicConfig (a TrainingArguments subclass), got {type(args).__name__}; "
                "build it with MnemonicConfig(output_dir=..., mnemonic_mix_ratio=...)."
            )
        self.modality = detect_modality(model)
        self.num_labels = num_labels_of(model)
        super().__init__(model, args, *trainer_args, **kwargs)
        if codebook is None:
            codebook = MnemonicCodebook.for_model(
                model,
                seed=args.mnemonic_seed,
                codes_per_class=args.mnemonic_codes_per_class,
                distribution=args.mnemonic_distribution,
                text_length=args.mnemonic_text_length,
                processing_class=self.processing_class,
            )
        else:
            codebook.check_compatible(model, argument="codebook")
        self.codebook = codebook
        self._mix_step = (-1, 0)  # (global_step, micro-batch index within it)
        #: per-class replacement rates, shape (num_labels,); None = t_mix for every class
        self.class_mix_ratios: torch.Tensor | None = None
        if self.train_dataset is not None:
            self._set_class_mix_ratios(self._check_dataset_labels(self.train_dataset, "train_dataset"))

    # ------------------------------------------------------------------ input checks
    def _check_dataset_labels(self, dataset: Any, argument: str) -> torch.Tensor | None:
        """Checks the class ids of a dataset with a label column and returns them (None when they cannot be read
        up front: a torch or streaming dataset, whose labels are then checked batch by batch)."""
        column_names = getattr(dataset, "column_names", None)
        if column_names is None or isinstance(dataset, torch.utils.data.IterableDataset):
            return None
        for name in ("labels", "label"):
            if name in column_names:
                # one columnar read (row-by-row access of a datasets column costs ~0.3 s per 1,000 rows)
                if hasattr(dataset, "select_columns"):
                    labels = torch.as_tensor(dataset.select_columns([name]).with_format("numpy")[:][name])
                else:
                    labels = torch.as_tensor(dataset[name])
                if labels.numel() and labels.is_floating_point():
                    raise ValueError(f"`{argument}` column {name!r} must hold integer class ids.")
                check_labels(labels, self.num_labels, argument=f"{argument}['{name}']")
                return labels.long().flatten()
        return None

    def _set_class_mix_ratios(self, labels: torch.Tensor | None) -> None:
        self.class_mix_ratios = None
        if not self.args.mnemonic_balance_classes or self.args.mnemonic_mix_ratio == 0:
            return
        if labels is None or labels.numel() == 0:
            logger.info(
                "mnemonic_balance_classes: the training labels cannot be read up front (torch or streaming dataset); "
                "every class uses mnemonic_mix_ratio=%s.",
                self.args.mnemonic_mix_ratio,
            )
            return
        counts = torch.bincount(labels, minlength=self.num_labels)
        rates = class_mix_ratios(counts, self.args.mnemonic_mix_ratio, self.args.mnemonic_max_class_mix_ratio)
        self.class_mix_ratios = rates
        if (rates - self.args.mnemonic_mix_ratio).abs().max() > 1e-3:
            logger.info(
                "Class-balanced code replacement rates (per class, mean %s): %s",
                self.args.mnemonic_mix_ratio,
                ", ".join(f"{c}: {float(r):.3f}" for c, r in enumerate(rates)),
            )

    # ------------------------------------------------------------------ mixing
    def _generator(self) -> torch.Generator:
        step = self.state.global_step
        micro = self._mix_step[1] + 1 if self._mix_step[0] == step else 0
        self._mix_step = (step, micro)
        key = f"{self.args.mnemonic_seed}:{self.args.process_index}:{step}:{micro}".encode()
        return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))

    def mix_codes(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Returns a copy of ``inputs`` where each example is replaced by its class's code with probability t_mix."""
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError("MnemonicTrainer needs `labels` in every training batch (the class of each example).")
        check_labels(labels, self.num_labels)
        gen = self._generator()
        if self.class_mix_ratios is None:
            threshold = self.args.mnemonic_mix_ratio
        else:
            threshold = self.class_mix_ratios[labels.detach().flatten().cpu().long()]
        mask = torch.rand(labels.shape[0], generator=gen) < threshold  # (B,)
        if not mask.any():
            return inputs
        codes = self.codebook.codes_for_labels(labels[mask.to(labels.device)], generator=gen)
        inputs = dict(inputs)
        if self.modality == IMAGE:
            pv = inputs["pixel_values"].clone()
            pv[mask.to(pv.device)] = codes["pixel_values"].to(pv.device, pv.dtype)
            inputs["pixel_values"] = pv
            return inputs
        return self._mix_text(inputs, mask, codes)

    def _mix_text(self, inputs: dict[str, Any], mask: torch.Tensor, codes: dict[str, torch.Tensor]) -> dict[str, Any]:
        ids = inputs["input_ids"]
        b, m = ids.shape
        code_len = codes["input_ids"].shape[1]
        width = max(m, code_len)
        pad_id = getattr(unwrap_model(self.model).config, "pad_token_id", None) or 0
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            if key not in inputs:
                continue
            t = inputs[key]
            fill = pad_id if key == "input_ids" else 0
            out = torch.full((b, width), fill, dtype=t.dtype, device=t.device)
            out[:, :m] = t
            rows = mask.nonzero().flatten().to(t.device)
            out[rows] = fill
            src = codes.get(key, torch.zeros_like(codes["input_ids"]))
            out[rows, :code_len] = src.to(t.device, t.dtype)
            inputs[key] = out
        return inputs

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        # Only labels decide num_items_in_batch, and replacing inputs keeps labels: loss scaling stays correct.
        return super().training_step(model, self.mix_codes(inputs), num_items_in_batch)

    # ------------------------------------------------------------------ saving and resuming
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self.args.should_save:
            # written before the weights so that a push started by save_model() carries the codes too
            self.codebook.save_pretrained(output_dir)
        super().save_model(output_dir, _internal_call=_internal_call)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any):
        if self.train_dataset is not None:
            self._set_class_mix_ratios(self._check_dataset_labels(self.train_dataset, "train_dataset"))
        checkpoint = resume_from_checkpoint
        if checkpoint is True or (isinstance(checkpoint, bool) is False and checkpoint == "last"):
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, (str, os.PathLike)) and MnemonicCodebook.exists(checkpoint):
            stored = MnemonicCodebook.from_pretrained(checkpoint)
            stored.check_compatible(self.model, argument="resume_from_checkpoint")
            if not stored.equals(self.codebook):
                logger.warning("Resuming with the mnemonic codes stored in %s (they differ from `args`).", checkpoint)
            self.codebook = stored
        return super().train(resume_from_checkpoint, *args, **kwargs)
