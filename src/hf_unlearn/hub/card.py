"""The model card of an unlearned model: its YAML header, its text (from ``model_card_template.md``) and its chart.

[`render_model_card`] turns an [`UnlearningReport`] into a ``huggingface_hub.ModelCard`` (the chart it links to is
drawn by ``chart.plot_per_class_accuracy``).
Nothing here writes a local absolute path into a card: a local base model is named by its folder's base name.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..report import UnlearningReport
from ..utils import format_value as _fmt
from ..utils import is_hub_id as _looks_like_hub_id
from ..utils import library_versions

CARD_FILE = "README.md"
TEMPLATE_FILE = "model_card_template.md"
TRAINING_TEMPLATE_FILE = "mnemonic_model_card_template.md"
TRAINING_TAGS = ("hf-unlearn", "mnemonic-codes")
# What the training card lists of the trainer's arguments (those a reader needs to reproduce the run).
TRAINING_HYPERPARAMETERS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "seed",
    "mnemonic_mix_ratio",
    "mnemonic_seed",
    "mnemonic_codes_per_class",
    "mnemonic_distribution",
    "mnemonic_balance_classes",
)
# "unlearning" and "machine-unlearning" are what people search unlearned models by; "hf-unlearn" names the tool.
CARD_TAGS = ("unlearning", "hf-unlearn")
SEARCH_TAGS = ("machine-unlearning",)

# Metric keys are matched case-insensitively against these aliases; anything else numeric becomes an extra row.
_METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "A_F": ("forget_accuracy", "a_f", "forget_acc", "acc_forget"),
    "E_F": ("forget_error", "e_f"),
    "A_R": ("retain_accuracy", "a_r", "retained_accuracy", "retain_acc", "acc_retain"),
    "A_test": ("test_accuracy", "a_test", "accuracy", "acc_test", "test_acc"),
    "MIA AUC": ("mia_auc", "membership_inference_auc", "mia", "membership_auc"),
}
_METRIC_LABELS = {
    "A_F": "A_F (forget accuracy)",
    "E_F": "E_F (forget error)",
    "A_R": "A_R (retained accuracy)",
    "A_test": "test accuracy",
    "MIA AUC": "membership-inference AUC",
}
LOCAL_SOURCE = "local folder"
# An absolute path inside a longer text: a "/" not preceded by a word character, ":" or "/" (so not a URL), at least
# two components.
_ABS_PATH_IN_TEXT = re.compile(r"(?<![\w.:/~])(?:~|[A-Za-z]:)?/(?:[^/\s'\"`|]+/)+([^/\s'\"`|]*)")

# Plain words for the depth audit's metrics ("How deep is the forgetting?").
AUDIT_METRICS: dict[str, tuple[str, str]] = {
    "forget_error": (
        "forget error",
        "share of the targeted classes' evaluation samples the model gets wrong at its output (1 = none recognised)",
    ),
    "retain_accuracy": ("retained accuracy", "accuracy on the evaluation samples of the classes that were kept"),
    "mia_auc": (
        "membership-inference AUC",
        "how well a loss-based attack tells the targeted classes' training samples from unseen ones (0.5 = chance)",
    ),
    "probe_forget_accuracy": (
        "linear-probe accuracy",
        "a linear classifier trained on the model's internal features (the input of its output layer) recognises "
        "the targeted classes this often; high means the features still separate them, whatever the output says",
    ),
    "prototype_forget_accuracy": (
        "prototype-attack accuracy",
        "accuracy on the targeted classes after rewriting their rows of the output layer from a few training samples "
        "each, with no training; high means the class can be read back from the features at once",
    ),
    "relearn_forget_accuracy": (
        "relearn accuracy",
        "accuracy on the targeted classes after a few fine-tuning steps on a small batch of targeted and kept "
        "samples; fast relearning means the knowledge was hidden, not removed",
    ),
    "relearn_time": (
        "relearn time",
        "fine-tuning steps until accuracy on the targeted classes climbs back to a set share of the original "
        "model's (more steps is better; ≥ means it was not reached within the steps allowed)",
    ),
    "ain": (
        "AIN (anamnesis index)",
        "relearn time divided by the retrained models' (about 1 = as slow to relearn as a model that never saw the "
        "classes; near 0 = it relearns them at once)",
    ),
    "js_to_retrained": (
        "JS divergence to retrained",
        "Jensen-Shannon divergence between this model's predictions on the targeted classes' samples and those of "
        "the models retrained without them (0 = identical)",
    ),
}
# Measures only newer audits take (shown when present), and the order of the card's rows.
EXTRA_AUDIT_METRICS: dict[str, tuple[str, str]] = {
    "reset_relearn_forget_accuracy": (
        "reset-head relearn accuracy",
        "accuracy on the targeted classes after their rows of the output layer are reset to an average kept row and "
        "the same few fine-tuning steps run; it reads what the features still hold, whatever was done to the output "
        "layer",
    ),
    "distinguisher_accuracy": (
        "distinguisher accuracy",
        "accuracy of a classifier trained to tell this model's outputs on the targeted classes' samples from a "
        "retrained model's (about the retrained models' own score = indistinguishable; near 1 = recognisably "
        "different)",
    ),
}
_AUDIT_ROWS = {
    **{k: v for k, v in AUDIT_METRICS.items() if k != "js_to_retrained"},
    "reset_relearn_forget_accuracy": EXTRA_AUDIT_METRICS["reset_relearn_forget_accuracy"],
    "js_to_retrained": AUDIT_METRICS["js_to_retrained"],
    "distinguisher_accuracy": EXTRA_AUDIT_METRICS["distinguisher_accuracy"],
}


# ---------------------------------------------------------------------------------------------------- template
def model_card_template_path(name: str = TEMPLATE_FILE) -> str:
    """Path of a card template (``model_card_template.md``, or ``mnemonic_model_card_template.md`` for the training
    card): the package data of an installed wheel, else the repository root."""
    try:
        resource = importlib.resources.files("hf_unlearn") / name
        if resource.is_file():
            return str(resource)
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):  # pragma: no cover - exotic loaders
        pass
    path = Path(__file__).resolve().parents[3] / name  # editable install: src/hf_unlearn/hub/card.py
    if not path.is_file():
        raise FileNotFoundError(f"{name} is neither in the hf_unlearn package nor at the repository root.")
    return str(path)


# ---------------------------------------------------------------------------------------------------- privacy
def is_hub_id(name: str | None) -> bool:
    """Whether ``name`` is shaped like a Hub repository id and is not a local file or folder."""
    return bool(name) and _looks_like_hub_id(str(name)) and not os.path.exists(str(name))


def public_name(name: str | os.PathLike | None) -> str | None:
    """What may be published about a model or data location: a Hub id as it is, a local path as its base name."""
    if name is None or str(name) == "":
        return None
    s = str(name)
    if is_hub_id(s) or not (os.path.isabs(s) or s.startswith("~") or os.path.exists(s) or "\\" in s):
        return s
    base = os.path.basename(os.path.normpath(os.path.expanduser(s.replace("\\", "/"))))
    return base or None


def scrub_paths(value: Any) -> Any:
    """``value`` (nested dicts/lists/strings) with every absolute local path replaced by its base name."""
    if isinstance(value, str):
        if os.path.isabs(value) or value.startswith("~"):
            return public_name(value)
        return _ABS_PATH_IN_TEXT.sub(lambda m: m.group(1) or "", value)
    if isinstance(value, Mapping):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_paths(v) for v in value)
    return value


def public_report(report: UnlearningReport) -> UnlearningReport:
    """A copy of ``report`` fit for publishing: ``base_model`` a Hub id or a base name, no absolute path anywhere."""
    d = scrub_paths(report.to_dict())
    d["base_model"] = public_name(report.base_model)
    if report.base_model and d["base_model"] != report.base_model:
        d["details"] = {**d["details"], "base_model_source": LOCAL_SOURCE}  # so a later card keeps it out of the YAML
    out = UnlearningReport.from_dict(d)
    for name, value in vars(report).items():  # fields a newer report may carry that from_dict does not know
        if not hasattr(out, name):
            setattr(out, name, scrub_paths(value))
    return out


# ---------------------------------------------------------------------------------------------------- metrics
def _find_metric(values: Mapping[str, Any], canonical: str) -> float | None:
    lowered = {str(k).lower(): v for k, v in values.items()}
    for alias in _METRIC_ALIASES[canonical]:
        v = lowered.get(alias)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _normalised_metrics(report: UnlearningReport) -> dict[str, dict[str, float]] | None:
    """``{"before": {canonical or raw key: value}, "after": {...}}`` with E_F filled in from A_F when missing."""
    if not report.metrics:
        return None
    out: dict[str, dict[str, float]] = {}
    known = {a for aliases in _METRIC_ALIASES.values() for a in aliases}
    for phase in ("before", "after"):
        values = report.metrics.get(phase) or {}
        if not isinstance(values, Mapping):
            continue
        row: dict[str, float] = {}
        for canonical in _METRIC_ALIASES:
            v = _find_metric(values, canonical)
            if v is not None:
                row[canonical] = v
        if "E_F" not in row and "A_F" in row:
            row["E_F"] = 1.0 - row["A_F"]
        for k, v in values.items():
            if str(k).lower() not in known and isinstance(v, (int, float)) and not isinstance(v, bool):
                row[str(k)] = float(v)
        out[phase] = row
    return out if any(out.values()) else None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# ---------------------------------------------------------------------------------------------------- method text
def describe_method(report: UnlearningReport) -> str:
    """Plain words for what the method recorded in ``report`` changed: ``METHODS[report.method].describe(report)``."""
    from ..methods import METHODS

    method = METHODS.get(report.method)
    if method is None:  # a report from a method this installation does not know
        return f"The model was edited with the `{report.method}` method."
    return str(method.describe(report))


# ---------------------------------------------------------------------------------------------------- verification
def _evidence(details: Mapping[str, Any]) -> dict[str, float]:
    """``{evidence key: highest accuracy on a targeted class}`` from ``details["verification_checks"]`` (the template
    names the keys: ``codes``, ``forget_dataset``, ``eval_dataset``)."""
    checks = details.get("verification_checks")
    out = {}
    for key, check in checks.items() if isinstance(checks, Mapping) else []:
        per_class = check.get("per_class") if isinstance(check, Mapping) else None
        values = [_number(v) for v in per_class.values()] if isinstance(per_class, Mapping) else []
        values = [v for v in values if v is not None]
        if values:
            out[str(key)] = max(values)
    return out


def verification_of(report: UnlearningReport) -> dict[str, Any]:
    """What the card says about the check of the outcome (the template words it): ``verified`` (the card says a class
    is forgotten only when ``report.details["verification"] == "verified"``), ``status`` (``"not recorded"`` when
    missing), ``evidence`` (``[(evidence name, highest accuracy on a targeted class)]`` from
    ``verification_checks``), ``tolerance`` and ``reason`` (``verification_reason``, with no local path).
    """
    details = report.details if isinstance(report.details, Mapping) else {}
    status = details.get("verification")
    if status not in ("verified", "incomplete", "unverified"):
        status = "not recorded"
    reason = details.get("verification_reason")
    tolerance = _number(details.get("verification_tolerance"))
    return {
        "verified": status == "verified",
        "status": status,
        "evidence": [(name, f"{v:.2f}") for name, v in _evidence(details).items()],
        "tolerance": f"{tolerance:g}" if tolerance is not None else None,
        "reason": str(scrub_paths(str(reason))) if reason else None,
    }


# ---------------------------------------------------------------------------------------------------- samples
# The numbers of a samples-scope check (``samples.samples_check``) shown on the card, in this order.
SAMPLES_METRICS: dict[str, str] = {
    "forget_rows_accuracy": "forget-row accuracy (at their training labels)",
    "heldout_accuracy": "held-out accuracy",
    "mia_auc": "membership-inference AUC, forget rows vs held-out rows (0.5 = chance)",
    "forget_rows_loss": "forget-row mean loss",
    "heldout_loss": "held-out mean loss",
}


def samples_section(report: UnlearningReport) -> dict[str, Any] | None:
    """What the card says about a samples-scope run (``report.details["forget_scope"] == "samples"``); ``None`` for
    a class-scope report.

    The rows are named only by their count and fingerprint (``details["forget_rows"]``), never by content or id. They
    are called forgotten only when ``details["verification"] == "verified"``, and even then the card (its template)
    says what that check means: the forget rows look like held-out rows (``details["verification_reason"]``), a
    necessary check, not proof.
    """
    details = report.details if isinstance(report.details, Mapping) else {}
    if details.get("forget_scope") != "samples":
        return None
    rows = details.get("forget_rows") if isinstance(details.get("forget_rows"), Mapping) else {}
    count = rows.get("count")
    count = int(count) if isinstance(count, (int, float)) and not isinstance(count, bool) else None
    fingerprint = rows.get("fingerprint")
    fingerprint = str(fingerprint) if isinstance(fingerprint, str) and fingerprint else None
    status = details.get("verification")
    status = "not recorded" if status is None else str(status)
    reason = details.get("verification_reason")
    phases = report.metrics if isinstance(report.metrics, Mapping) else {}
    before = phases.get("before") if isinstance(phases.get("before"), Mapping) else {}
    after = phases.get("after") if isinstance(phases.get("after"), Mapping) else {}
    metric_rows = []
    for key, label in SAMPLES_METRICS.items():
        b, a = _number(before.get(key)), _number(after.get(key))
        if b is not None or a is not None:
            metric_rows.append((label, _fmt(b), _fmt(a)))
    heldout = after.get("num_heldout_rows") if isinstance(after.get("num_heldout_rows"), int) else None
    return {
        "count": count,
        "count_text": f"{count:,}" if count is not None else None,
        "fingerprint": fingerprint,
        "verified": status == "verified",
        "verification": status,
        "reason": str(scrub_paths(str(reason))) if reason else None,
        "metric_rows": metric_rows,
        "after": {k: _number(after.get(k)) for k in ("forget_rows_accuracy", "heldout_accuracy", "mia_auc")},
        "heldout_rows": heldout,
    }


# ---------------------------------------------------------------------------------------------------- depth audit
def _range(values: list[float]) -> str:
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    return _fmt(lo) if lo == hi else f"{_fmt(lo)} – {_fmt(hi)}"


# Measures of what the features still hold (a class hidden at the output, not removed, stays high on these).
_INTERNAL_MEASURES = (
    "probe_forget_accuracy",
    "prototype_forget_accuracy",
    "relearn_forget_accuracy",
    "relearn_time",
    "ain",
    "reset_relearn_forget_accuracy",
)


def _text(standing: Any) -> str | None:
    return None if standing is None else str(standing)


def depth_section(audit: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Rows and facts of the "How deep is the forgetting?" card section from ``report.audit`` (the template words
    them: each row's measure ``(label, relearn steps or None)``, values and raw standing; measures ``within`` /
    ``outside`` / ``below`` the retrained range, whether a ``hidden`` internal measure is above it, the retrained
    models' mutual JS ``js_reference``); ``None`` without an audit.

    ``audit`` is ``ForgettingAudit.to_dict()``: ``{"metrics": {...}, "original": {...} | None, "retrained": [{...}],
    "standing": {metric: "within" | "above by x" | ...}}``; ``relearn_forget_accuracy`` maps steps to accuracy.
    """
    if not isinstance(audit, Mapping) or not isinstance(audit.get("metrics"), Mapping):
        return None
    metrics = audit["metrics"]
    original = audit.get("original") if isinstance(audit.get("original"), Mapping) else None
    retrained = [r for r in (audit.get("retrained") or []) if isinstance(r, Mapping)]
    standing = audit.get("standing") if isinstance(audit.get("standing"), Mapping) else {}

    rows, meanings, within, outside, below, internal = [], [], [], [], [], []
    for key, (label, meaning) in _AUDIT_ROWS.items():
        value = metrics.get(key)
        if value is None:
            continue
        meanings.append((label, meaning))
        if isinstance(value, Mapping):  # accuracy after k relearn steps (relearn, reset-head relearn)
            steps = sorted(value, key=lambda k: float(k) if str(k).replace(".", "").isdigit() else 0.0)
            for k in steps:
                orig = original.get(key, {}).get(k) if original and isinstance(original.get(key), Mapping) else None
                ref = [_number(r[key].get(k)) for r in retrained if isinstance(r.get(key), Mapping)]
                st = standing.get(key)
                st = st.get(k, st.get(str(k))) if isinstance(st, Mapping) else standing.get(f"{key}@{k}", st)
                rows.append(
                    ((label, k), _fmt(_number(value[k])), _fmt(_number(orig) if orig is not None else None),
                     _range([v for v in ref if v is not None]), _text(st))
                )  # fmt: skip
                (within if str(st) == "within" else outside if st is not None else []).append((label, k))
                (below if str(st).startswith("below") else []).append((label, k))
                (internal if key in _INTERNAL_MEASURES else []).append((label, k))
            continue
        ref = [_number(r.get(key)) for r in retrained]
        st = standing.get(key)
        censored = key == "relearn_time" and metrics.get("relearn_time_censored")
        rows.append(
            (
                (label, None),
                ("≥ " if censored else "") + _fmt(_number(value)),
                _fmt(_number(original.get(key))) if original else "–",
                _range([v for v in ref if v is not None]),
                _text(st),
            )
        )
        (within if str(st) == "within" else outside if st is not None else []).append((label, None))
        (below if str(st).startswith("below") else []).append((label, None))
        (internal if key in _INTERNAL_MEASURES else []).append((label, None))

    hidden = [m for m in outside if m in internal and m not in below]  # above the range: still there
    reference = _number(audit.get("js_retrained_reference"))
    reference = _fmt(reference) if reference is not None and "js_to_retrained" in metrics else None
    return {
        "rows": rows,
        "meanings": meanings,
        "retrained": len(retrained),
        "within": within,
        "outside": outside,
        "hidden": bool(hidden),
        "below": below,
        "js_reference": reference,
    }


# ---------------------------------------------------------------------------------------------------- card
def _request_fingerprint(report: UnlearningReport) -> tuple[str, bool]:
    """``(fingerprint, computed here)``: the report's request fingerprint, else one computed from what it records."""
    if report.forget_request_fingerprint:
        return report.forget_request_fingerprint, False
    # Older or hand-made reports: fingerprint what the report itself says was asked for.
    request = {"method": report.method, "forget_classes": sorted(report.forget_classes)}
    request["hyperparameters"] = report.hyperparameters
    blob = json.dumps(request, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest(), True


def _cell(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s.replace("|", "\\|").replace("\n", " ")


_EMPTY_REPORT = UnlearningReport(method="", forget_classes=[], forget_labels=[], retain_classes=[], retain_labels=[])


def _auto_class(model: Any) -> str:
    main = getattr(model, "main_input_name", None)
    if main == "pixel_values":
        return "AutoModelForImageClassification"
    if main == "input_ids":
        return "AutoModelForSequenceClassification"
    return "AutoModel"


def _task_type(model: Any, report: UnlearningReport) -> str:
    auto = _auto_class(model)
    if auto == "AutoModelForSequenceClassification":
        return "text-classification"
    if auto == "AutoModelForImageClassification":
        return "image-classification"
    modality = report.details.get("modality")
    default = {"image": "image-classification", "text": "text-classification"}.get(modality, "other")
    return str(report.details.get("task") or default)


def _is_adapter(model: Any) -> bool:
    """Whether ``model`` is a PEFT model, which saves as an adapter (``adapter_config.json``) over its base."""
    return isinstance(getattr(model, "peft_config", None), Mapping) and bool(model.peft_config)


def _peft_base(model: Any) -> str | None:
    """The base model recorded in a PEFT model's active adapter config, or None."""
    if not _is_adapter(model):
        return None
    configs = model.peft_config
    config = configs.get(getattr(model, "active_adapter", None)) or next(iter(configs.values()))
    return getattr(config, "base_model_name_or_path", None) or None


def base_model_of(report: UnlearningReport, model: Any = None) -> str | None:
    """Name of the model before unlearning: the report's, else the PEFT base or ``config._name_or_path``."""
    if report.base_model:
        return str(report.base_model)
    name = _peft_base(model) or getattr(getattr(model, "config", None), "_name_or_path", None)
    return str(name) if name else None


def pretrained_base_of(report: UnlearningReport, codebook: Any = None) -> str | None:
    """The Hub id of the pretrained checkpoint the model's training started from: ``details["lineage"]`` of the
    report (recorded when forgetting), else the codebook's metadata (recorded by ``MnemonicTrainer``); or None."""
    lineage = report.details.get("lineage") if isinstance(report.details, Mapping) else None
    candidates = [lineage.get("base_model") if isinstance(lineage, Mapping) else None]
    metadata = getattr(codebook, "metadata", None)
    candidates.append(metadata.get("base_model") if isinstance(metadata, Mapping) else None)
    return next((str(c) for c in candidates if isinstance(c, str) and is_hub_id(c)), None)


def _model_link(name: str, *, hub: bool) -> str:
    return f"[`{name}`](/{name})" if hub else f"`{name}`"


def _dataset_slug(name: str | None) -> str:
    """The model-index ``dataset.type``: a Hub data set id as given, else a short slug of the name (``custom``)."""
    if not name:
        return "custom"
    s = str(name).strip()
    if is_hub_id(s) and len(s) <= 96:
        return s
    s = public_name(s.split(" (")[0]) or ""
    slug = re.sub(r"[^a-z0-9._-]+", "-", s.lower()).strip("-._")[:64]
    return slug or "custom"


def card_tags(report: UnlearningReport, tags: Sequence[str] | None = None) -> list[str]:
    """The card's YAML tags: ``unlearning``, ``hf-unlearn``, the method, ``machine-unlearning``, then ``tags``."""
    extra = [tags] if isinstance(tags, str) else list(tags or [])
    return list(dict.fromkeys([*CARD_TAGS, report.method, *SEARCH_TAGS, *extra]))


def render_model_card(
    report: UnlearningReport,
    *,
    model: Any = None,
    repo_id: str | None = None,
    chart_path: str | os.PathLike | None = None,
    model_name: str | None = None,
    tags: Sequence[str] | None = None,
    codebook: Any = None,
) -> ModelCard:
    """Renders the model card of an unlearned model from its report.

    The card says a class was forgotten only when ``report.details["verification"] == "verified"``; otherwise it
    states that the forgetting was not verified. A report carrying an ``audit`` (``ForgettingAudit.to_dict()``) gets a
    "How deep is the forgetting?" section; without one the card says that depth was not measured.

    A samples-scope report (``report.details["forget_scope"] == "samples"``, see [`samples_section`]) gets a card about
    training rows instead: their count and fingerprint only (never their content or ids), what verification means for
    rows (they look like held-out data: a necessary check, not proof), forget-row and held-out accuracy and the
    membership AUC, and a depth section that points to ``hf_unlearn.audit.audit_samples`` (the class audit does not
    apply).

    Args:
        report: what the unlearning run did.
        model: the unlearned model; used for the base model name (PEFT base or ``config._name_or_path``) when the
            report has none, for ``base_model_relation`` (``adapter`` for a PEFT model, else ``finetune``), and for
            the task (image or text classification).
        repo_id: Hub repository the card is for; used in the loading example and as the default model name.
        chart_path: the per-class accuracy chart (from [`plot_per_class_accuracy`]) if one was drawn; the card links
            to it by file name, so it must sit in the same folder as the card.
        model_name: name in the title and ``model-index``; defaults to the last part of ``repo_id``.
        tags: extra YAML tags, added after ``unlearning``, ``hf-unlearn``, the method and ``machine-unlearning``.
        codebook: the [`MnemonicCodebook`] saved beside the model, if any; its seed and fingerprint are recorded.

    Returns:
        A ``huggingface_hub.ModelCard``; ``card.save(path)`` writes it, ``card.data`` holds the YAML header.
    """
    if not isinstance(report, UnlearningReport):
        raise TypeError(f"`report` must be an UnlearningReport, got {type(report).__name__}.")
    raw_base = base_model_of(report, model)
    local_base = report.details.get("base_model_source") == LOCAL_SOURCE
    hub_parent = raw_base if is_hub_id(raw_base) and not local_base else None  # a local folder's name is no Hub id
    base_model = public_name(raw_base)
    pretrained = pretrained_base_of(report, codebook)
    if pretrained == hub_parent:
        pretrained = None
    # The Hub's model tree links a model to its direct parent: the fine-tuned parent when it is on the Hub, else the
    # pretrained checkpoint its training started from (the edited weights are still a fine-tune of it).
    hub_base = hub_parent or pretrained
    name = model_name or (repo_id.split("/")[-1] if repo_id else None)
    if not name:
        name = f"{base_model.rstrip('/').split('/')[-1]}-unlearned" if base_model else "unlearned-model"
    metrics = _normalised_metrics(report)
    check = verification_of(report)
    samples = samples_section(report)
    verified = samples["verified"] if samples is not None else check["verified"]
    dataset = scrub_paths(report.details.get("eval_dataset") or report.details.get("dataset"))
    dataset_id = report.details.get("eval_dataset_id") or dataset

    eval_results = None
    if samples is not None:
        labels = {
            "forget_rows_accuracy": ("accuracy", "forget-row accuracy after unlearning"),
            "heldout_accuracy": ("accuracy", "held-out accuracy after unlearning"),
            "mia_auc": ("roc_auc", "membership-inference AUC (forget vs held-out rows) after unlearning"),
        }
        eval_results = [
            EvalResult(
                task_type=_task_type(model, report),
                dataset_type=_dataset_slug(dataset_id),
                dataset_name=str(dataset or "held-out evaluation data"),
                metric_type=metric_type,
                metric_value=round(samples["after"][key], 6),
                metric_name=metric_name,
            )
            for key, (metric_type, metric_name) in labels.items()
            if samples["after"][key] is not None
        ] or None
    elif metrics and metrics.get("after"):
        task = _task_type(model, report)
        eval_results = []
        for key, metric_type in (
            ("A_R", "accuracy"),
            ("A_F", "accuracy"),
            ("A_test", "accuracy"),
            ("MIA AUC", "roc_auc"),
        ):
            value = metrics["after"].get(key)
            if value is not None:
                eval_results.append(
                    EvalResult(
                        task_type=task,
                        dataset_type=_dataset_slug(dataset_id),
                        dataset_name=str(dataset or "held-out evaluation data"),
                        metric_type=metric_type,
                        metric_value=round(value, 6),
                        metric_name=f"{_METRIC_LABELS[key]} after unlearning",
                    )
                )
        eval_results = eval_results or None

    card_data = ModelCardData(
        library_name="peft" if _is_adapter(model) else "transformers",
        tags=card_tags(report, tags),
        base_model=hub_base,
        model_name=name if eval_results else None,
        eval_results=eval_results,
        pipeline_tag=_task_type(model, report) if model is not None else None,
    )
    if hub_base:
        # The Hub files this model under its base model's tree: an adapter folder, or weights edited from the base
        # (``finetune``: of the Hub's four relations, adapter / merge / quantized / finetune, the one for changed
        # weights of the same architecture).
        card_data.base_model_relation = "adapter" if _is_adapter(model) else "finetune"

    metric_rows = []
    if samples is not None:
        metric_rows = samples["metric_rows"]
    elif metrics:
        before, after = metrics.get("before", {}), metrics.get("after", {})
        keys = [k for k in _METRIC_ALIASES if k in before or k in after]
        keys += sorted(k for k in {*before, *after} if k not in _METRIC_ALIASES)
        metric_rows = [(_METRIC_LABELS.get(k, _cell(k)), _fmt(before.get(k)), _fmt(after.get(k))) for k in keys]

    fingerprint, fingerprint_computed = _request_fingerprint(report)
    changed, total = report.num_parameters_changed, report.num_parameters_total
    parameters_changed = {"count": f"{changed:,}", "total": f"{total:,}" if total else None}
    parameters_changed["percent"] = f"{100.0 * changed / total:.2f}" if total else None
    codebook_info = None
    if codebook is not None:
        codebook_info = {
            "seed": codebook.seed,
            "distribution": codebook.distribution,
            "codes_per_class": codebook.codes_per_class,
            "fingerprint": codebook.fingerprint(),
        }
    details = scrub_paths(report.details)
    details = json.dumps(details, indent=2, sort_keys=True, default=str) if details else None
    base_model_link = _model_link(base_model, hub=bool(hub_parent)) if base_model else None

    return ModelCard.from_template(
        card_data,
        template_path=model_card_template_path(),
        title=name,
        base_model=base_model,
        base_model_link=base_model_link,
        pretrained_base=pretrained,
        pretrained_base_link=_model_link(pretrained, hub=True) if pretrained else None,
        base_model_is_hub=bool(hub_parent),
        method=report.method,
        method_description=describe_method(report),
        verified=verified,
        check=check,
        parameters_changed=parameters_changed,
        hyperparameters=[(_cell(k), _cell(v)) for k, v in sorted(scrub_paths(report.hyperparameters).items())],
        method_settings=[
            (_cell(k), _cell(v)) for k, v in sorted(scrub_paths(getattr(report, "method_config", None) or {}).items())
        ],
        forgotten=[(c, _cell(lab)) for c, lab in zip(report.forget_classes, report.forget_labels)],
        retained=[(c, _cell(lab)) for c, lab in zip(report.retain_classes, report.retain_labels)],
        fisher_samples=[(_cell(k), v) for k, v in sorted(report.fisher_samples.items())],
        metric_rows=metric_rows,
        eval_dataset=dataset,
        chart_file=os.path.basename(str(chart_path)) if chart_path else None,
        depth=None if samples is not None else depth_section(getattr(report, "audit", None)),
        samples=samples,
        timings=[(_cell(k), f"{float(v):.3f}") for k, v in report.timings.items()],
        created_at=report.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        fingerprint=fingerprint,
        fingerprint_computed=fingerprint_computed,
        versions=sorted((report.versions or library_versions()).items()),
        auto_class=_auto_class(model),
        load_path=repo_id or "path/to/this/folder",
        adapter=_is_adapter(model),
        codebook=codebook_info,
        details=details,
    )


# ---------------------------------------------------------------------------------------------------- training card
def render_training_card(
    trainer: Any,
    *,
    model_name: str | None = None,
    base_model: str | None = None,
    dataset: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    language: str | Sequence[str] | None = None,
    license: str | None = None,
) -> ModelCard:
    """The card of a model trained by ``MnemonicTrainer`` (or another Trainer carrying ``UnlearningCardMixin``), from
    ``mnemonic_model_card_template.md``, as TRL renders its trainers' cards.

    ``base_model`` (a Hub id; default ``trainer.base_model_id``) goes into the YAML with ``base_model_relation``;
    nothing on the card is a local path (the output folder and data sets are named by their base names).
    """
    from ..utils import unwrap_model

    model = unwrap_model(trainer.model) if trainer.model is not None else None
    args = trainer.args
    base = base_model or getattr(trainer, "base_model_id", None)
    base = base if is_hub_id(base) else None
    datasets = [dataset] if isinstance(dataset, str) else list(dataset or [])
    hub_datasets = [d for d in datasets if is_hub_id(d)] or None
    name = model_name or (getattr(args, "hub_model_id", None) or "").split("/")[-1] or public_name(args.output_dir)
    codebook = getattr(trainer, "codebook", None)
    extra = [tags] if isinstance(tags, str) else list(tags or [])
    card_data = ModelCardData(
        library_name="peft" if _is_adapter(model) else "transformers",
        base_model=base,
        tags=list(dict.fromkeys([*TRAINING_TAGS, *extra, "generated_from_trainer"])),
        datasets=hub_datasets,
        model_name=name,
        language=language,
        license=license,
        pipeline_tag=_task_type(model, _EMPTY_REPORT) if model is not None else None,
    )
    if base:
        card_data.base_model_relation = "adapter" if _is_adapter(model) else "finetune"
    codes = None
    if codebook is not None:
        id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
        missed = codebook.metadata.get("unlearned_classes")
        codes = {
            "count": len(codebook),
            "seed": codebook.seed,
            "distribution": codebook.distribution,
            "codes_per_class": codebook.codes_per_class,
            "fingerprint": codebook.fingerprint(),
            "checked": missed is not None,
            "missed": [_cell(id2label.get(c, c)) for c in missed or []],
        }
    history = [e for e in getattr(getattr(trainer, "state", None), "log_history", []) or [] if isinstance(e, Mapping)]
    results = [
        (_cell(k), _fmt(_number(v)))
        for e in history[-2:]
        for k, v in sorted(e.items())
        if _number(v) is not None and (k.startswith("eval_") or k == "train_loss")
    ]
    return ModelCard.from_template(
        card_data,
        template_path=model_card_template_path(TRAINING_TEMPLATE_FILE),
        title=name,
        base_model=base,
        datasets=[public_name(d) for d in datasets],
        trainer_name=type(trainer).__name__,
        codes=codes,
        hyperparameters=[
            (n, _cell(scrub_paths(getattr(args, n)))) for n in TRAINING_HYPERPARAMETERS if hasattr(args, n)
        ],
        results=results,
        auto_class=_auto_class(model),
        load_path=getattr(args, "hub_model_id", None) or "path/to/this/folder",
        versions=sorted(library_versions().items()),
    )
