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
)
RELEARN_KEY = "relearn_forget_accuracy"


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
            relearn accuracies appear as ``"relearn_forget_accuracy@k"``. Empty without retrained models.
        retrained_range: per metric, ``{"min", "max", "mean"}`` over the retrained models.
        js_retrained_reference: mean pairwise JS divergence between retrained models (needs two or more).
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
        rows += [(f"after {k} relearn steps", f"{RELEARN_KEY}@{k}") for k in self.settings.get("relearn_steps", [])]
        rows += [("relearn time (steps)", "relearn_time"), ("AIN", "ain"), ("JS to retrained", "js_to_retrained")]
        lines = ["| metric | model | original | retrained (min-max) | standing |", "|---|---|---|---|---|"]
        for title, key in rows:
            rng = self.retrained_range.get(key)
            span = "-" if rng is None else f"{_fmt(rng['min'], key)}-{_fmt(rng['max'], key)}"
            orig = _fmt(_metric(self.original, key)) if self.original is not None else "-"
            lines.append(
                f"| {title} | {_fmt(_metric(self.metrics, key))} | {orig} | {span} | {self.standing.get(key, '-')} |"
            )
        if self.js_retrained_reference is not None:
            lines.append("")
            lines.append(f"JS divergence between retrained models (reference): {self.js_retrained_reference:.3f}")
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
    if key.startswith(RELEARN_KEY + "@"):
        return (metrics.get(RELEARN_KEY) or {}).get(int(key.split("@")[1]))
    return metrics.get(key)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    return o
