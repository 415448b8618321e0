"""``audit_forgetting``: checks the inputs, measures every model with one protocol, compares with retraining."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..utils import get_logger, id2label_of, resolve_classes
from .measures import (
    _ain,
    _check_model,
    _check_steps,
    _js,
    _measure,
    _positive_int,
    _prepare_data,
    _Record,
    _set_relearn_time,
    _standing,
    _two_sided,
    _verdict,
    distinguisher_accuracy,
    distinguisher_features,
    full_label_space,
)
from .result import (
    DISTINGUISHER_MARGIN,
    JS_FACTOR,
    RELEARN_KEY,
    RESET_RELEARN_KEY,
    STANDING_KEYS,
    TWO_SIDED_KEYS,
    TWO_SIDED_TOLERANCE,
    ForgettingAudit,
    _metric,
)

logger = get_logger(__name__)


# ------------------------------------------------------------------------------------------------------------ api
def audit_forgetting(
    model: nn.Module,
    *,
    forget_classes: int | str | Iterable[int | str],
    train_dataset: Any,
    eval_dataset: Any,
    data_collator: Callable | None = None,
    original: nn.Module | None = None,
    retrained: Sequence[nn.Module] | nn.Module | None = None,
    relearn_steps: Sequence[int] = (1, 3, 10),
    seed: int = 0,
    relearn_lr: float = 1e-3,
    relearn_max_steps: int | None = None,
    relearn_target: float = 0.95,
    relearn_forget_samples: int = 16,
    relearn_retain_samples: int = 16,
    prototype_shots: int = 5,
    max_probe_samples: int | None = 20000,
    batch_size: int = 64,
    show_progress: bool = True,
    reference: ForgettingAudit | None = None,
    accelerator: Any = None,
) -> ForgettingAudit | None:
    """Measures how deeply ``model`` forgot ``forget_classes``, against the ``original`` and ``retrained`` models.

    Every model goes through the same protocol with the same seed (see the module docstring for each metric).
    Nothing is changed in any model given: the relearn steps and the head rewrite run on copies, and every
    submodule's train/eval mode and ``requires_grad`` are as before.

    Args:
        model: the classifier to audit (any ``*ForImageClassification`` / ``*ForSequenceClassification``, or a
            ``peft.PeftModel`` around one: features are read at its trainable head copy's input, and relearning
            fine-tunes a copy of every weight, base included).
        forget_classes: ids or label names of the forgotten classes.
        train_dataset: the training split (labelled; any data set ``hf_unlearn.evaluation.predict`` reads): the
            probe's training data, the prototype shots, the relearn batch and the MIA's members.
        eval_dataset: held-out labelled samples (e.g. the test split) on which every accuracy is measured.
        data_collator: builds batches from samples (e.g. ``DataCollatorWithPadding(tokenizer)`` for text).
        original: the model before unlearning; its forget accuracy sets the relearn target.
        retrained: models trained without the forgotten classes (several seeds): the reference range. Either with
            ``model``'s label space (the recommended kind: same recipe, the forgotten classes' rows left out) or
            with the forgotten classes dropped from it (fewer labels, ids shifted, e.g. retrained by transformers'
            example scripts): those are matched to ``model``'s classes by label name (``config.id2label``), their
            dropped classes get the mean head row and bias of the others, and ``retrained_label_spaces`` says so.
            The distinguisher needs two or more.
        relearn_steps: the k at which ``relearn_forget_accuracy`` is read (``()`` skips relearning).
        seed: fixes every random choice (prototype shots, relearn batch, probe subsample, relearn dropout).
        relearn_lr: Adam learning rate of the relearn steps.
        relearn_max_steps: cap of the relearn time measurement (default: the largest of ``relearn_steps``);
            a model that does not reach the target by then gets the cap and ``relearn_time_censored=True``.
        relearn_target: ``relearn_time`` counts the steps until forget accuracy >= this fraction of the original's.
        relearn_forget_samples / relearn_retain_samples: size of the fixed relearn batch (training samples of the
            forget classes / of the other classes).
        prototype_shots: forget-class training samples averaged into each rewritten head row.
        max_probe_samples: cap on the training samples whose features train the probe (a seeded random subset).
        batch_size: samples per forward pass.
        show_progress: tqdm progress bars on the passes over data and the relearn steps.
        reference: an earlier audit (same classes, data and settings) whose ``original`` and ``retrained``
            measurements are reused instead of measured again (cannot be combined with ``original`` /
            ``retrained``). Useful to audit several unlearned models against the same retrained models.
        accelerator: an ``accelerate.Accelerator``. The audit runs on the main process only; every other rank
            returns ``None`` at once (and so does a non-zero rank of an initialised ``torch.distributed`` group
            when no accelerator is given). Pass unwrapped (or wrapped) models; no collective call is made.

    Returns:
        A [`ForgettingAudit`] (``None`` on non-main processes).

    Raises:
        ValueError: naming the argument, before any model runs: ``forget_classes`` empty, unknown or covering
            every class; ``model`` / ``original`` / ``retrained`` without a classification head or with another
            number of labels; ``train_dataset`` / ``eval_dataset`` empty, holding labels outside the model's
            classes, or with no sample of a forget class; bad ``relearn_steps`` and other settings.
    """
    if accelerator is not None:
        if not accelerator.is_main_process:
            return None
    elif torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank():
        return None
    t_start = time.perf_counter()

    # ---- validate everything before running any model
    num_labels = _check_model(model, "model")
    if original is not None:
        _check_model(original, "original", num_labels)
    if isinstance(retrained, nn.Module):
        retrained = [retrained]
    retrained = list(retrained or [])
    for i, r in enumerate(retrained):
        _check_model(r, f"retrained[{i}]")
    if reference is not None:
        if not isinstance(reference, ForgettingAudit):
            raise ValueError(f"`reference` must be a ForgettingAudit, got {type(reference).__name__}.")
        if original is not None or retrained:
            raise ValueError("`reference` replaces `original` and `retrained`; give one or the other.")
    id2label = id2label_of(model)
    forget = resolve_classes(forget_classes, id2label, "forget_classes")
    if len(forget) >= num_labels:
        raise ValueError(f"`forget_classes` names every class ({forget}); at least one class must be retained.")
    given_retrained = list(retrained)
    label_spaces, dropped_any = [], False
    for i, r in enumerate(given_retrained):  # references retrained without the classes' labels: matched by name
        retrained[i], dropped = full_label_space(r, id2label, forget, f"retrained[{i}]")
        dropped_any = dropped_any or bool(dropped)
        label_spaces.append(
            f"dropped {[id2label[c] for c in dropped]} (matched by label names)" if dropped else "full"
        )
    steps = _check_steps(relearn_steps)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an integer, got {seed!r}.")
    for value, argument in (
        (relearn_forget_samples, "relearn_forget_samples"),
        (relearn_retain_samples, "relearn_retain_samples"),
        (prototype_shots, "prototype_shots"),
        (batch_size, "batch_size"),
    ):
        _positive_int(value, argument)
    _positive_int(max_probe_samples, "max_probe_samples", allow_none=True)
    _positive_int(relearn_max_steps, "relearn_max_steps", allow_none=True)
    if not (isinstance(relearn_lr, (int, float)) and relearn_lr > 0 and math.isfinite(relearn_lr)):
        raise ValueError(f"`relearn_lr` must be a positive number, got {relearn_lr!r}.")
    if not (isinstance(relearn_target, (int, float)) and 0 < relearn_target <= 1):
        raise ValueError(f"`relearn_target` must be in (0, 1], got {relearn_target!r}.")
    cap = max(relearn_max_steps or 0, max(steps, default=0))
    settings = {
        "seed": seed,
        "relearn_steps": steps,
        "relearn_max_steps": cap,
        "relearn_lr": float(relearn_lr),
        "relearn_optimizer": "Adam",
        "relearn_target": float(relearn_target),
        "relearn_forget_samples": relearn_forget_samples,
        "relearn_retain_samples": relearn_retain_samples,
        "prototype_shots": prototype_shots,
        "max_probe_samples": max_probe_samples,
        "probe": "StandardScaler + LogisticRegression (multinomial, lbfgs, max_iter 1000)",
        "js_log_base": "e",
        "mia_score": "loss",
        "reset_relearn": "forgotten head rows set to the mean retained row and bias, then the relearn steps",
        "distinguisher": "StandardScaler + LogisticRegression on the log-softmax of every forget-class sample "
        "(training and eval rows), fitted on a seeded half of the samples, tested on the other half",
    }
    data = _prepare_data(
        train_dataset,
        eval_dataset,
        forget,
        num_labels,
        seed,
        prototype_shots,
        relearn_forget_samples,
        relearn_retain_samples,
        max_probe_samples,
        data_collator,
    )
    settings.update(
        num_train_samples=len(data.train_labels),
        num_probe_samples=len(data.probe_idx),
        num_feature_samples=len(data.feature_idx),
        num_relearn_samples=len(data.relearn_idx),
        rows_fingerprint=data.fingerprint(),
        num_forget_eval_samples=int(data.forget_eval_mask.sum()),
        num_eval_samples=len(data.eval_labels),
    )
    if reference is not None and (settings != reference.settings or reference.forget_classes != forget):
        diff = sorted(k for k in settings if settings[k] != reference.settings.get(k))
        raise ValueError(
            f"`reference` was measured with other forget classes, settings or data ({diff or 'forget_classes'} "
            "differ); give `original` / `retrained` instead."
        )
    old = reference._data if reference is not None else None
    if old is not None and old.train is train_dataset and old.eval is eval_dataset and old.collator is data_collator:
        data.cache, data.readers = old.cache, old.readers  # the same data: reuse its collated batches
        data.cache_bytes = old.cache_bytes

    kw = dict(
        data_collator=data_collator,
        batch_size=batch_size,
        relearn_steps=steps,
        relearn_max_steps=cap,
        relearn_lr=float(relearn_lr),
        seed=seed,
        show_progress=show_progress,
    )
    # ---- measure: the original first (its forget accuracy sets the relearn target)
    if reference is not None:
        orig_rec, ret_recs = reference._original_record, list(reference._retrained_records)
        threshold = reference.relearn_threshold
    else:
        orig_rec = None
        threshold = None
        if original is not None:
            orig_rec = _measure(
                original, data, forget, relearn_threshold=None, name="original", argument="original", **kw
            )
            threshold = relearn_target * orig_rec.metrics["forget_accuracy"]
            _set_relearn_time(orig_rec.metrics, threshold, cap)
        ret_recs = [
            _measure(
                r, data, forget, relearn_threshold=threshold, name=f"retrained[{i}]", argument=f"retrained[{i}]", **kw
            )
            for i, r in enumerate(retrained)
        ]
    if reference is not None:
        label_spaces = list(reference.retrained_label_spaces)
        dropped_any = any(space != "full" for space in label_spaces)
    same = [r for m, r in zip([original, *given_retrained], [orig_rec, *ret_recs]) if m is model and r is not None]
    if same:  # the audited model is also the original or a retrained model: measured already, same protocol
        rec = _Record(
            metrics=copy.deepcopy(same[0].metrics),
            forget_probs=same[0].forget_probs,
            seconds=same[0].seconds,
            forget_log_probs=same[0].forget_log_probs,
        )
    else:
        rec = _measure(model, data, forget, relearn_threshold=threshold, name="model", argument="model", **kw)

    # ---- comparisons with the retrained models (over the retained classes when a reference dropped the others)
    retained = [c for c in range(num_labels) if c not in forget] if dropped_any else None

    def probs(r: _Record) -> np.ndarray:
        if retained is None:
            return r.forget_probs
        p = r.forget_probs[:, retained]
        return p / p.sum(1, keepdims=True)

    def feats(r: _Record) -> np.ndarray:
        return distinguisher_features(r.forget_log_probs, retained)

    js_reference = dist_reference = dist_protocol = None
    if ret_recs:
        for rr in [rec] + ([orig_rec] if orig_rec is not None else []):
            rr.metrics["js_to_retrained"] = float(np.mean([_js(probs(rr), probs(r)) for r in ret_recs]))
            rr.metrics["ain"] = _ain(rr.metrics.get("relearn_time"), [r.metrics.get("relearn_time") for r in ret_recs])
            rr.metrics["distinguisher_accuracy"] = (
                distinguisher_accuracy(feats(rr), [feats(r) for r in ret_recs], seed)[0]
                if len(ret_recs) >= 2
                else None
            )
        if reference is None:
            for i, r in enumerate(ret_recs):
                others = ret_recs[:i] + ret_recs[i + 1 :]
                r.metrics["js_to_retrained"] = (
                    float(np.mean([_js(probs(r), probs(o)) for o in others])) if others else None
                )
                r.metrics["ain"] = _ain(r.metrics.get("relearn_time"), [o.metrics.get("relearn_time") for o in others])
                r.metrics["distinguisher_accuracy"], dist_protocol = distinguisher_accuracy(
                    feats(r), [feats(o) for o in others], seed
                )
        else:
            dist_protocol = reference.distinguisher_reference_protocol
        if len(ret_recs) >= 2:
            pairs = [_js(probs(a), probs(b)) for i, a in enumerate(ret_recs) for b in ret_recs[i + 1 :]]
            js_reference = float(np.mean(pairs))
            dist_reference = float(np.mean([r.metrics["distinguisher_accuracy"] for r in ret_recs]))
        else:
            logger.info("One retrained model: the distinguisher needs two or more (distinguisher_accuracy is None).")

    standing, ranges = {}, {}
    keys = list(STANDING_KEYS) + [f"{name}@{k}" for name in (RELEARN_KEY, RESET_RELEARN_KEY) for k in steps]
    for key in keys:
        values = [_metric(r.metrics, key) for r in ret_recs]
        res = _standing(_metric(rec.metrics, key), values)
        if res is not None:
            standing[key], ranges[key] = res
            kept = [float(v) for v in values if v is not None]
            ranges[key]["std"] = float(np.std(kept, ddof=1)) if len(kept) > 1 else 0.0

    # ---- two-sided targets: neither keeping the class nor forgetting more than retraining does
    two_sided: dict[str, dict[str, Any]] = {}
    above, below = (
        "keeps more than retraining (hidden, not forgotten)",
        ("forgets more than retraining (recognisable as edited)"),
    )
    for key in list(TWO_SIDED_KEYS) + [f"{RESET_RELEARN_KEY}@{k}" for k in steps]:
        res = _two_sided(
            _metric(rec.metrics, key), [_metric(r.metrics, key) for r in ret_recs], TWO_SIDED_TOLERANCE, above, below
        )
        if res is not None:
            two_sided[key] = res
    if js_reference is not None and rec.metrics.get("js_to_retrained") is not None:
        two_sided["js_to_retrained"] = _verdict(
            rec.metrics["js_to_retrained"],
            0.0,
            JS_FACTOR * js_reference,
            "outputs further from retraining than retrained models are from each other",
            "",
            f"<= {JS_FACTOR:g} x the retrained models' mutual JS",
        )
    if dist_reference is not None and rec.metrics.get("distinguisher_accuracy") is not None:
        two_sided["distinguisher_accuracy"] = _verdict(
            rec.metrics["distinguisher_accuracy"],
            0.0,
            dist_reference + DISTINGUISHER_MARGIN,
            "its outputs tell it from retrained models",
            "",
            f"<= the retrained models' own + {DISTINGUISHER_MARGIN:g}",
        )
    indistinguishable = all(v["verdict"] == "within" for v in two_sided.values()) if len(ret_recs) >= 2 else None
    timings = {
        "model": rec.seconds,
        "original": orig_rec.seconds if orig_rec is not None and reference is None else None,
        "retrained": [r.seconds for r in ret_recs] if reference is None else [],
        "total": time.perf_counter() - t_start,
    }
    logger.info("Audit done in %.1f s (model %.1f s).", timings["total"], rec.seconds)
    return ForgettingAudit(
        forget_classes=forget,
        forget_labels=[id2label[c] for c in forget],
        metrics=rec.metrics,
        original=copy.deepcopy(orig_rec.metrics) if orig_rec is not None else None,
        retrained=[copy.deepcopy(r.metrics) for r in ret_recs],
        standing=standing,
        retrained_range=ranges,
        js_retrained_reference=js_reference,
        two_sided=two_sided,
        indistinguishable=indistinguishable,
        distinguisher_reference=dist_reference,
        distinguisher_reference_protocol=dist_protocol,
        retrained_label_spaces=label_spaces,
        output_comparison=(
            "JS and the distinguisher compare the softmax renormalised over the retained classes"
            if dropped_any
            else "softmax over every class"
        ),
        relearn_threshold=threshold,
        settings=settings,
        timings=timings,
        _original_record=orig_rec,
        _data=data,
        _retrained_records=ret_recs,
    )
