"""``ForgettingAudit``: the result of ``audit_forgetting``, with its JSON and Markdown forms."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# scalar metrics compared against the retrained models' range (relearn accuracies are added per k)
STANDING_KEYS = (
    "forget_error",
    "retain_accuracy",
    "mia_auc",
    "probe_forget_accuracy",
    "prototype_forget_accuracy",
    "relearn_time",
    "ain",
    "js_to_retrained",
    "distinguisher_accuracy",
)
RELEARN_KEY = "relearn_forget_accuracy"
RESET_RELEARN_KEY = "reset_relearn_forget_accuracy"
# two-sided targets (REFERENCE §8): within the retrained models' mean ± max(2 std, TWO_SIDED_TOLERANCE) for these
# (and the reset relearn accuracies), JS <= JS_FACTOR x the retrained models' mutual JS, distinguisher accuracy <=
# the retrained-vs-retrained one + DISTINGUISHER_MARGIN
TWO_SIDED_KEYS = ("probe_forget_accuracy", "prototype_forget_accuracy")
TWO_SIDED_TOLERANCE = 0.03
JS_FACTOR = 1.5
DISTINGUISHER_MARGIN = 0.1


# --------------------------------------------------------------------------------------------------------- result
@dataclass
class ForgettingAudit:
    """The result of [`audit_forgetting`]; ``to_dict()`` is JSON-serialisable.

    Attributes:
        forget_classes / forget_labels: ids and label names of the audited classes.
        metrics: the audited model's numbers (keys in the module docstring, plus ``forget_accuracy``,
            ``probe_retain_accuracy``, ``relearn_curve`` = forget accuracy after 0, 1, ... relearn steps (read at
            ``relearn_steps`` and at every step until the relearn target is reached; ``None`` elsewhere),
            ``relearn_time_censored`` = the target was not reached within ``relearn_max_steps``).
        original: the same keys for the ``original`` model, or ``None``.
        retrained: one such dict per retrained model (``[]`` when none was given). Their ``js_to_retrained`` and
            ``ain`` are leave-one-out: each retrained model against the others.
        standing: per metric, ``"within"`` the retrained models' [min, max] or ``"above by x"`` / ``"below by x"``;
            relearn accuracies appear as ``"relearn_forget_accuracy@k"`` / ``"reset_relearn_forget_accuracy@k"``.
            Empty without retrained models.
        retrained_range: per metric, ``{"min", "max", "mean", "std"}`` over the retrained models (sample std).
        two_sided: the targets of indistinguishability, per measure ``{"value", "low", "high", "rule", "verdict"}``:
            probe, prototype and reset relearn accuracies within the retrained models' mean ± max(2 std, 3 points);
            ``js_to_retrained`` at most 1.5x ``js_retrained_reference``; ``distinguisher_accuracy`` at most
            ``distinguisher_reference`` + 0.1. ``verdict`` is ``"within"``, ``"above by x: ..."`` (the class is
            kept) or ``"below by x: forgets more than retraining (recognisable as edited)"``.
        indistinguishable: every ``two_sided`` verdict is ``"within"`` (``None`` without two retrained models).
        js_retrained_reference: mean pairwise JS divergence between retrained models (needs two or more).
        distinguisher_reference: the retrained models' own ``distinguisher_accuracy`` (mean, leave-one-out), the
            chance level the model's is compared with; ``distinguisher_reference_protocol`` says how it was measured.
        retrained_label_spaces: per retrained model, ``"full"`` or ``"dropped <labels> (matched by label names)"``
            (a reference retrained with fewer labels). With a dropped one, JS and the distinguisher compare the
            softmax renormalised over the retained classes (``output_comparison``).
        relearn_threshold: the forget accuracy ``relearn_time`` counts steps to, or ``None`` (no original).
        settings: the protocol used (seed, sample counts, relearn optimiser, ...).
        timings: seconds spent per audited model (``"model"``, ``"original"``, ``"retrained"``) and ``"total"``.
    """

    forget_classes: list[int]
    forget_labels: list[str]
    metrics: dict[str, Any]
    original: dict[str, Any] | None = None
    retrained: list[dict[str, Any]] = field(default_factory=list)
    standing: dict[str, str] = field(default_factory=dict)
    retrained_range: dict[str, dict[str, float]] = field(default_factory=dict)
    js_retrained_reference: float | None = None
    two_sided: dict[str, dict[str, Any]] = field(default_factory=dict)
    indistinguishable: bool | None = None
    distinguisher_reference: float | None = None
    distinguisher_reference_protocol: str | None = None
    retrained_label_spaces: list[str] = field(default_factory=list)
    output_comparison: str = "softmax over every class"
    relearn_threshold: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    # cached per-model results, so a later audit can reuse them (``reference=``); not serialised
    _original_record: Any = field(default=None, repr=False, compare=False)
    _retrained_records: list = field(default_factory=list, repr=False, compare=False)
    _data: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(getattr(self, k)) for k in self.__dataclass_fields__ if not k.startswith("_")}
        return _jsonable(out)

    def to_markdown(self) -> str:
        """The audit as a Markdown table: one row per metric, columns model / original / retrained range / standing."""
        rows = [
            ("E_F (forget error)", "forget_error"),
            ("A_R (retained accuracy)", "retain_accuracy"),
            ("MIA AUC", "mia_auc"),
            ("linear probe, forget classes", "probe_forget_accuracy"),
            ("prototype attack, forget classes", "prototype_forget_accuracy"),
        ]
        steps = self.settings.get("relearn_steps", [])
        rows += [(f"after {k} relearn steps", f"{RELEARN_KEY}@{k}") for k in steps]
        rows += [(f"after {k} relearn steps, head rows reset", f"{RESET_RELEARN_KEY}@{k}") for k in steps]
        rows += [("relearn time (steps)", "relearn_time"), ("AIN", "ain"), ("JS to retrained", "js_to_retrained")]
        rows += [("distinguisher accuracy", "distinguisher_accuracy")]
        lines = [
            "| metric | model | original | retrained (min-max) | standing | two-sided target |",
            "|---|---|---|---|---|---|",
        ]
        for title, key in rows:
            rng = self.retrained_range.get(key)
            span = "-" if rng is None else f"{_fmt(rng['min'], key)}-{_fmt(rng['max'], key)}"
            orig = _fmt(_metric(self.original, key)) if self.original is not None else "-"
            two = self.two_sided.get(key)
            target = "-" if two is None else f"{two['verdict']} [{two['low']:.3f}, {two['high']:.3f}]"
            lines.append(
                f"| {title} | {_fmt(_metric(self.metrics, key))} | {orig} | {span} | {self.standing.get(key, '-')} "
                f"| {target} |"
            )
        if self.js_retrained_reference is not None:
            lines.append("")
            lines.append(f"JS divergence between retrained models (reference): {self.js_retrained_reference:.3f}")
        if self.distinguisher_reference is not None:
            lines.append(
                f"Distinguisher accuracy between retrained models (reference): {self.distinguisher_reference:.3f} "
                f"({self.distinguisher_reference_protocol})"
            )
        if any(space != "full" for space in self.retrained_label_spaces):
            lines.append(
                f"Retrained label spaces: {', '.join(self.retrained_label_spaces)}; {self.output_comparison}."
            )
        if self.indistinguishable is not None:
            lines.append(f"Indistinguishable from retraining on every two-sided target: {self.indistinguishable}")
        return "\n".join(lines)


def _fmt(x: Any, key: str = "") -> str:
    if x is None:
        return "n/a"
    if key == "relearn_time":
        return f"{float(x):g}"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return str(int(x))
    return f"{float(x):.3f}"


def _metric(metrics: dict[str, Any] | None, key: str) -> Any:
    if metrics is None:
        return None
    if "@" in key:
        name, k = key.rsplit("@", 1)
        return (metrics.get(name) or {}).get(int(k))
    return metrics.get(key)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    return o
