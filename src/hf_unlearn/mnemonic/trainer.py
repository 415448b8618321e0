"""MnemonicTrainer: a drop-in Trainer that also teaches each class its mnemonic code."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from ..data_utils import LABEL_COLUMNS, encode_labels, label_column
from ..hub.trainer import UnlearningCardMixin
from ..retrain import save_training_recipe
from ..utils import (
    IMAGE,
    check_labels,
    detect_modality,
    get_logger,
    id2label_of,
    num_labels_of,
    unwrap_model,
)
from .codebook import MnemonicCodebook
from .config import MnemonicConfig

logger = get_logger(__name__)


RARE_CLASS_FRACTION = 0.5  # classes with fewer examples than this fraction of the mean count get topped up
MIN_CODE_PRESENTATIONS = 5  # expected presentations of each class's code over a run below which training refuses


def code_balance(counts: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """How replaced examples are shared out so that codes of rare classes are shown as often as an average class's.

    Every example is replaced with the same probability t_mix whatever its class (so every class keeps 1 - t_mix of
    its real examples, as in the paper). A replaced example normally gets its own class's code and keeps its
    label. Classes with fewer than ``RARE_CLASS_FRACTION`` x the mean count are *rare*: their codes would be shown
    far less often than the others'. To top them up to the mean, classes above the mean donate part of their
    replaced examples: a donated slot holds a rare class's code with that class's label. Donors give in proportion
    to their surplus over the mean; rare classes receive in proportion to their deficit. Expected code
    presentations then equal ``t_mix x mean count`` for every rare class, and no class goes below the mean.

    Args:
        counts: number of training examples per class, shape ``(num_labels,)``.

    Returns:
        ``None`` when no class is rare (the paper's scheme applies unchanged), else ``(donate, receive)``:
        ``donate[y]`` is the probability that a replaced example of class ``y`` donates its slot, ``receive`` the
        distribution over classes of the codes placed in donated slots.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
    present = counts > 0
    if int(present.sum()) < 2:
        return None
    mean = float(counts[present].mean())
    rare = present & (counts < RARE_CLASS_FRACTION * mean)
    if not rare.any():
        return None
    deficit = torch.where(rare, mean - counts, torch.zeros_like(counts))
    surplus = (counts - mean).clamp(min=0)
    # sum(surplus) = sum over below-mean classes of (mean - n) >= sum(deficit), so donation never exceeds 1
    share = float(deficit.sum()) / float(surplus.sum())
    donate = torch.where(counts > 0, share * surplus / counts.clamp(min=1), torch.zeros_like(counts)).clamp(max=1)
    receive = deficit / deficit.sum()
    return donate.float(), receive.float()


def expected_code_presentations(counts: Any, mix_ratio: float) -> torch.Tensor:
    """Expected code presentations per class in one pass over a training set with these class ``counts``."""
    counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
    shown = float(mix_ratio) * counts
    balance = code_balance(counts)
    if balance is not None:
        donate, receive = (t.double() for t in balance)
        given = shown * donate
        shown = shown - given + float(given.sum()) * receive
    return shown.float()


class MnemonicTrainer(UnlearningCardMixin, Trainer):
    """[`~transformers.Trainer`] that replaces each training example by its class's mnemonic code with probability
    ``args.mnemonic_mix_ratio`` (label kept; arXiv 2306.05670). Evaluation and prediction are untouched.

    With ``args.mnemonic_balance_classes`` (the default) codes of rare classes (fewer than half the mean count of
    examples) are topped up to an average class's number of presentations, using replaced slots donated by classes
    above the mean (see [`code_balance`]). The replacement rate stays t_mix for every class. Without rare classes
    this is exactly the paper's scheme. ``trainer.code_balance`` holds the sharing (``None`` when inactive).

    The codebook is built from the model (``config.num_labels``, input shape) and ``args.mnemonic_seed`` unless one
    is given, and is written beside the weights by ``save_model()`` and every checkpoint. Resuming from a checkpoint
    reloads the codes stored there.

    ``train()`` refuses a ``mnemonic_mix_ratio`` that cannot teach the codes: 0, or (labels known up front) one
    that shows some class's code fewer than ``MIN_CODE_PRESENTATIONS`` times in expectation over the run (a run set
    by ``max_steps`` counts as at least one epoch). At the end of training it checks that every code is classified
    as its class, warns with the classes whose codes are not, and records both lists in the codebook's metadata
    (``learned_classes`` / ``unlearned_classes``, saved with it): forgetting with codes the model never learned
    cannot work, and the unlearner refuses to claim it.

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
        self.train_dataset = self._prepare_labels(self.train_dataset, "train_dataset")
        if isinstance(self.eval_dataset, dict):
            self.eval_dataset = {
                k: self._prepare_labels(v, f"eval_dataset[{k!r}]") for k, v in self.eval_dataset.items()
            }
        else:
            self.eval_dataset = self._prepare_labels(self.eval_dataset, "eval_dataset")
        if codebook is None:
            codebook = MnemonicCodebook.for_model(
                model,
                seed=args.mnemonic_seed,
                codes_per_class=args.mnemonic_codes_per_class,
                distribution=args.mnemonic_distribution,
                text_length=args.mnemonic_text_length,
                processing_class=self.processing_class,
                input_shape=self._data_image_shape(model),
            )
        else:
            codebook.check_compatible(model, argument="codebook")
        self.codebook = codebook
        #: where training started, written to training_args.json by save_model (``{"model": "tiny-vit"}``, a Hub id);
        #: set by ``hf-unlearn train``; by default the model's Hub id when it was loaded by one
        self.start_model: dict[str, Any] | None = None
        if self.base_model_id:  # beside the codes, so that forgetting carries it to the unlearning card
            codebook.metadata["base_model"] = self.base_model_id
        self._mix_step = (-1, 0)  # (global_step, micro-batch index within it)
        #: (donate, receive) per class when rare classes' codes are topped up, else None (see `code_balance`)
        self.code_balance: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.train_dataset is not None:
            self._set_code_balance(self._check_dataset_labels(self.train_dataset, "train_dataset"))

    # ------------------------------------------------------------------ input checks
    def _data_image_shape(self, model: nn.Module) -> tuple[int, ...] | None:
        """Shape of the training images for a vision config without ``image_size`` (ResNet), else ``None``."""
        if self.modality != IMAGE or getattr(unwrap_model(model).config, "image_size", None) is not None:
            return None
        hint = (
            "`model.config` has no `image_size` (e.g. ResNet) and the shape of the codes cannot be read from "
            "`train_dataset`"
        )
        fix = "; pass `codebook=MnemonicCodebook.for_model(model, input_shape=(channels, height, width))`."
        if self.train_dataset is None or isinstance(self.train_dataset, torch.utils.data.IterableDataset):
            raise ValueError(hint + " (none given)" + fix)
        try:
            example = self.train_dataset[0]
            if "pixel_values" not in example and self.data_collator is not None:
                example = self.data_collator([example])
                example = {k: v[0] for k, v in example.items()}
            pixels = torch.as_tensor(example["pixel_values"])
        except Exception as e:  # noqa: BLE001 - any failure to read one example means the shape is unknown
            raise ValueError(f"{hint} ({type(e).__name__}: {e}){fix}") from e
        if pixels.dim() != 3:
            raise ValueError(f"{hint}: its first example's pixel_values has shape {tuple(pixels.shape)}{fix}")
        return tuple(int(v) for v in pixels.shape)

    def _prepare_labels(self, dataset: Any, argument: str) -> Any:
        """``dataset`` with label names (strings, or a ``ClassLabel`` named otherwise than the model's classes)
        turned into the model's class ids by its ``config.label2id``; an empty ``train_dataset`` is refused."""
        if dataset is None or isinstance(dataset, torch.utils.data.IterableDataset):
            return dataset
        if argument == "train_dataset" and hasattr(dataset, "__len__") and len(dataset) == 0:
            raise ValueError("`train_dataset` is empty (0 rows): MnemonicTrainer needs labelled examples to train on.")
        column_names = getattr(dataset, "column_names", None)
        if column_names is None or not any(c in column_names for c in LABEL_COLUMNS):
            return dataset
        name = label_column(column_names, argument)
        return encode_labels(dataset, name, id2label_of(self.model), argument=argument, shown=name)

    def _check_dataset_labels(self, dataset: Any, argument: str) -> torch.Tensor | None:
        """Checks the class ids of a dataset with a label column and returns them (None when they cannot be read
        up front: a torch or streaming dataset, whose labels are then checked batch by batch)."""
        column_names = getattr(dataset, "column_names", None)
        if column_names is None or isinstance(dataset, torch.utils.data.IterableDataset):
            return None
        if not any(c in column_names for c in LABEL_COLUMNS):
            return None
        name = label_column(column_names, argument)
        # one columnar read (row-by-row access of a datasets column costs ~0.3 s per 1,000 rows)
        try:
            if hasattr(dataset, "select_columns"):
                labels = torch.as_tensor(dataset.select_columns([name]).with_format("numpy")[:][name])
            else:
                labels = torch.as_tensor(dataset[name])
        except (TypeError, ValueError) as e:  # e.g. label names in a dict of lists
            raise ValueError(
                f"`{argument}` column {name!r} must hold class ids (label names are mapped by the model's label2id "
                f"in a datasets.Dataset only; {type(e).__name__})."
            ) from e
        if labels.numel() and labels.is_floating_point():
            raise ValueError(f"`{argument}` column {name!r} must hold integer class ids.")
        check_labels(labels, self.num_labels, argument=f"{argument}['{name}']")
        return labels.long().flatten()

    def _set_code_balance(self, labels: torch.Tensor | None) -> None:
        self.code_balance = None
        if not self.args.mnemonic_balance_classes or self.args.mnemonic_mix_ratio == 0:
            return
        if labels is None or labels.numel() == 0:
            logger.info(
                "mnemonic_balance_classes: the training labels cannot be read up front (torch or streaming dataset); "
                "every replaced example gets its own class's code."
            )
            return
        counts = torch.bincount(labels, minlength=self.num_labels)
        self.code_balance = code_balance(counts)
        if self.code_balance is not None:
            shown = expected_code_presentations(counts, self.args.mnemonic_mix_ratio)
            logger.info(
                "Rare classes get their codes topped up from donated slots; expected code presentations per epoch "
                "(balanced vs own-class only): %s",
                ", ".join(
                    f"{c}: {float(x):.0f} vs {float(n) * self.args.mnemonic_mix_ratio:.0f}"
                    for c, (x, n) in enumerate(zip(shown, counts))
                ),
            )

    # ------------------------------------------------------------------ mixing
    def _generator(self) -> torch.Generator:
        step = self.state.global_step
        micro = self._mix_step[1] + 1 if self._mix_step[0] == step else 0
        self._mix_step = (step, micro)
        key = f"{self.args.mnemonic_seed}:{self.args.process_index}:{step}:{micro}".encode()
        return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))

    def mix_codes(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Returns a copy of ``inputs`` where each example is replaced by its class's code with probability t_mix.

        With class balancing active (``self.code_balance``), a replaced slot of a class above the mean may instead
        carry a rare class's code, and then that class's label; the caller's tensors are never edited in place.
        """
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError("MnemonicTrainer needs `labels` in every training batch (the class of each example).")
        check_labels(labels, self.num_labels)
        gen = self._generator()
        mask = torch.rand(labels.shape[0], generator=gen) < self.args.mnemonic_mix_ratio  # (B,)
        if not mask.any():
            return inputs
        inputs = dict(inputs)
        code_labels = labels[mask.to(labels.device)]
        if self.code_balance is not None:
            donate, receive = self.code_balance
            own = code_labels.detach().cpu().long()
            gives = torch.rand(own.shape[0], generator=gen) < donate[own]
            if gives.any():
                own = own.clone()
                own[gives] = torch.multinomial(receive, int(gives.sum()), replacement=True, generator=gen)
                code_labels = own.to(labels.device, labels.dtype)
                new_labels = labels.clone()
                new_labels[mask.to(labels.device)] = code_labels
                inputs["labels"] = new_labels  # a donated slot carries the rare class's code and label
        codes = self.codebook.codes_for_labels(code_labels, generator=gen)
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
        # num_items_in_batch counts the labels; mixing never adds, drops or ignores one, so loss scaling stays correct.
        return super().training_step(model, self.mix_codes(inputs), num_items_in_batch)

    # ------------------------------------------------------------------ saving and resuming
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self.args.should_save:
            # written before the weights so that a push started by save_model() carries the codes too
            self.codebook.save_pretrained(output_dir)
            # the recipe, readable without unpickling (hf_unlearn.retrain trains references with it)
            rows = self.train_dataset
            rows = (
                len(rows)
                if hasattr(rows, "__len__") and not isinstance(rows, torch.utils.data.IterableDataset)
                else None
            )
            save_training_recipe(output_dir, self.args, self.start_model or self._hub_start(), rows)
        super().save_model(output_dir, _internal_call=_internal_call)

    def _hub_start(self) -> dict[str, Any] | None:
        """Where the model was loaded from: ``{"model": hub_id}`` (a Hub id, or a Hub cache snapshot of one),
        ``{"local": True}`` for a local folder (never recorded by path: it would be published), else None."""
        from ..hub.lineage import hub_id_of

        name = str(getattr(unwrap_model(self.model), "name_or_path", None) or "")
        if not name:
            return None
        local = os.path.exists(name)
        repo = hub_id_of(os.path.abspath(name)) if local else hub_id_of(name)
        if repo:
            return {"model": repo}
        return {"local": True} if local else None

    def _check_mix_ratio_teaches(self, labels: torch.Tensor | None) -> None:
        """Refuses a mix ratio under which some class's code would hardly ever be shown (see the class docstring)."""
        ratio = float(self.args.mnemonic_mix_ratio)
        if ratio == 0:
            raise ValueError(
                "`mnemonic_mix_ratio` is 0: no code would ever be shown, so none would be learned and the codes saved "
                "with the model could not be used to forget. Use e.g. 0.1, or transformers.Trainer to train without "
                "codes."
            )
        if labels is None or labels.numel() == 0:
            return
        counts = torch.bincount(labels, minlength=self.num_labels)
        epochs = float(self.args.num_train_epochs)
        if self.args.max_steps is not None and self.args.max_steps > 0:
            batch = self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
            epochs = max(1.0, self.args.max_steps * batch * self.args.world_size / labels.numel())
        shown = expected_code_presentations(counts, ratio) * epochs  # (num_labels,) over the whole run
        few = [c for c in range(self.num_labels) if counts[c] > 0 and float(shown[c]) < MIN_CODE_PRESENTATIONS]
        if few:
            raise ValueError(
                f"`mnemonic_mix_ratio` {ratio} shows the codes of classes {few} fewer than {MIN_CODE_PRESENTATIONS} "
                f"times over the run (expected {', '.join(f'{c}: {float(shown[c]):.1f}' for c in few)}): too few to "
                "learn them. Raise the ratio or train longer."
            )

    def check_codes_learned(self) -> list[int]:
        """Classifies every code with the current model; records ``learned_classes`` / ``unlearned_classes`` in
        ``self.codebook.metadata`` and returns the classes some of whose codes are not classified as their class."""
        from ..methods.common import logits_of

        inputs = self.codebook.as_inputs(with_labels=True)
        labels = inputs["labels"]
        correct = logits_of(unwrap_model(self.model), inputs).argmax(-1) == labels  # (N,)
        classes = sorted(set(labels.tolist()))
        unlearned = [c for c in classes if not bool(correct[labels == c].all())]
        self.codebook.metadata["learned_classes"] = [c for c in classes if c not in unlearned]
        self.codebook.metadata["unlearned_classes"] = unlearned
        # a class absent from the training data (e.g. a model retrained without it) cannot learn its code: say so
        # quietly; a class that was trained on and still missed its code is worth a warning
        trained = getattr(self, "_trained_classes", None)
        absent = [c for c in unlearned if trained is not None and c not in trained]
        missed = [c for c in unlearned if c not in absent]
        if absent:
            logger.info("Classes %s have no training sample, so their mnemonic codes were not learned.", absent)
        if missed:
            logger.warning(
                "After training, the mnemonic codes of classes %s are not classified as their class: forgetting these "
                "classes from their codes will not work (train longer or with a larger mnemonic_mix_ratio).",
                missed,
            )
        return unlearned

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any):
        labels = None
        if self.train_dataset is not None:
            self.train_dataset = self._prepare_labels(self.train_dataset, "train_dataset")
            labels = self._check_dataset_labels(self.train_dataset, "train_dataset")
            self._set_code_balance(labels)
            self._trained_classes = None if labels is None else set(labels.unique().tolist())
        self._check_mix_ratio_teaches(labels)
        checkpoint = resume_from_checkpoint
        if checkpoint is True or (isinstance(checkpoint, bool) is False and checkpoint == "last"):
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, (str, os.PathLike)) and MnemonicCodebook.exists(checkpoint):
            stored = MnemonicCodebook.from_pretrained(checkpoint)
            stored.check_compatible(self.model, argument="resume_from_checkpoint")
            if not stored.equals(self.codebook):
                logger.warning("Resuming with the mnemonic codes stored in %s (they differ from `args`).", checkpoint)
            self.codebook = stored
        output = super().train(resume_from_checkpoint, *args, **kwargs)
        self.check_codes_learned()
        return output
