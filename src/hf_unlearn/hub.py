"""Model cards and Hub publishing for unlearned models.

- [`render_model_card`] turns an [`UnlearningReport`] into a ``huggingface_hub.ModelCard`` (YAML header with tags,
  ``base_model`` and ``model-index``; body from the Jinja template ``model_card_template.md`` shipped in the package).
- [`plot_per_class_accuracy`] draws the before/after per-class accuracy chart the card shows.
- [`save_unlearned`] writes a complete model folder (weights, processing class, codes, config, report, chart, card).
- [`push_unlearned`] uploads such a folder; a failed upload raises [`HubPushError`] and leaves the folder as it was.
- [`on_push_begin`] / [`attach_card_to_trainer`] make ``Trainer.push_to_hub()`` publish the same files and card.

Only the main process writes files or pushes. Tokens are handed to ``huggingface_hub`` and never written or logged.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import inspect
import json
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .report import UnlearningReport
from .utils import get_logger

logger = get_logger(__name__)

CARD_FILE = "README.md"
CHART_FILE = "unlearning_per_class_accuracy.png"
TEMPLATE_FILE = "model_card_template.md"
CARD_TAGS = ("unlearning", "hf-unlearn")

METHOD_DESCRIPTIONS = {
    "mnemonic": "diagonal Fisher information computed on the mnemonic codes, fixed random inputs per class, not on "
    "training data; each weight is moved in proportion to its forget/retain Fisher ratio",
    "fisher_mask": "the weights scoring highest on forget-minus-retain Fisher information are set to zero",
    "ssd": "Selective Synaptic Dampening: weights far more important to the forgotten data than to the training "
    "data are scaled down",
    "fisher_noise": "Fisher forgetting: noise scaled by the inverse Fisher information of the retained data is added",
}

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
_PER_CLASS_KEYS = ("per_class_accuracy", "per_class", "class_accuracy")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class HubPushError(RuntimeError):
    """A push to the Hub failed; the local folder ``output_dir`` is complete and the push can be retried."""

    def __init__(self, message: str, *, repo_id: str, output_dir: str):
        super().__init__(message)
        self.repo_id = repo_id
        self.output_dir = output_dir


# ---------------------------------------------------------------------------------------------------- template
def model_card_template_path() -> str:
    """Path of ``model_card_template.md``: the package data of an installed wheel, else the repository root."""
    try:
        resource = importlib.resources.files("hf_unlearn") / TEMPLATE_FILE
        if resource.is_file():
            return str(resource)
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):  # pragma: no cover - exotic loaders
        pass
    path = Path(__file__).resolve().parents[2] / TEMPLATE_FILE  # editable install: src/hf_unlearn/hub.py
    if not path.is_file():
        raise FileNotFoundError(f"{TEMPLATE_FILE} is neither in the hf_unlearn package nor at {path}.")
    return str(path)


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


def _per_class(values: Any, label2id: Mapping[str, int]) -> dict[int, float]:
    """``{class id: accuracy}`` from a mapping keyed by id (int or str) or label name, or a list indexed by id."""
    if not isinstance(values, Mapping):
        return {}
    for key in _PER_CLASS_KEYS:
        pc = values.get(key)
        if isinstance(pc, Mapping):
            out = {}
            for k, v in pc.items():
                cid = label2id.get(str(k), int(k) if str(k).lstrip("-").isdigit() else None)
                if cid is not None and v is not None:
                    out[cid] = float(v)
            return out
        if isinstance(pc, Sequence) and not isinstance(pc, str):
            return {i: float(v) for i, v in enumerate(pc) if v is not None}
    return {}


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{int(v):,}" if float(v).is_integer() and abs(v) > 1 else f"{v:.4f}"  # counts such as num_*_samples


# ---------------------------------------------------------------------------------------------------- chart
def plot_per_class_accuracy(report: UnlearningReport, path: str | os.PathLike) -> str | None:
    """Draws per-class accuracy before and after unlearning as grouped bars, forgotten classes marked.

    Args:
        report: the run's record; its ``metrics["before"/"after"]["per_class_accuracy"]`` (a mapping from class id
            or label name to accuracy, or a list indexed by class id) is drawn.
        path: PNG file to write.

    Returns:
        ``path`` as a string, or ``None`` (nothing written) when the report holds no per-class accuracy.
    """
    if not report.metrics:
        return None
    names = dict(zip(report.forget_classes, report.forget_labels))
    names.update(zip(report.retain_classes, report.retain_labels))
    label2id = {str(v): k for k, v in names.items()}
    before = _per_class(report.metrics.get("before"), label2id)
    after = _per_class(report.metrics.get("after"), label2id)
    classes = sorted(set(before) | set(after))
    if not classes:
        return None

    # A bare Figure on an Agg canvas: no display, no pyplot state, and the user's backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    forgotten = set(report.forget_classes)
    xs = list(range(len(classes)))
    width = 0.4
    fig = Figure(figsize=(max(4.0, 0.6 * len(classes) + 1.5) + 1.6, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar([x - width / 2 for x in xs], [before.get(c, 0.0) for c in classes], width, color="#9aa5b1")
    bars = ax.bar([x + width / 2 for x in xs], [after.get(c, 0.0) for c in classes], width)
    for bar, c in zip(bars, classes):
        if c in forgotten:  # hatch lines are drawn in the edge colour
            bar.set(facecolor="#d1495b", edgecolor="#7a1f2b", hatch="//")
        else:
            bar.set(facecolor="#2e86ab", edgecolor="#2e86ab")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{names.get(c, c)}{'*' if c in forgotten else ''}" for c in classes], rotation=0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title("Per-class accuracy (* = forgotten)")
    from matplotlib.patches import Patch

    handles = [
        Patch(color="#9aa5b1", label="before"),
        Patch(color="#2e86ab", label="after, retained"),
        Patch(facecolor="#d1495b", edgecolor="#7a1f2b", hatch="//", label="after, forgotten"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    fig.tight_layout()
    path = str(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path


# ---------------------------------------------------------------------------------------------------- card
def _current_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("hf_unlearn", "torch", "transformers", "accelerate", "huggingface_hub"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _request_fingerprint(report: UnlearningReport) -> tuple[str, str | None]:
    if report.forget_request_fingerprint:
        return report.forget_request_fingerprint, None
    # Older or hand-made reports: fingerprint what the report itself says was asked for.
    request = {"method": report.method, "forget_classes": sorted(report.forget_classes)}
    request["hyperparameters"] = report.hyperparameters
    blob = json.dumps(request, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest(), "computed from the report's method, classes and hyperparameters"


def _cell(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s.replace("|", "\\|").replace("\n", " ")


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


def _base_model(report: UnlearningReport, model: Any) -> str | None:
    if report.base_model:
        return str(report.base_model)
    name = getattr(getattr(model, "config", None), "_name_or_path", None)
    return str(name) if name else None


def _is_hub_id(name: str | None) -> bool:
    return bool(name) and _REPO_ID.match(name) is not None and not os.path.exists(name)


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

    Args:
        report: what the unlearning run did.
        model: the unlearned model; used for the base model name (``config._name_or_path``) when the report has none,
            and for the task (image or text classification).
        repo_id: Hub repository the card is for; used in the loading example and as the default model name.
        chart_path: the per-class accuracy chart (from [`plot_per_class_accuracy`]) if one was drawn; the card links
            to it by file name, so it must sit in the same folder as the card.
        model_name: name in the title and ``model-index``; defaults to the last part of ``repo_id``.
        tags: extra YAML tags, added after ``unlearning``, ``hf-unlearn`` and the method.
        codebook: the [`MnemonicCodebook`] saved beside the model, if any; its seed and fingerprint are recorded.

    Returns:
        A ``huggingface_hub.ModelCard``; ``card.save(path)`` writes it, ``card.data`` holds the YAML header.
    """
    if not isinstance(report, UnlearningReport):
        raise TypeError(f"`report` must be an UnlearningReport, got {type(report).__name__}.")
    base_model = _base_model(report, model)
    hub_base = base_model if _is_hub_id(base_model) else None
    name = model_name or (repo_id.split("/")[-1] if repo_id else None)
    if not name:
        name = f"{base_model.rstrip('/').split('/')[-1]}-unlearned" if base_model else "unlearned-model"
    metrics = _normalised_metrics(report)

    eval_results = None
    if metrics and metrics.get("after"):
        dataset = report.details.get("eval_dataset") or report.details.get("dataset")
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
                        dataset_type=str(dataset or "custom"),
                        dataset_name=str(dataset or "held-out evaluation data"),
                        metric_type=metric_type,
                        metric_value=round(value, 6),
                        metric_name=f"{_METRIC_LABELS[key]} after unlearning",
                    )
                )
        eval_results = eval_results or None

    all_tags = list(dict.fromkeys([*CARD_TAGS, report.method, *(tags or [])]))
    card_data = ModelCardData(
        library_name="transformers",
        tags=all_tags,
        base_model=hub_base,
        model_name=name if eval_results else None,
        eval_results=eval_results,
        pipeline_tag=_task_type(model, report) if model is not None else None,
    )

    metric_rows = []
    if metrics:
        before, after = metrics.get("before", {}), metrics.get("after", {})
        keys = [k for k in _METRIC_ALIASES if k in before or k in after]
        keys += sorted(k for k in {*before, *after} if k not in _METRIC_ALIASES)
        metric_rows = [(_METRIC_LABELS.get(k, _cell(k)), _fmt(before.get(k)), _fmt(after.get(k))) for k in keys]

    fingerprint, fingerprint_note = _request_fingerprint(report)
    changed = report.num_parameters_changed
    total = report.num_parameters_total
    parameters_changed = f"{changed:,} of {total:,} ({100.0 * changed / total:.2f}%)" if total else f"{changed:,}"
    codebook_info = None
    if codebook is not None:
        codebook_info = {
            "seed": codebook.seed,
            "distribution": codebook.distribution,
            "codes_per_class": codebook.codes_per_class,
            "fingerprint": codebook.fingerprint(),
        }
    details = json.dumps(report.details, indent=2, sort_keys=True, default=str) if report.details else None
    if base_model and hub_base:
        base_model_link = f"[`{base_model}`](/{base_model})"
    else:
        base_model_link = f"`{base_model}`" if base_model else "a classifier"

    card = ModelCard.from_template(
        card_data,
        template_path=model_card_template_path(),
        title=name,
        base_model=base_model,
        base_model_link=base_model_link,
        method=report.method,
        method_description=METHOD_DESCRIPTIONS.get(report.method),
        parameters_changed=parameters_changed,
        hyperparameters=[(_cell(k), _cell(v)) for k, v in sorted(report.hyperparameters.items())],
        forgotten=[(c, _cell(lab)) for c, lab in zip(report.forget_classes, report.forget_labels)],
        retained=[(c, _cell(lab)) for c, lab in zip(report.retain_classes, report.retain_labels)],
        fisher_samples=[(_cell(k), v) for k, v in sorted(report.fisher_samples.items())],
        metric_rows=metric_rows,
        eval_dataset=report.details.get("eval_dataset") or report.details.get("dataset"),
        chart_file=os.path.basename(str(chart_path)) if chart_path else None,
        timings=[(_cell(k), f"{float(v):.3f}") for k, v in report.timings.items()],
        created_at=report.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        fingerprint=fingerprint,
        fingerprint_note=fingerprint_note,
        versions=sorted((report.versions or _current_versions()).items()),
        auto_class=_auto_class(model),
        load_path=repo_id or "path/to/this/folder",
        codebook=codebook_info,
        details=details,
    )
    return card


# ---------------------------------------------------------------------------------------------------- saving
def _is_main_process(accelerator: Any = None) -> bool:
    if accelerator is not None:
        return bool(accelerator.is_main_process)
    from accelerate import PartialState

    return PartialState().is_main_process


def _check_savable(obj: Any, argument: str) -> None:
    if obj is not None and not callable(getattr(obj, "save_pretrained", None)):
        raise TypeError(f"`{argument}` ({type(obj).__name__}) has no `save_pretrained` method; pass None to skip it.")


def _write_card_files(
    output_dir: str,
    report: UnlearningReport,
    *,
    model: Any = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    tags: Sequence[str] | None = None,
    codebook: Any = None,
    config: Any = None,
) -> None:
    """Writes everything except the model and processing class: codes, config, report, chart, card."""
    os.makedirs(output_dir, exist_ok=True)
    if codebook is not None:
        codebook.save_pretrained(output_dir)
    if config is not None:
        config.save_pretrained(output_dir)
    report.save(output_dir)
    chart = plot_per_class_accuracy(report, os.path.join(output_dir, CHART_FILE))
    if chart is None and os.path.isfile(os.path.join(output_dir, CHART_FILE)):
        os.remove(os.path.join(output_dir, CHART_FILE))  # a chart left from an earlier run would be uploaded
    card = render_model_card(
        report, model=model, repo_id=repo_id, chart_path=chart, model_name=model_name, tags=tags, codebook=codebook
    )
    card.save(os.path.join(output_dir, CARD_FILE))


def save_unlearned(
    output_dir: str | os.PathLike,
    model: Any,
    report: UnlearningReport,
    *,
    processing_class: Any = None,
    codebook: Any = None,
    config: Any = None,
    repo_id: str | None = None,
    accelerator: Any = None,
) -> str:
    """Writes an unlearned model and everything that documents it into ``output_dir`` (main process only).

    The folder gets the model (``model.save_pretrained``), the processing class, the mnemonic codes, the unlearning
    config, ``unlearning_report.json``, the per-class accuracy chart (when the report has per-class metrics) and
    ``README.md`` (the model card). All arguments are checked before anything is written.

    Args:
        output_dir: folder to write; created if missing, must not be an existing file.
        model: the unlearned model (anything with ``save_pretrained``; DDP wrappers are unwrapped).
        report: the [`UnlearningReport`] of the run.
        processing_class: image processor or tokenizer to save beside the model, if any.
        codebook: the [`MnemonicCodebook`] used, if any.
        config: the ``UnlearningConfig`` used (anything with ``save_pretrained(directory)``), if any.
        repo_id: Hub repository the folder is meant for, used in the card's loading example.
        accelerator: the ``Accelerator`` of the run; without one, ``accelerate.PartialState`` says which process is
            the main one.

    Returns:
        ``output_dir`` as a string (on every process; only the main process writes).
    """
    from .utils import unwrap_model

    if output_dir is None or str(output_dir) == "":
        raise ValueError("`output_dir` must be a folder path, got an empty value.")
    output_dir = str(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"`output_dir` {output_dir!r} is an existing file; give a folder path.")
    if model is None:
        raise ValueError("`model` is None; pass the unlearned model.")
    model = unwrap_model(model) if hasattr(model, "parameters") else model
    _check_savable(model, "model")
    if report is None:
        raise ValueError("`report` is None; pass the UnlearningReport returned by the unlearning run.")
    if not isinstance(report, UnlearningReport):
        raise TypeError(f"`report` must be an UnlearningReport, got {type(report).__name__}.")
    _check_savable(processing_class, "processing_class")
    _check_savable(codebook, "codebook")
    _check_savable(config, "config")

    if not _is_main_process(accelerator):
        return output_dir
    os.makedirs(output_dir, exist_ok=True)
    model.save_pretrained(output_dir)
    if processing_class is not None:
        processing_class.save_pretrained(output_dir)
    _write_card_files(output_dir, report, model=model, repo_id=repo_id, codebook=codebook, config=config)
    logger.info("Saved the unlearned model, its report and model card to %s", output_dir)
    return output_dir


# ---------------------------------------------------------------------------------------------------- pushing
def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "<redacted>") if token else text


def push_unlearned(
    repo_id: str,
    output_dir: str | os.PathLike,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
    accelerator: Any = None,
) -> str | None:
    """Uploads a folder written by [`save_unlearned`] to the Hub repository ``repo_id`` (main process only).

    The repository is created if needed. A failed push raises [`HubPushError`]; the local folder is left untouched,
    so calling this again retries the push.

    Args:
        repo_id: ``"namespace/name"`` of the model repository.
        output_dir: the folder to upload.
        private: visibility of a newly created repository (``None``: the Hub's default). Ignored if it exists.
        token: Hub token; ``None`` uses ``HF_TOKEN`` or the stored login. Never written or logged.
        revision: branch to commit to (default ``main``); created from ``main`` if missing.
        commit_message: defaults to ``"Upload unlearned model (hf_unlearn, <method>)"``.
        endpoint: Hub URL; ``None`` uses the ``HF_ENDPOINT`` environment variable, else huggingface.co.
        accelerator: the ``Accelerator`` of the run, to tell the main process; optional.

    Returns:
        The URL of the commit on the main process, ``None`` on the others.

    Raises:
        ValueError: bad ``repo_id`` or ``output_dir`` (nothing is sent).
        HubPushError: the Hub could not be reached or refused the upload (chained from the original error).
    """
    from huggingface_hub import HfApi, constants

    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(f"`repo_id` must be a non-empty 'namespace/name' string, got {repo_id!r}.")
    if output_dir is None or not os.path.isdir(str(output_dir)):
        raise ValueError(f"`output_dir` {output_dir!r} is not a folder; write it with save_unlearned first.")
    output_dir = str(output_dir)
    if not os.path.isfile(os.path.join(output_dir, CARD_FILE)):
        logger.warning("%s has no %s: the pushed model will have no model card.", output_dir, CARD_FILE)
    if not _is_main_process(accelerator):
        return None
    if commit_message is None:
        method = None
        try:
            method = UnlearningReport.load(output_dir).method
        except (OSError, ValueError, TypeError):
            pass
        commit_message = f"Upload unlearned model (hf_unlearn{', ' + method if method else ''})"
    retry_hint = f"The local folder at {output_dir} is complete and untouched; call push_unlearned again to retry."
    if constants.is_offline_mode():
        raise HubPushError(
            f"Cannot push {repo_id!r}: offline mode is on (HF_HUB_OFFLINE=1); unset it to push. {retry_hint}",
            repo_id=repo_id,
            output_dir=output_dir,
        )
    # HF_ENDPOINT is read by huggingface_hub once, at import; reading it here honours a later change too.
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
    api = HfApi(endpoint=endpoint, token=token, library_name="hf_unlearn")
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        if revision is not None and revision != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=output_dir,
            revision=revision,
            commit_message=commit_message,
        )
    except Exception as e:
        reason = _redact(f"{type(e).__name__}: {e}", token or os.environ.get("HF_TOKEN"))
        raise HubPushError(
            f"Pushing {output_dir} to {repo_id!r} on {api.endpoint} failed ({reason}). {retry_hint}",
            repo_id=repo_id,
            output_dir=output_dir,
        ) from e
    logger.info("Pushed %s to %s: %s", output_dir, repo_id, info.commit_url)
    return info.commit_url


# ---------------------------------------------------------------------------------------------------- Trainer
ReportSource = UnlearningReport | Callable[[], UnlearningReport | None] | None


def attach_card_to_trainer(
    trainer: Any,
    report: ReportSource,
    *,
    codebook: Any = None,
    config: Any = None,
) -> None:
    """Makes ``trainer.push_to_hub()`` publish the unlearning card, report, chart, codes and config.

    ``Trainer.push_to_hub`` saves the model, then calls ``trainer.create_model_card`` (which writes ``README.md``)
    and uploads ``args.output_dir``. This replaces ``create_model_card`` on this one trainer instance: when a report
    is available it writes our files into ``args.output_dir`` instead of the generic Trainer card (the ``tags`` and
    ``model_name`` the Trainer passes are kept); otherwise it falls back to the Trainer's own card. Calling it again
    updates the report, codebook and config.

    Args:
        trainer: a ``transformers.Trainer``.
        report: an [`UnlearningReport`], or a callable returning the current one (or ``None``), read at push time.
        codebook: the [`MnemonicCodebook`] to save beside the model, if any.
        config: the ``UnlearningConfig`` (anything with ``save_pretrained``) to save, if any.
    """
    if not callable(getattr(trainer, "create_model_card", None)):
        raise TypeError(
            f"`trainer` ({type(trainer).__name__}) has no `create_model_card`; pass a transformers Trainer."
        )
    _check_savable(codebook, "codebook")
    _check_savable(config, "config")
    state = getattr(trainer, "_hf_unlearn_card_state", None)
    if state is not None:
        state.update(report=report, codebook=codebook, config=config)
        return
    state = {"report": report, "codebook": codebook, "config": config}
    original = trainer.create_model_card

    @functools.wraps(original)
    def create_model_card(*args: Any, **kwargs: Any) -> None:
        source = state["report"]
        current = source() if callable(source) else source
        if current is None:
            return original(*args, **kwargs)
        if not trainer.is_world_process_zero():
            return None
        tags = kwargs.get("tags")
        _scrub_training_args(trainer.args)
        _write_card_files(
            trainer.args.output_dir,
            current,
            model=trainer.model,
            repo_id=getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id,
            model_name=kwargs.get("model_name"),
            tags=[tags] if isinstance(tags, str) else tags,
            codebook=state["codebook"],
            config=state["config"],
        )
        return None

    trainer.create_model_card = create_model_card
    trainer._hf_unlearn_card_state = state


def _scrub_training_args(args: Any) -> None:
    # Trainer.save_model pickles the TrainingArguments, hub_token included, into training_args.bin, which
    # push_to_hub then uploads. Re-save a copy without tokens before the upload.
    import copy

    import torch

    path = os.path.join(args.output_dir, "training_args.bin")
    secrets = [f for f in vars(args) if f.endswith("_token") and isinstance(getattr(args, f), str)]
    if not secrets or not os.path.isfile(path):
        return
    clean = copy.copy(args)
    for f in secrets:
        setattr(clean, f, None)
    torch.save(clean, path)


def _trainer_on_stack() -> Any:
    # TrainerCallback hooks do not receive the trainer, but on_push_begin is always called from inside
    # Trainer.push_to_hub / Trainer._push_from_checkpoint, so the trainer is the `self` of a caller's frame.
    from transformers import Trainer

    frame = inspect.currentframe()
    try:
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Trainer):
                return candidate
            frame = frame.f_back
        return None
    finally:
        del frame


def on_push_begin(
    report: UnlearningReport | None,
    args: Any,
    model: Any = None,
    *,
    processing_class: Any = None,
    codebook: Any = None,
    config: Any = None,
    trainer: Any = None,
) -> None:
    """The body of a ``TrainerCallback.on_push_begin`` hook: prepares ``args.output_dir`` for ``Trainer.push_to_hub``.

    Writes the report, chart, codes, config and card into ``args.output_dir`` (on the process that saves,
    ``args.should_save``) and attaches the card to the trainer ([`attach_card_to_trainer`]) so that the
    ``README.md`` the Trainer writes next is ours. Does nothing when ``report`` is ``None`` (nothing was unlearned).

    Args:
        report: the [`UnlearningReport`] of the run, or ``None``.
        args: the ``TrainingArguments`` passed to the hook.
        model: the ``model`` of the hook's kwargs.
        processing_class: the ``processing_class`` of the hook's kwargs (saved by the Trainer itself; used only to
            check it).
        codebook: the [`MnemonicCodebook`] to save beside the model, if any.
        config: the ``UnlearningConfig`` to save, if any.
        trainer: the ``Trainer`` pushing; when ``None`` it is found on the call stack (the hook runs inside
            ``Trainer.push_to_hub``). If none is found, the Trainer's generic card will overwrite ``README.md``
            and a warning says so.
    """
    if report is None:
        return
    if not isinstance(report, UnlearningReport):
        raise TypeError(f"`report` must be an UnlearningReport or None, got {type(report).__name__}.")
    output_dir = getattr(args, "output_dir", None)
    if not output_dir:
        raise ValueError("`args` has no `output_dir`; pass the TrainingArguments the hook received.")
    _check_savable(processing_class, "processing_class")
    trainer = trainer if trainer is not None else _trainer_on_stack()
    if trainer is not None:
        attach_card_to_trainer(trainer, report, codebook=codebook, config=config)
    else:
        logger.warning(
            "on_push_begin found no Trainer: Trainer.create_model_card will overwrite the unlearning model card in %s. "
            "Pass `trainer=` to keep it.",
            output_dir,
        )
    if not getattr(args, "should_save", True):
        return
    repo_id = getattr(trainer, "hub_model_id", None) or getattr(args, "hub_model_id", None)
    _write_card_files(str(output_dir), report, model=model, repo_id=repo_id, codebook=codebook, config=config)
