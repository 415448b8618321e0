"""UnlearningReport: what one call of ``FisherUnlearner.unlearn`` did, as a JSON-serialisable record."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_FILE = "unlearning_report.json"


@dataclass
class UnlearningReport:
    """Record of an unlearning run. Holds no training data, only ids, counts, settings, timings and metrics.

    Attributes:
        method: the name of the method run (a key of ``hf_unlearn.methods.METHODS``, e.g. ``"mnemonic"``).
        forget_classes / forget_labels: ids and label names of the forgotten classes.
        retain_classes / retain_labels: ids and label names of the classes kept.
        num_parameters_changed: scalar weights whose value changed.
        num_parameters_total: scalar weights of the model.
        fisher_samples: samples the Fisher passes used, e.g. ``{"forget": 10, "retain": 90}``.
        timings: seconds per phase (``"fisher"``, ``"edit"``, ``"select"``, ``"total"``, ...); ``"total"`` is the
            unlearning step itself, without optional evaluation.
        hyperparameters: the method's settings as used (after any automatic choice).
        method_config: the method's settings as configured (``UnlearningConfig.method_config``, as a dict).
        details: method-specific facts (chosen sign, search trace, ...), plus the check of the outcome:
            ``verification`` (``"verified"``, ``"incomplete"`` or ``"unverified"``), ``verification_checks`` (per
            evidence: codes, forget_dataset, eval_dataset, the forget accuracy overall and per class, or why it was
            skipped) and ``verification_tolerance``.
        metrics: ``{"before": {...}, "after": {...}}`` from [`hf_unlearn.evaluation.unlearning_metrics`] when an
            evaluation set was given, else ``None``.
        forget_request_fingerprint: SHA-256 of the forget request (method, classes, codebook/data fingerprints),
            so a published model can be matched to its request without revealing any data.
        base_model: name or path of the model before unlearning, when known.
        created_at: UTC time stamp (ISO 8601).
        versions: library versions used.
        audit: ``ForgettingAudit.to_dict()`` when a depth audit was run on the unlearned model
            ([`FisherUnlearner.audit`]), else ``None`` (the model card then says depth was not measured).
    """

    method: str
    forget_classes: list[int]
    forget_labels: list[str]
    retain_classes: list[int]
    retain_labels: list[str]
    num_parameters_changed: int = 0
    num_parameters_total: int = 0
    fisher_samples: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    method_config: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    forget_request_fingerprint: str = ""
    base_model: str | None = None
    created_at: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    audit: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_json_default) + "\n"

    def save(self, directory: str | os.PathLike) -> str:
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, REPORT_FILE)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnlearningReport:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> UnlearningReport:
        path = os.path.join(directory, REPORT_FILE)
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def _json_default(o: Any):
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    return str(o)
