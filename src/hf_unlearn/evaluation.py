"""Evidence that a class was forgotten: forget/retain/test accuracy, membership inference, timing.

The standard class-unlearning metrics, computed from one prediction pass:

- ``forget_accuracy`` A_F: accuracy on the samples whose label is a forgotten class; ``forget_error`` E_F = 1 - A_F;
- ``retain_accuracy`` A_R: accuracy on the samples of the other classes;
- ``test_accuracy``: accuracy on all samples;
- ``mia_auc``: a loss- (or entropy-) based membership-inference attack on the forgotten classes, whose members are
  the forget-class *training* samples and non-members the forget-class *test* samples. A model that never saw the
  class (retrained without it) scores about 0.5; a model that still remembers its training samples scores higher.

[`predict`] runs one or many processes with the same code: give it an ``accelerate.Accelerator`` and each rank
evaluates a shard, then every rank gets the full arrays in the original order.

The same numbers are available as ``evaluate`` modules shipped in this package, loadable offline::

    import evaluate
    from hf_unlearn.evaluation import metric_path

    metric = evaluate.load(metric_path("unlearning_accuracy"))
    metric.compute(predictions=preds, references=labels, forget_classes=[0])
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from accelerate.utils import send_to_device
from torch import nn

from .data_utils import DatasetReader, check_dataset, labels_of, logits_from_outputs, shard_indices, subset
from .utils import get_logger, id2label_of, resolve_classes, unwrap_model

logger = get_logger(__name__)

METRICS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics")
MIA_SCORES = ("loss", "entropy")

__all__ = [
    "Timer",
    "accuracy_split",
    "evaluate_unlearning",
    "membership_inference_auc",
    "metric_path",
    "mia_auc_from_scores",
    "mia_auc_on_forget",
    "per_class_accuracy",
    "predict",
    "unlearning_metrics",
]


# ----------------------------------------------------------------------------------------------------------------------
# Prediction


def _device_of(model: nn.Module, accelerator: Any) -> torch.device:
    if accelerator is not None:
        return accelerator.device
    param = next(unwrap_model(model).parameters(), None)
    return param.device if param is not None else torch.device("cpu")


# features kept per prediction pass at most (floats: 256 MiB), e.g. 87k rows of a 768-wide head
FEATURE_FLOATS_MAX = 2**26


def _predict_indices(
    reader: DatasetReader,
    model: nn.Module,
    indices: list[int],
    data_collator: Callable | None,
    batch_size: int,
    device: torch.device,
    capture: nn.Module | None = None,
    max_floats: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Logits and labels of ``indices``, in their order, and with ``capture`` each row's input to that module (flattened;
    ``None`` when it does not run once per row, or holds more than ``max_floats`` values in all)."""
    net = unwrap_model(model)  # no DDP forward: ranks run different numbers of batches
    order, back = reader.by_length(indices, data_collator)  # batches of similar lengths: less padding
    all_logits, all_labels, grabbed = [], [], []
    hook, kept = None, [0]

    def grab(module: nn.Module, args: tuple) -> None:
        if args and (max_floats is None or kept[0] <= max_floats):  # past the cap: none are returned
            grabbed.append(args[0].detach().float().cpu().reshape(len(args[0]), -1))
            kept[0] += grabbed[-1].numel()

    if capture is not None:  # the input of ``capture`` per row, flattened (the output layer's features)
        hook = capture.register_forward_pre_hook(grab)
    try:
        for start in range(0, len(order), batch_size):
            batch = reader.batch(order[start : start + batch_size], data_collator)
            labels = batch.pop("labels")
            inputs = send_to_device(batch, device)
            logits = logits_from_outputs(net(**inputs))  # (B, C)
            all_logits.append(logits.detach().float().cpu())
            all_labels.append(torch.as_tensor(labels).long().reshape(-1).cpu())
    finally:
        if hook is not None:
            hook.remove()
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    whole = capture is not None and len(grabbed) == len(all_logits) and (max_floats is None or kept[0] <= max_floats)
    features = torch.cat(grabbed) if whole else None
    if features is not None and len(features) != len(logits):  # the module ran more or less than once per row
        features = None
    if back is not None:  # back to the order of ``indices``
        logits, labels = logits[back], labels[back]
        features = features[back] if features is not None else None
    return logits, labels, features


def _gather_shards(accelerator: Any, logits: torch.Tensor, labels: torch.Tensor, n: int) -> tuple:
    """Gathers rank shards ``i::world`` back into the original order on every rank (``logits``: any (L, C) rows)."""
    world = accelerator.num_processes
    per_rank = math.ceil(n / world)
    num_classes = torch.tensor([logits.shape[1] if logits.numel() else 0], device=accelerator.device)
    num_classes = int(accelerator.gather(num_classes).max())
    padded_logits = torch.zeros(per_rank, num_classes, device=accelerator.device)  # (L, C)
    padded_labels = torch.full((per_rank,), -1, dtype=torch.long, device=accelerator.device)  # (L,)
    if len(logits):
        padded_logits[: len(logits)] = logits.to(accelerator.device)
        padded_labels[: len(labels)] = labels.to(accelerator.device)
    gathered_logits = accelerator.gather(padded_logits).reshape(world, per_rank, num_classes)  # (W, L, C)
    gathered_labels = accelerator.gather(padded_labels).reshape(world, per_rank)  # (W, L)
    # rank r's j-th sample is original index j * world + r, so (L, W) row-major order is the original order;
    # the padding lands at positions >= n
    logits = gathered_logits.transpose(0, 1).reshape(-1, num_classes)[:n].cpu()
    labels = gathered_labels.transpose(0, 1).reshape(-1)[:n].cpu()
    return logits, labels


def _predict(
    model: nn.Module,
    dataset: Any,
    data_collator: Callable | None,
    batch_size: int,
    accelerator: Any,
    argument: str,
    features: dict[str, torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """[`predict`]; ``features``: a dict that receives, under ``"features"``, each row's input to the model's output
    layer (flattened, float, on the CPU, in the dataset's order on every rank), when that layer runs once per row."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    reader = DatasetReader(dataset, model, argument)
    world = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0
    indices = shard_indices(reader.n, rank, world)
    device = _device_of(model, accelerator)

    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            capture = None
            if features is not None:
                from .methods.common import output_layer_name

                last = output_layer_name(unwrap_model(model))
                capture = dict(unwrap_model(model).named_modules())[last] if last is not None else None
            x = None
            if indices:
                logits, labels, x = _predict_indices(
                    reader, model, indices, data_collator, batch_size, device, capture, FEATURE_FLOATS_MAX
                )
            else:  # more ranks than samples
                logits, labels = torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    finally:
        for m, training in modes.items():
            m.training = training
    if world > 1:
        if capture is not None:  # every rank's features, or none anywhere
            ok = torch.tensor([int(x is not None or not indices)], device=accelerator.device)
            if int(accelerator.gather(ok).min()):
                x, _ = _gather_shards(accelerator, x if x is not None else torch.zeros(0, 0), labels, reader.n)
            else:
                x = None
        logits, labels = _gather_shards(accelerator, logits, labels, reader.n)
    if features is not None and capture is not None and x is not None:
        features["features"] = x

    logits_np = logits.numpy()
    labels_np = labels.numpy().astype(np.int64)
    if not np.isfinite(logits_np).all():
        bad = int((~np.isfinite(logits_np)).any(axis=1).sum())
        raise ValueError(
            f"`model` produced NaN or infinite logits for {bad} of {len(logits_np)} samples of `{argument}`; "
            "its weights are probably broken (e.g. by too large an unlearning step)."
        )
    num_classes = logits_np.shape[1]
    if labels_np.min() < 0 or labels_np.max() >= num_classes:
        raise ValueError(
            f"`{argument}` holds labels in [{labels_np.min()}, {labels_np.max()}] but the model outputs "
            f"{num_classes} classes (ids 0..{num_classes - 1})."
        )
    return logits_np, labels_np


def predict(
    model: nn.Module,
    dataset: Any,
    *,
    data_collator: Callable | None = None,
    batch_size: int = 64,
    accelerator: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs ``model`` over ``dataset`` and returns its logits and the labels, in the dataset's order.

    The model runs in eval mode without gradients; the train/eval mode of every submodule is restored afterwards.
    Columns that the model's ``forward`` does not accept (e.g. raw ``text``) are dropped before collating.

    Args:
        model: a classifier whose forward returns logits (a ``ModelOutput`` with ``logits``, a tuple or a tensor).
        dataset: a ``datasets.Dataset`` (torch-formatted or not), a map-style torch Dataset yielding dicts, or a dict
            of columns (e.g. ``{"pixel_values": ..., "labels": ...}``). It holds the model's inputs plus ``labels``
            (or ``label``).
        data_collator: builds a batch from a list of samples; needed when samples differ in length (e.g.
            ``DataCollatorWithPadding(tokenizer)``). By default the columns are stacked into tensors.
        batch_size: samples per forward pass (per process).
        accelerator: an ``accelerate.Accelerator``. With several processes each rank evaluates the shard
            ``rank::world_size`` and the results are gathered, so every rank returns the full arrays in the
            original order. With one process (or ``None``) the model runs on its own device.

    Returns:
        ``(logits, labels)``: float32 array of shape (N, C) and int64 array of shape (N,).

    Raises:
        ValueError: if ``dataset`` is empty, lacks labels or holds labels outside the model's classes, or if
            ``model`` outputs NaN/inf logits.
    """
    return _predict(model, dataset, data_collator, batch_size, accelerator, "dataset")


# ----------------------------------------------------------------------------------------------------------------------
# Accuracy metrics


def _as_predictions(logits_or_preds: Any, argument: str = "logits_or_preds") -> np.ndarray:
    if isinstance(logits_or_preds, torch.Tensor):
        logits_or_preds = logits_or_preds.detach().cpu().numpy()
    arr = np.asarray(logits_or_preds)
    if arr.ndim == 2:
        return arr.argmax(axis=1).astype(np.int64)
    if arr.ndim == 1:
        return arr.astype(np.int64)
    raise ValueError(f"`{argument}` must be logits of shape (N, C) or predicted ids of shape (N,), got {arr.shape}.")


def _as_labels(labels: Any) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    return np.asarray(labels).astype(np.int64).reshape(-1)


def per_class_accuracy(logits_or_preds: Any, labels: Any, num_labels: int) -> dict[int, float]:
    """Accuracy of each class, over the samples whose label is that class.

    Classes with no sample in ``labels`` are **omitted** from the result (rather than mapped to NaN or None), so
    every value is a real accuracy.

    Args:
        logits_or_preds: logits of shape (N, C) (the argmax is taken) or predicted class ids of shape (N,).
        labels: true class ids, shape (N,).
        num_labels: number of classes; labels must lie in ``0..num_labels - 1``.

    Returns:
        ``{class_id: accuracy}`` for the classes present in ``labels``, sorted by id.
    """
    preds = _as_predictions(logits_or_preds)
    labels = _as_labels(labels)
    if len(preds) != len(labels):
        raise ValueError(f"`logits_or_preds` has {len(preds)} samples but `labels` has {len(labels)}.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_labels):
        raise ValueError(
            f"`labels` holds class ids in [{labels.min()}, {labels.max()}] outside 0..{num_labels - 1} "
            f"(`num_labels`={num_labels})."
        )
    out = {}
    for c in range(num_labels):
        mask = labels == c
        if mask.any():
            out[c] = float((preds[mask] == c).mean())
    return out


def _accuracy(preds: np.ndarray, labels: np.ndarray) -> float | None:
    return float((preds == labels).mean()) if len(labels) else None


def _id2label_or_default(model: nn.Module) -> dict[int, str] | None:
    try:
        return id2label_of(model)
    except (AttributeError, ValueError):
        return None  # no transformers config: fall back on the logits' width after predicting


def accuracy_split(preds: Any, labels: Any, forget_ids: Iterable[int]) -> dict[str, Any]:
    """Forget / retain / test accuracy of predicted class ids against ``labels``, split by ``forget_ids``.

    Returns ``forget_accuracy`` (A_F, ``None`` without a forget-class sample), ``forget_error`` (E_F = 1 - A_F),
    ``retain_accuracy`` (A_R, ``None`` when every sample is of a forget class), ``test_accuracy``,
    ``num_forget_samples`` and ``num_retain_samples``. The ``unlearning_accuracy`` evaluate module computes with it.
    """
    preds, labels = _as_labels(preds), _as_labels(labels)
    is_forget = np.isin(labels, list(forget_ids))
    correct = preds == labels
    num_forget, num_retain = int(is_forget.sum()), int((~is_forget).sum())
    forget_acc = float(correct[is_forget].mean()) if num_forget else None
    return {
        "forget_accuracy": forget_acc,
        "forget_error": None if forget_acc is None else 1.0 - forget_acc,
        "retain_accuracy": float(correct[~is_forget].mean()) if num_retain else None,
        "test_accuracy": float(correct.mean()),
        "num_forget_samples": num_forget,
        "num_retain_samples": num_retain,
    }


def _metrics_from_arrays(
    logits_or_preds: Any, labels: np.ndarray, forget_ids: list[int], id2label: dict[int, str]
) -> dict[str, Any]:
    preds = _as_predictions(logits_or_preds)
    split = accuracy_split(preds, labels, forget_ids)
    if not split["num_forget_samples"]:
        logger.warning("No sample of the forget classes %s in the data: forget_accuracy is None.", forget_ids)
    if not split["num_retain_samples"]:
        logger.warning("Every sample belongs to a forget class: retain_accuracy is None.")
    per_class = per_class_accuracy(preds, labels, len(id2label))
    return {
        **split,
        "per_class_accuracy": {id2label[c]: acc for c, acc in per_class.items()},
        "forget_classes": list(forget_ids),
    }


def unlearning_metrics(
    model: nn.Module,
    dataset: Any,
    forget_classes: int | str | Iterable[int | str],
    *,
    data_collator: Callable | None = None,
    batch_size: int = 64,
    accelerator: Any = None,
) -> dict[str, Any]:
    """Forget / retain / test accuracy of ``model`` on ``dataset`` (usually the test split).

    Args:
        model: the classifier; label names come from ``model.config.id2label``.
        dataset: labelled samples, any kind [`predict`] accepts.
        forget_classes: the forgotten classes, as ids or label names (one or several).
        data_collator: see [`predict`].
        batch_size: see [`predict`].
        accelerator: see [`predict`]; every rank returns the same metrics.

    Returns:
        A JSON-serialisable dict with ``forget_accuracy`` (A_F), ``forget_error`` (E_F = 1 - A_F),
        ``retain_accuracy`` (A_R), ``test_accuracy``, ``per_class_accuracy`` (``{label name: accuracy}`` for the
        classes present), ``num_forget_samples``, ``num_retain_samples`` and ``forget_classes`` (sorted ids).
        A_F / E_F (A_R) are ``None``, with a warning, when ``dataset`` holds no forget (retain) sample.

    Raises:
        ValueError: on an unknown class in ``forget_classes``, an empty ``dataset``, labels outside the model's
            classes or NaN logits from ``model``.
    """
    id2label = _id2label_or_default(model)
    if id2label is not None:
        forget_ids = resolve_classes(forget_classes, id2label, "forget_classes")
    logits, labels = _predict(model, dataset, data_collator, batch_size, accelerator, "dataset")
    if id2label is None:
        id2label = {i: str(i) for i in range(logits.shape[1])}
        forget_ids = resolve_classes(forget_classes, id2label, "forget_classes")
    elif logits.shape[1] != len(id2label):
        raise ValueError(
            f"`model` outputs {logits.shape[1]} logits but its config declares {len(id2label)} labels; fix "
            "`config.num_labels` / `config.id2label`."
        )
    return _metrics_from_arrays(logits, labels, forget_ids, id2label)


# ----------------------------------------------------------------------------------------------------------------------
# Membership inference


def _mia_scores(logits: np.ndarray, labels: np.ndarray, score: str) -> np.ndarray:
    """Per-sample membership score, higher = more likely a training member."""
    log_probs = torch.log_softmax(torch.from_numpy(logits).double(), dim=1)  # (N, C)
    if score == "loss":
        return log_probs.gather(1, torch.from_numpy(labels)[:, None]).squeeze(1).numpy()  # -CE
    return (log_probs.exp() * log_probs).sum(dim=1).numpy()  # -entropy


def mia_auc_from_scores(member_scores: Any, nonmember_scores: Any) -> float:
    """The membership-inference ROC AUC (``sklearn.metrics.roc_auc_score``) of per-sample scores, higher = "more
    likely a member": 0.5 means members and non-members cannot be told apart. The one AUC every MIA of the library
    (this module, ``samples``, ``audit``) computes."""
    from sklearn.metrics import roc_auc_score

    member_scores, nonmember_scores = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    scores = np.concatenate([member_scores, nonmember_scores])
    is_member = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    return float(roc_auc_score(is_member, scores))


def mia_auc_from_logits(
    member_logits: np.ndarray,
    member_labels: np.ndarray,
    nonmember_logits: np.ndarray,
    nonmember_labels: np.ndarray,
    score: str = "loss",
) -> float:
    """[`membership_inference_auc`] from logits already computed (``(N, C)`` arrays and their integer labels)."""
    _check_score(score)
    return mia_auc_from_scores(
        _mia_scores(np.asarray(member_logits), np.asarray(member_labels).astype(np.int64), score),
        _mia_scores(np.asarray(nonmember_logits), np.asarray(nonmember_labels).astype(np.int64), score),
    )


def _check_score(score: str) -> None:
    if score not in MIA_SCORES:
        raise ValueError(f"`score` must be one of {MIA_SCORES}, got {score!r}.")


def membership_inference_auc(
    model: nn.Module,
    member_dataset: Any,
    nonmember_dataset: Any,
    *,
    data_collator: Callable | None = None,
    batch_size: int = 64,
    score: str = "loss",
    accelerator: Any = None,
) -> float:
    """AUC of a threshold attack that tells members from non-members by the model's loss (or entropy).

    Each sample's score is ``-cross_entropy(logits, label)`` (``score="loss"``) or ``-entropy(softmax(logits))``
    (``score="entropy"``): higher means "more likely seen in training". The AUC is that of separating
    ``member_dataset`` (positives) from ``nonmember_dataset`` (negatives); 0.5 means the attacker cannot tell them
    apart, 1.0 means it always can.

    Convention for class forgetting: members are the forget-class **training** samples and non-members the
    forget-class **test** samples ([`mia_auc_on_forget`] does this filtering). A model retrained without the class
    gives about 0.5; a successful unlearning method should too.

    Args:
        model: the classifier.
        member_dataset: samples that were in the training set; any kind [`predict`] accepts.
        nonmember_dataset: samples that were not; same kind.
        data_collator: see [`predict`].
        batch_size: see [`predict`].
        score: ``"loss"`` or ``"entropy"``.
        accelerator: see [`predict`].

    Returns:
        The ROC AUC (``sklearn.metrics.roc_auc_score``), a float in [0, 1].
    """
    _check_score(score)
    m_logits, m_labels = _predict(model, member_dataset, data_collator, batch_size, accelerator, "member_dataset")
    n_logits, n_labels = _predict(
        model, nonmember_dataset, data_collator, batch_size, accelerator, "nonmember_dataset"
    )
    return mia_auc_from_logits(m_logits, m_labels, n_logits, n_labels, score)


def _forget_subset(dataset: Any, forget_ids: list[int], argument: str) -> Any:
    check_dataset(dataset, argument)
    labels = labels_of(dataset, argument)
    indices = np.flatnonzero(np.isin(labels, forget_ids))
    if len(indices) == 0:
        raise ValueError(f"`{argument}` holds no sample of the forget classes {forget_ids}; nothing to attack.")
    return subset(dataset, indices.tolist())


def mia_auc_on_forget(
    model: nn.Module,
    train_dataset: Any,
    test_dataset: Any,
    forget_classes: int | str | Iterable[int | str],
    *,
    data_collator: Callable | None = None,
    batch_size: int = 64,
    score: str = "loss",
    accelerator: Any = None,
) -> float:
    """Membership-inference AUC on the forgotten classes: their training samples against their test samples.

    Args:
        model: the classifier; label names come from ``model.config.id2label``.
        train_dataset: the training split (members); only samples of ``forget_classes`` are used.
        test_dataset: the test split (non-members); only samples of ``forget_classes`` are used.
        forget_classes: ids or label names of the forgotten classes.
        data_collator: see [`predict`].
        batch_size: see [`predict`].
        score: ``"loss"`` or ``"entropy"``, see [`membership_inference_auc`].
        accelerator: see [`predict`].

    Returns:
        The AUC; about 0.5 for a model that never learnt (or fully forgot) the classes' training samples.
    """
    _check_score(score)
    id2label = _id2label_or_default(model)
    if id2label is None:  # no config: any id the labels could hold; the predict pass checks the range
        labels = np.concatenate([labels_of(train_dataset, "train_dataset"), labels_of(test_dataset, "test_dataset")])
        id2label = {i: str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)}
    forget_ids = resolve_classes(forget_classes, id2label, "forget_classes")
    members = _forget_subset(train_dataset, forget_ids, "train_dataset")
    nonmembers = _forget_subset(test_dataset, forget_ids, "test_dataset")
    return membership_inference_auc(
        model,
        members,
        nonmembers,
        data_collator=data_collator,
        batch_size=batch_size,
        score=score,
        accelerator=accelerator,
    )


def evaluate_unlearning(
    model: nn.Module,
    test_dataset: Any,
    forget_classes: int | str | Iterable[int | str],
    *,
    train_dataset: Any = None,
    data_collator: Callable | None = None,
    batch_size: int = 64,
    score: str = "loss",
    accelerator: Any = None,
) -> dict[str, Any]:
    """All the evidence in one dict: [`unlearning_metrics`] on ``test_dataset`` plus, when ``train_dataset`` is
    given, ``mia_auc`` from [`mia_auc_on_forget`] (and ``mia_score``, the score it used).

    Args:
        model: the classifier.
        test_dataset: held-out labelled samples.
        forget_classes: ids or label names of the forgotten classes.
        train_dataset: the training split, for the membership-inference attack (optional).
        data_collator: see [`predict`].
        batch_size: see [`predict`].
        score: ``"loss"`` or ``"entropy"`` for the attack.
        accelerator: see [`predict`].
    """
    _check_score(score)
    metrics = unlearning_metrics(
        model,
        test_dataset,
        forget_classes,
        data_collator=data_collator,
        batch_size=batch_size,
        accelerator=accelerator,
    )
    if train_dataset is not None:
        metrics["mia_auc"] = mia_auc_on_forget(
            model,
            train_dataset,
            test_dataset,
            forget_classes,
            data_collator=data_collator,
            batch_size=batch_size,
            score=score,
            accelerator=accelerator,
        )
        metrics["mia_score"] = score
    return metrics


# ----------------------------------------------------------------------------------------------------------------------
# Timing and the evaluate modules


class Timer:
    """Wall-clock timer: ``with Timer() as t: ...`` then ``t.seconds``.

    Uses ``time.perf_counter``; when CUDA is in use it synchronises before reading the clock so that queued GPU work
    is counted. Inside the block ``t.seconds`` is the time elapsed so far.
    """

    def __init__(self) -> None:
        self._start: float | None = None
        self._end: float | None = None

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def __enter__(self) -> Timer:
        self._sync()
        self._end = None
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._sync()
        self._end = time.perf_counter()

    @property
    def seconds(self) -> float:
        if self._start is None:
            raise RuntimeError("Timer was never started; use it as `with Timer() as t: ...`.")
        end = self._end if self._end is not None else time.perf_counter()
        return end - self._start

    def __repr__(self) -> str:
        return f"Timer(seconds={self.seconds:.6f})" if self._start is not None else "Timer(not started)"


def metric_path(name: str) -> str:
    """Folder of an ``evaluate`` module shipped with hf_unlearn, for ``evaluate.load(metric_path(name))``.

    Loading works offline: the module is read from the installed package, nothing is fetched from the Hub.

    Args:
        name: ``"unlearning_accuracy"`` or ``"membership_inference"``.
    """
    available = sorted(d for d in os.listdir(METRICS_DIR) if os.path.isfile(os.path.join(METRICS_DIR, d, f"{d}.py")))
    if name not in available:
        raise ValueError(f"`name` {name!r} is not an hf_unlearn metric; available: {available}.")
    return os.path.join(METRICS_DIR, name)


def metric_info(description: str, citation: str, inputs_description: str, predictions_dtype: str) -> Any:
    """The ``evaluate.MetricInfo`` of an hf_unlearn ``evaluate`` module: float or int ``predictions`` (its
    ``predictions_dtype``) and int ``references``."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description,
        citation=citation,
        inputs_description=inputs_description,
        features=datasets.Features(
            {"predictions": datasets.Value(predictions_dtype), "references": datasets.Value("int64")}
        ),
    )
