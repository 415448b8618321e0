"""The samples mode of the audit: do forgotten training rows now look like rows the model never saw?

For rows (not classes) success is not accuracy 0 but looking like held-out data, as the rows do to a model
retrained without them. [`audit_samples`] measures, on the model, on the ``original`` and on each ``retrained``
model (>= 3 seeds recommended), with the same data:

- ``forget_label_rate``: fraction of the forget rows predicted as their *training* label (their accuracy at that
  label). For mislabeled rows this is the fraction still predicted as their wrong label;
- ``true_label_rate`` (``true_labels`` given): fraction predicted as their correct label;
- ``heldout_accuracy``: accuracy on the held-out rows;
- ``forget_loss`` / ``heldout_loss``: the cross-entropy distribution (mean and 10/25/50/75/90 % quantiles) at the
  rows' labels;
- ``mia_auc``: the loss-threshold membership-inference AUC of forget rows (members) against held-out rows
  (non-members); 0.5 means indistinguishable;
- ``attack_success_rate`` (``backdoor`` given): the fraction of triggered inputs whose true class is not the target
  that the model puts in the backdoor's target class.

``SamplesAudit.standing`` says per metric where the model lies against the retrained models' [min, max], and
``gap_to_retrained`` its difference from their mean. Nothing in any model is changed (predictions only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data_utils import DatasetReader, check_dataset, labels_of
from ..utils import get_logger
from .measures import _check_model, _standing

logger = get_logger(__name__)

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
COMPARED = (
    "forget_label_rate",
    "true_label_rate",
    "heldout_accuracy",
    "forget_loss_mean",
    "heldout_loss_mean",
    "mia_auc",
    "attack_success_rate",
)


@dataclass
class SamplesAudit:
    """The result of [`audit_samples`]; ``to_dict()`` is JSON-serialisable.

    Attributes:
        num_forget_rows / num_heldout_rows: how many rows each side holds (rows are never listed).
        metrics: the audited model's numbers (see the module docstring).
        original: the same for the ``original`` model, or ``None``.
        retrained: one dict per retrained model.
        retrained_range: per metric, ``{"min", "max", "mean"}`` over the retrained models.
        standing: per metric, ``"within"`` the retrained range or ``"above by x"`` / ``"below by x"``.
        gap_to_retrained: per metric, the model's value minus the retrained models' mean.
    """

    num_forget_rows: int
    num_heldout_rows: int
    metrics: dict[str, Any]
    original: dict[str, Any] | None = None
    retrained: list[dict[str, Any]] = field(default_factory=list)
    retrained_range: dict[str, dict[str, float]] = field(default_factory=dict)
    standing: dict[str, str] = field(default_factory=dict)
    gap_to_retrained: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _predict(model, dataset, collator, batch_size) -> tuple[np.ndarray, np.ndarray]:
    from ..evaluation import predict

    return predict(model, dataset, data_collator=collator, batch_size=batch_size)


def _losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    log_probs = torch.log_softmax(torch.from_numpy(logits).double(), dim=1)
    return (-log_probs.gather(1, torch.from_numpy(labels).long()[:, None])[:, 0]).numpy()


def _distribution(losses: np.ndarray) -> dict[str, float]:
    out = {"mean": float(losses.mean())}
    out.update({f"q{int(q * 100)}": float(np.quantile(losses, q)) for q in QUANTILES})
    return out


def stamp(dataset: Any, trigger: Callable[[dict[str, Any]], dict[str, Any]], model: nn.Module) -> dict[str, Any]:
    """``dataset``'s model inputs and labels as a dict of columns, with ``trigger`` applied to them (it gets and
    returns that dict, e.g. ``lambda b: {**b, "pixel_values": add_patch(b["pixel_values"])}``)."""
    reader = DatasetReader(dataset, model, "heldout_dataset")
    columns = reader.batch(list(range(reader.n)))
    stamped = trigger(dict(columns))
    if not isinstance(stamped, dict) or "labels" not in stamped:
        raise ValueError("`backdoor` trigger must return the dict of columns it was given, `labels` included.")
    return stamped


def attack_success_rate(
    model: nn.Module,
    triggered_dataset: Any,
    target_class: int,
    *,
    data_collator: Callable | None = None,
    batch_size: int = 64,
) -> float:
    """Fraction of triggered inputs whose true label is not ``target_class`` that ``model`` classifies as
    ``target_class`` (``triggered_dataset`` holds the stamped inputs with their true labels)."""
    logits, labels = _predict(model, triggered_dataset, data_collator, batch_size)
    keep = labels != int(target_class)
    if not keep.any():
        raise ValueError("`backdoor` triggered data holds only rows of the target class; nothing to attack.")
    return float((logits[keep].argmax(1) == int(target_class)).mean())


def _measure(model, forget, heldout, true_labels, triggered, target, collator, batch_size) -> dict[str, Any]:
    from ..samples import mia_auc_from_losses

    f_logits, f_labels = _predict(model, forget, collator, batch_size)
    h_logits, h_labels = _predict(model, heldout, collator, batch_size)
    f_loss, h_loss = _losses(f_logits, f_labels), _losses(h_logits, h_labels)
    f_pred = f_logits.argmax(1)
    m: dict[str, Any] = {
        "forget_label_rate": float((f_pred == f_labels).mean()),
        "heldout_accuracy": float((h_logits.argmax(1) == h_labels).mean()),
        "forget_loss": _distribution(f_loss),
        "heldout_loss": _distribution(h_loss),
        "forget_loss_mean": float(f_loss.mean()),
        "heldout_loss_mean": float(h_loss.mean()),
        "mia_auc": mia_auc_from_losses(f_loss, h_loss),
    }
    if true_labels is not None:
        m["true_label_rate"] = float((f_pred == true_labels).mean())
    if triggered is not None:
        m["attack_success_rate"] = attack_success_rate(
            model, triggered, target, data_collator=collator, batch_size=batch_size
        )
    return m


def audit_samples(
    model: nn.Module,
    *,
    forget_dataset: Any,
    heldout_dataset: Any,
    data_collator: Callable | None = None,
    original: nn.Module | None = None,
    retrained: Sequence[nn.Module] | nn.Module | None = None,
    true_labels: Sequence[int] | None = None,
    backdoor: tuple[Any, int] | None = None,
    batch_size: int = 64,
) -> SamplesAudit:
    """Audits how ``model`` sees the forgotten rows next to held-out rows, against ``retrained`` models.

    Args:
        model: the classifier after forgetting the rows.
        forget_dataset: the forgotten training rows, with the labels they were trained with.
        heldout_dataset: labelled rows no model saw in training (e.g. the test split).
        data_collator: builds batches (e.g. ``DataCollatorWithPadding(tokenizer)`` for text).
        original: the model before forgetting.
        retrained: models trained without the rows (>= 3 seeds to read a range); the reference.
        true_labels: for mislabeled rows, their correct labels (row by row): adds ``true_label_rate``.
        backdoor: ``(trigger, target_class)``: ``trigger`` is a pre-stamped labelled data set (true labels) or a
            callable stamping the trigger on a dict of columns, applied to ``heldout_dataset``; adds
            ``attack_success_rate``.
        batch_size: rows per forward pass.

    Raises:
        ValueError naming the argument, before any model runs.
    """
    num_labels = _check_model(model, "model")
    if original is not None:
        _check_model(original, "original", num_labels)
    retrained = [retrained] if isinstance(retrained, nn.Module) else list(retrained or [])
    for i, r in enumerate(retrained):
        _check_model(r, f"retrained[{i}]", num_labels)
    if 0 < len(retrained) < 3:
        logger.warning(
            "audit_samples: %d retrained model(s); 3 or more seeds give a meaningful range.", len(retrained)
        )
    n_forget = check_dataset(forget_dataset, "forget_dataset")
    n_heldout = check_dataset(heldout_dataset, "heldout_dataset")
    for name, ds in (("forget_dataset", forget_dataset), ("heldout_dataset", heldout_dataset)):
        labels = labels_of(ds, name)
        if labels.min() < 0 or labels.max() >= num_labels:
            raise ValueError(f"`{name}` holds labels outside the model's {num_labels} classes.")
    if true_labels is not None:
        true_labels = np.asarray([int(v) for v in true_labels], dtype=np.int64)
        if len(true_labels) != n_forget:
            raise ValueError(f"`true_labels` has {len(true_labels)} entries for {n_forget} forget rows.")
        if true_labels.min() < 0 or true_labels.max() >= num_labels:
            raise ValueError(f"`true_labels` holds labels outside the model's {num_labels} classes.")
    triggered = target = None
    if backdoor is not None:
        if not isinstance(backdoor, (tuple, list)) or len(backdoor) != 2:
            raise ValueError("`backdoor` must be (trigger callable or triggered data set, target class id).")
        trigger, target = backdoor
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < num_labels:
            raise ValueError(f"`backdoor` target class must be a class id of the model, got {target!r}.")
        triggered = stamp(heldout_dataset, trigger, model) if callable(trigger) else trigger
        check_dataset(triggered, "backdoor")

    def measure(m: nn.Module) -> dict[str, Any]:
        return _measure(m, forget_dataset, heldout_dataset, true_labels, triggered, target, data_collator, batch_size)

    metrics = measure(model)
    result = SamplesAudit(
        num_forget_rows=n_forget,
        num_heldout_rows=n_heldout,
        metrics=metrics,
        original=measure(original) if original is not None else None,
        retrained=[measure(r) for r in retrained],
    )
    for key in COMPARED:
        values = [r[key] for r in result.retrained if r.get(key) is not None]
        standing = _standing(metrics.get(key), values)
        if standing is None:
            continue
        result.standing[key], result.retrained_range[key] = standing
        result.gap_to_retrained[key] = float(metrics[key] - np.mean(values))
    return result
