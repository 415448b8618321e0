"""Verification of a class-forgetting edit: did this run remove the forget classes and keep the rest, on every
evidence at hand?

Before and after the edit, [`FisherUnlearner`] measures, class by class, on:

- ``codes``: the codebook's codes (the forget classes' and the retained classes');
- ``forget_dataset``: the forget samples;
- ``retain_dataset``: up to ``RETAIN_SAMPLES`` retained samples, evenly spaced;
- ``eval_dataset``: the evaluation set's forget-class and retained rows (from the evaluation already run);
- ``method``: whether the method itself completed its edit (``details["complete"]``).

[`decide`] turns these checks into ``(status, reason)``:

- ``"incomplete"``: the method reports an incomplete edit, or a forget class's accuracy is above the tolerance on
  some evidence after the edit, or the retained classes' accuracy fell by more than ``max_retained_drop`` on some
  evidence;
- ``"unverified"``: the codebook does not belong to the model (its accuracy on all the codes before the edit is at
  chance: they show nothing), or some forget class has no evidence on which the model recognised it before the edit
  (a class it already got wrong has "nothing to forget" and is never counted as forgotten);
- ``"verified"`` otherwise: every forget class was recognised before and is not after, and the rest was kept.

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

__all__ = [
    "INCOMPLETE",
    "PENDING",
    "RETAIN_SAMPLES",
    "UNVERIFIED",
    "VERIFIED",
    "collect_checks",
    "decide",
    "measure",
    "same_on_every_rank",
]

# retained samples measured before and after the edit (two forward passes over at most this many)
RETAIN_SAMPLES = 512


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
    rows = torch.isin(labels, torch.tensor(forget, dtype=torch.long))
    present = sorted(set(labels[rows].tolist()))
    return {
        "forget_accuracy": float(correct[rows].float().mean()),
        "num_samples": int(rows.sum()),
        "per_class": {str(c): float(correct[labels == c].float().mean()) for c in present},
    }


def codes_belong(correct: torch.Tensor, num_labels: int) -> bool:
    """Whether the model recognises a codebook: its accuracy on the codes (those its training recorded as learned,
    else all) clearly above chance (``1/num_labels``): above twice chance, and above one half when that is lower."""
    return float(correct.float().mean()) > min(2.0 / num_labels, 0.5)


def _retained(correct: torch.Tensor, labels: torch.Tensor, retain: list[int]) -> dict[str, Any] | None:
    rows = torch.isin(labels, torch.tensor(retain, dtype=torch.long))
    if not rows.any():
        return None
    return {"accuracy": float(correct[rows].float().mean()), "num_samples": int(rows.sum())}


def _predict_correct(model: nn.Module, dataset: Any, data_collator: Any) -> tuple[torch.Tensor, torch.Tensor]:
    from .evaluation import predict

    logits, labels = predict(model, dataset, data_collator=data_collator)
    labels = torch.as_tensor(labels)
    return torch.as_tensor(logits).argmax(-1) == labels, labels


def _retain_subset(dataset: Any) -> Any:
    from .fisher import dataset_size

    n = dataset_size(dataset)
    if n <= RETAIN_SAMPLES:
        return dataset
    idx = torch.linspace(0, n - 1, RETAIN_SAMPLES).round().long().unique().tolist()
    if callable(getattr(dataset, "select", None)):
        return dataset.select(idx)
    if isinstance(dataset, dict):
        return {
            k: v[idx] if hasattr(v, "__getitem__") and not isinstance(v, (str, bytes)) else v
            for k, v in dataset.items()
        }
    return torch.utils.data.Subset(dataset, idx)


def measure(
    model: nn.Module,
    forget: list[int],
    retain: list[int],
    codebook: MnemonicCodebook | None,
    forget_dataset: Any,
    retain_dataset: Any,
    data_collator: Any,
) -> dict[str, dict]:
    """What the model does on each evidence (except ``eval_dataset``, measured by the evaluation): run before and
    after the edit, compared by [`collect_checks`]."""
    out: dict[str, dict] = {}
    if codebook is not None:
        inputs = codebook.as_inputs(None, with_labels=True)
        labels = inputs["labels"]
        correct = (logits_of(model, inputs).argmax(-1) == labels).cpu()
        out["codes"] = {"correct": correct, "labels": labels.cpu()}
        claimed = codebook.metadata.get("learned_classes") if isinstance(codebook.metadata, dict) else None
        if isinstance(claimed, list):  # recorded by MnemonicTrainer: the classes whose codes its model learned
            out["codes"]["claimed"] = [int(c) for c in claimed]
    if forget_dataset is not None and _has_labels(forget_dataset):
        out["forget_dataset"] = dict(
            zip(("correct", "labels"), _predict_correct(model, forget_dataset, data_collator))
        )
    if retain_dataset is not None and _has_labels(retain_dataset):
        subset = _retain_subset(retain_dataset)
        out["retain_dataset"] = dict(zip(("correct", "labels"), _predict_correct(model, subset, data_collator)))
    return out


def _per_class_of(m: dict, forget: list[int]) -> dict[str, float]:
    return {str(c): float(m["correct"][m["labels"] == c].float().mean()) for c in forget if (m["labels"] == c).any()}


def _code_check(before: dict, after: dict, forget: list[int], retain: list[int], num_labels: int) -> dict:
    """Codes: the forget classes' codes that the model recognised before the edit (a code the model never learned is
    rejected with or without forgetting, so it shows nothing) and the retained classes' codes."""
    labels, learned = before["labels"], before["correct"]
    fmask = torch.isin(labels, torch.tensor(forget, dtype=torch.long))
    check: dict[str, Any] = {}
    # the codes the codebook says its model learned (all, for a codebook that records nothing) must be recognised
    claimed = before.get("claimed")
    rows = torch.isin(labels, torch.tensor(claimed, dtype=torch.long)) if claimed is not None else labels >= 0
    if rows.any() and not codes_belong(learned[rows], num_labels):
        check["foreign"] = True
        check["accuracy_before_all_codes"] = float(learned[rows].float().mean())
    not_learned = sorted({int(c) for c in labels[fmask & ~learned].tolist()})
    rows = fmask & learned
    if not rows.any() or check.get("foreign"):
        check.update(skipped="the model did not recognise these codes before the edit", not_learned=not_learned)
    else:
        check.update(_per_class(after["correct"][rows], labels[rows], forget))
        check["per_class_before"] = _per_class_of({"correct": learned[fmask], "labels": labels[fmask]}, forget)
        if not_learned:
            check["not_learned"] = not_learned
    kept_b, kept_a = _retained(learned, labels, retain), _retained(after["correct"], labels, retain)
    if kept_b is not None:
        check["retain_accuracy_before"], check["retain_accuracy"] = kept_b["accuracy"], kept_a["accuracy"]
    return check


def _dataset_check(before: dict | None, after: dict, forget: list[int], retain: list[int]) -> dict:
    labels = after["labels"]
    check: dict[str, Any] = {}
    if torch.isin(labels, torch.tensor(forget, dtype=torch.long)).any():
        check.update(_per_class(after["correct"], labels, forget))
        if before is not None:
            check["per_class_before"] = _per_class_of(before, forget)
    kept_a = _retained(after["correct"], labels, retain)
    if kept_a is not None and before is not None:
        check["retain_accuracy_before"] = _retained(before["correct"], before["labels"], retain)["accuracy"]
        check["retain_accuracy"], check["num_retain_samples"] = kept_a["accuracy"], kept_a["num_samples"]
    if not check:
        return {"skipped": "no sample of the forget classes"}
    return check


def _eval_check(metrics: dict[str, Any], forget: list[int], id2label: dict[int, str]) -> dict:
    before, after = metrics.get("before") or {}, metrics["after"]
    check: dict[str, Any] = {}
    if after.get("forget_accuracy") is not None:
        per_label, per_label_b = after.get("per_class_accuracy") or {}, before.get("per_class_accuracy") or {}
        check.update(
            forget_accuracy=after["forget_accuracy"],
            num_samples=after.get("num_forget_samples"),
            per_class={str(c): per_label[id2label[c]] for c in forget if id2label[c] in per_label},
        )
        if per_label_b:
            check["per_class_before"] = {
                str(c): per_label_b[id2label[c]] for c in forget if id2label[c] in per_label_b
            }
    if after.get("retain_accuracy") is not None and before.get("retain_accuracy") is not None:
        check["retain_accuracy_before"], check["retain_accuracy"] = before["retain_accuracy"], after["retain_accuracy"]
    if not check:
        return {"skipped": "no sample of the forget classes"}
    return check


def decide(
    checks: dict[str, dict], forget: list[int], tolerance: float, max_retained_drop: float | None = None
) -> tuple[str, str]:
    """``(status, reason)`` from the checks (see the module docstring)."""
    if checks.get("method", {}).get("complete") is False:
        return INCOMPLETE, "the method could not complete its edit"
    evidence = {k: c for k, c in checks.items() if c.get("per_class")}
    above = {k: max(c["per_class"].values()) for k, c in evidence.items() if max(c["per_class"].values()) > tolerance}
    if above:
        worst = ", ".join(f"{v:.2f} on {k}" for k, v in above.items())
        return INCOMPLETE, f"forget-class accuracy {worst} is above verification_tolerance {tolerance}"
    kept = {k: c for k, c in checks.items() if c.get("retain_accuracy_before") is not None}
    if any(k != "codes" for k in kept):  # real retained samples say what was kept; codes only stand in for them
        kept.pop("codes", None)
    if max_retained_drop is not None:
        fell = {
            k: c for k, c in kept.items() if c["retain_accuracy_before"] - c["retain_accuracy"] > max_retained_drop
        }
        if fell:
            worst = ", ".join(
                f"{c['retain_accuracy_before']:.3f} -> {c['retain_accuracy']:.3f} on {k}" for k, c in fell.items()
            )
            return INCOMPLETE, (
                f"the retained classes' accuracy fell by more than max_retained_drop {max_retained_drop} ({worst}): "
                "the edit removed more than the forget classes"
            )
    codes = checks.get("codes", {})
    if codes.get("foreign"):
        return UNVERIFIED, (
            f"`codebook` does not belong to this model: its accuracy on the codebook's codes before the edit is "
            f"{codes['accuracy_before_all_codes']:.2f}, chance level (codes never learned; give the codebook saved "
            "with the model, or none)"
        )
    # a class counts only on evidence where the model recognised it before the edit
    counted: set[int] = set()
    before_only: dict[int, list[str]] = {}
    for name, c in evidence.items():
        was = c.get("per_class_before")
        for cls in c["per_class"]:
            b = None if was is None else was.get(cls)
            if b is None or b > tolerance:
                counted.add(int(cls))
            else:
                before_only.setdefault(int(cls), []).append(f"accuracy {b:.2f} before on {name}")
    nothing = [c for c in forget if c not in counted and c in before_only]
    if nothing:
        said = "; ".join(f"class {c}: {', '.join(before_only[c])}" for c in nothing)
        return UNVERIFIED, (
            f"nothing to forget for classes {nothing}, which the model did not recognise before the edit ({said}); "
            "they are not counted as forgotten"
        )
    unchecked = [c for c in forget if c not in counted]
    if unchecked:
        not_learned = [c for c in unchecked if c in codes.get("not_learned", [])]
        hint = ", whose codes the model did not recognise before the edit (never learned?)" if not_learned else ""
        return UNVERIFIED, (
            f"no evidence for classes {unchecked}{hint} (give a codebook whose codes the model learned, "
            "forget_dataset or eval_dataset holding samples of them)"
        )
    reason = f"forget-class accuracy at most {tolerance} on {', '.join(evidence)}"
    if max_retained_drop is not None and kept:
        reason += f"; retained-class accuracy within {max_retained_drop} of before on {', '.join(kept)}"
    elif max_retained_drop is not None:
        reason += "; no evidence on the retained classes"
    return VERIFIED, reason


def same_on_every_rank(decision: tuple[str, str], accelerator: Any = None) -> tuple[str, str]:
    """Rank 0's ``(status, reason)`` on every rank, so that all raise or none does (their checks ran on identical
    weights, but float reductions may differ by device)."""
    if accelerator is None or getattr(accelerator, "num_processes", 1) <= 1:
        return decision
    from accelerate.utils import broadcast_object_list

    box = [decision]
    broadcast_object_list(box, from_process=0)
    return tuple(box[0])


def collect_checks(
    model: nn.Module,
    forget: list[int],
    method_details: dict[str, Any],
    codebook: MnemonicCodebook | None,
    before: dict[str, dict] | None,
    forget_dataset: Any,
    data_collator: Any,
    metrics: dict[str, Any] | None,
    retain: list[int] | None = None,
    retain_dataset: Any = None,
) -> dict[str, dict]:
    """The checks of the edit on every evidence at hand (see the module docstring); ``before`` is [`measure`] of the
    model before the edit."""
    id2label = id2label_of(model)
    retain = retain if retain is not None else [c for c in id2label if c not in forget]
    before = before or {}
    after = measure(model, forget, retain, codebook, forget_dataset, retain_dataset, data_collator)
    checks: dict[str, dict] = {}
    if "complete" in method_details:
        checks["method"] = {"complete": bool(method_details["complete"])}
    if "codes" in after and "codes" in before:
        checks["codes"] = _code_check(before["codes"], after["codes"], forget, retain, len(id2label))
    if forget_dataset is not None:
        if "forget_dataset" in after:
            checks["forget_dataset"] = _dataset_check(
                before.get("forget_dataset"), after["forget_dataset"], forget, []
            )
        else:
            checks["forget_dataset"] = {"skipped": "no labels column"}
    if "retain_dataset" in after and "retain_dataset" in before:
        checks["retain_dataset"] = _dataset_check(before["retain_dataset"], after["retain_dataset"], [], retain)
    if metrics is not None:
        checks["eval_dataset"] = _eval_check(metrics, forget, id2label)
    return checks
