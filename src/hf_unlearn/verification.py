"""Verification of a class-forgetting edit: did the forget classes' accuracy drop on every evidence at hand?

After the edit, [`FisherUnlearner`] measures the forget classes' accuracy, class by class, on:

- ``codes``: the codebook's codes of the forget classes that the model recognised before the edit (a code the
  model never learned is rejected with or without forgetting, so it shows nothing);
- ``forget_dataset``: the forget samples;
- ``eval_dataset``: the forget-class rows of the evaluation set (from the evaluation already run);
- ``method``: whether the method itself completed its edit (``details["complete"]``).

[`decide`] turns these checks into ``(status, reason)``: ``"verified"`` when every forget class is covered by some
evidence and its accuracy is at most the tolerance everywhere, ``"incomplete"`` when it is above on some evidence
(or the method reports an incomplete edit), ``"unverified"`` when some forget class cannot be checked at all.
The samples scope has its own checks in [`hf_unlearn.samples`].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .data_utils import LABEL_COLUMNS
from .methods.common import logits_of
from .mnemonic.codebook import MnemonicCodebook
from .utils import id2label_of

VERIFIED, INCOMPLETE, UNVERIFIED, PENDING = "verified", "incomplete", "unverified", "pending"

__all__ = ["INCOMPLETE", "PENDING", "UNVERIFIED", "VERIFIED", "collect_checks", "decide"]


def _has_labels(dataset: Any) -> bool:
    columns = getattr(dataset, "column_names", None)
    if columns is None and isinstance(dataset, dict):
        columns = list(dataset)
    if columns is None:
        try:
            columns = list(dataset[0])
        except Exception:  # a dataset whose rows are not dicts: let the reader say what is wrong
            return True
    return any(c in columns for c in LABEL_COLUMNS)


def _per_class(correct: torch.Tensor, labels: torch.Tensor, forget: list[int]) -> dict[str, Any]:
    """Forget accuracy overall and per class on the rows of ``labels`` that belong to a forget class."""
    rows = torch.isin(labels, torch.tensor(forget))
    present = sorted(set(labels[rows].tolist()))
    return {
        "forget_accuracy": float(correct[rows].float().mean()),
        "num_samples": int(rows.sum()),
        "per_class": {str(c): float(correct[labels == c].float().mean()) for c in present},
    }


def _code_check(model: nn.Module, codebook: MnemonicCodebook, forget: list[int], learned: torch.Tensor) -> dict:
    """Codes of the forget classes, counting only those the model recognised before the edit: a code the model
    never learned is rejected with or without forgetting, so it shows nothing."""
    inputs = codebook.as_inputs(forget, with_labels=True)
    labels = inputs["labels"]
    not_learned = sorted(set(labels[~learned].tolist()))
    if not learned.any():
        return {"skipped": "the model did not recognise these codes before the edit", "not_learned": not_learned}
    correct = logits_of(model, inputs).argmax(-1) == labels
    check = _per_class(correct[learned], labels[learned], forget)
    if not_learned:
        check["not_learned"] = not_learned
    return check


def _dataset_check(model: nn.Module, dataset: Any, forget: list[int], data_collator: Any) -> dict:
    from .evaluation import predict

    if not _has_labels(dataset):
        return {"skipped": "no labels column"}
    logits, labels = predict(model, dataset, data_collator=data_collator)
    labels = torch.as_tensor(labels)
    if not torch.isin(labels, torch.tensor(forget)).any():
        return {"skipped": "no sample of the forget classes"}
    return _per_class(torch.as_tensor(logits).argmax(-1) == labels, labels, forget)


def _eval_check(after: dict[str, Any], forget: list[int], id2label: dict[int, str]) -> dict:
    if after.get("forget_accuracy") is None:
        return {"skipped": "no sample of the forget classes"}
    per_label = after.get("per_class_accuracy") or {}
    return {
        "forget_accuracy": after["forget_accuracy"],
        "num_samples": after.get("num_forget_samples"),
        "per_class": {str(c): per_label[id2label[c]] for c in forget if id2label[c] in per_label},
    }


def decide(checks: dict[str, dict], forget: list[int], tolerance: float) -> tuple[str, str]:
    """``(status, reason)`` from the checks (see the module docstring)."""
    if checks.get("method", {}).get("complete") is False:
        return INCOMPLETE, "the method could not complete its edit"
    evidence = {k: c for k, c in checks.items() if "per_class" in c}
    above = {k: max(c["per_class"].values()) for k, c in evidence.items() if max(c["per_class"].values()) > tolerance}
    if above:
        worst = ", ".join(f"{v:.2f} on {k}" for k, v in above.items())
        return INCOMPLETE, f"forget-class accuracy {worst} is above verification_tolerance {tolerance}"
    covered = {int(c) for e in evidence.values() for c in e["per_class"]}
    unchecked = [c for c in forget if c not in covered]
    if unchecked:
        not_learned = [c for c in unchecked if c in checks.get("codes", {}).get("not_learned", [])]
        hint = ", whose codes the model did not recognise before the edit (never learned?)" if not_learned else ""
        return UNVERIFIED, (
            f"no evidence for classes {unchecked}{hint} (give a codebook whose codes the model learned, "
            "forget_dataset or eval_dataset holding samples of them)"
        )
    return VERIFIED, f"forget-class accuracy at most {tolerance} on {', '.join(evidence)}"


def collect_checks(
    model: nn.Module,
    forget: list[int],
    method_details: dict[str, Any],
    codebook: MnemonicCodebook | None,
    codes_learned: torch.Tensor | None,
    forget_dataset: Any,
    data_collator: Any,
    metrics: dict[str, Any] | None,
) -> dict[str, dict]:
    """The checks of the edit on every evidence at hand (see the module docstring)."""
    checks: dict[str, dict] = {}
    if "complete" in method_details:
        checks["method"] = {"complete": bool(method_details["complete"])}
    if codebook is not None:
        checks["codes"] = _code_check(model, codebook, forget, codes_learned)
    if forget_dataset is not None:
        checks["forget_dataset"] = _dataset_check(model, forget_dataset, forget, data_collator)
    if metrics is not None:
        checks["eval_dataset"] = _eval_check(metrics["after"], forget, id2label_of(model))
    return checks
