"""The measurements of one model: feature passes, probe, prototype attack, relearning, and comparisons."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from accelerate.utils import send_to_device
from torch import nn

from ..data_utils import (
    DatasetReader,
    check_dataset,
    forward_input_names,
    is_hf_dataset,
    labels_of,
    logits_from_outputs,
)
from ..utils import get_logger, id2label_of, unwrap_model
from .result import RELEARN_KEY, RESET_RELEARN_KEY

logger = get_logger(__name__)

CACHE_BYTES = 256 * 2**20  # collated batches kept for the other models of an audit


# --------------------------------------------------------------------------------------------------------- inputs
@dataclass
class _Data:
    """Everything that depends only on the data, the classes and the seed: shared by every audited model."""

    train: Any
    eval: Any
    train_labels: np.ndarray
    eval_labels: np.ndarray
    probe_idx: list[int]  # training rows the probe is fitted on (all, or a seeded subset)
    feature_idx: list[int]  # training rows whose features and logits are extracted (probe, shots, forget rows)
    proto_idx: dict[int, list[int]]  # per forget class, the prototype shots (training rows)
    relearn_idx: list[int]  # the fixed relearn batch (training rows)
    forget_train_idx: list[int]
    forget_eval_mask: np.ndarray
    collator: Callable | None = None
    # collated batches, reused by every model of the audit (and by audits given this one as `reference`)
    cache: dict = field(default_factory=dict, repr=False)
    readers: dict = field(default_factory=dict, repr=False)
    lengths: dict = field(default_factory=dict, repr=False)
    cache_bytes: int = 0

    def pass_order(self, argument: str, rows: Sequence[int]) -> list[int]:
        """``rows`` sorted by token count when the data holds ``input_ids`` and a collator pads them (less padding
        per batch, same results); as given otherwise."""
        dataset = self.train if argument == "train_dataset" else self.eval
        if self.collator is None or not is_hf_dataset(dataset) or "input_ids" not in dataset.column_names:
            return list(rows)
        if argument not in self.lengths:
            ids = dataset.with_format(None).select_columns(["input_ids"])["input_ids"]
            self.lengths[argument] = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        lengths = self.lengths[argument]
        return sorted(rows, key=lambda i: lengths[i])

    def batch(self, net: nn.Module, argument: str, rows: Sequence[int], data_collator: Callable | None) -> dict:
        """Rows of ``train_dataset`` / ``eval_dataset`` (``argument``) collated: model inputs plus ``labels``.

        Batches are cached while the cache holds less than ``CACHE_BYTES``, so that auditing several models (the
        original, the retrained ones, the unlearned one) reads and collates the data once.
        """
        accepted = frozenset(forward_input_names(net))
        key = (argument, accepted, tuple(rows))
        hit = self.cache.get(key)
        if hit is not None:
            return dict(hit)
        reader = self.readers.get((argument, accepted))
        if reader is None:
            dataset = self.train if argument == "train_dataset" else self.eval
            reader = self.readers[(argument, accepted)] = DatasetReader(dataset, net, argument)
        batch = reader.batch(list(rows), data_collator)
        size = sum(v.numel() * v.element_size() for v in batch.values() if isinstance(v, torch.Tensor))
        if self.cache_bytes + size <= CACHE_BYTES:
            self.cache[key] = batch
            self.cache_bytes += size
        return dict(batch)

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex digits) of the training rows the seed chose: prototype shots, relearn batch, probe."""
        chosen = {"prototype": {str(c): r for c, r in self.proto_idx.items()}, "relearn": self.relearn_idx}
        chosen["probe"] = self.probe_idx
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class _Record:
    metrics: dict[str, Any]
    forget_probs: np.ndarray  # (N_forget_eval, C) softmax on the forget classes' eval samples
    seconds: float
    # (N_forget_train + N_forget_eval, C) log-softmax on every forget-class sample (training rows, then eval rows):
    # what the distinguisher reads
    forget_log_probs: np.ndarray | None = None


def head_module(model: nn.Module) -> nn.Module:
    """The classification head's output layer, as the model calls it: its input is the head's input features and
    its weight rows are the classes.

    On a plain model, the last ``nn.Linear`` with ``config.num_labels`` outputs. On a PEFT model the layer that wraps
    it: the ``ModulesToSaveWrapper`` of a head in ``modules_to_save`` (its ``weight`` is the active trainable copy's),
    or the LoRA layer of a head in ``target_modules`` (never its ``lora_B``, which has ``num_labels`` outputs too; its
    ``weight`` is the frozen base weight: [`head_weights`] gives the weight it applies).

    Raises:
        ValueError: naming ``model`` when it has no such layer (e.g. a bare encoder without a classifier).
    """
    from ..methods.common import output_layer_name
    from ..peft_utils import calling_layer

    net = unwrap_model(model)
    num_labels = getattr(getattr(net, "config", None), "num_labels", None)
    if not isinstance(net, nn.Module) or not num_labels:
        raise ValueError(
            "`model` is not a classifier with a `config.num_labels`; audit a *ForImageClassification or "
            "*ForSequenceClassification model."
        )
    last = output_layer_name(net)
    if last is None:
        raise ValueError(
            f"`model` ({type(net).__name__}) has no classification head (no nn.Linear with num_labels={num_labels} "
            "outputs); audit a *ForImageClassification or *ForSequenceClassification model."
        )
    return net.get_submodule(calling_layer(net, last))


def head_weights(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight ``(C, D)`` and bias ``(C,)`` the classification head applies, as float32 CPU copies.

    A plain ``nn.Linear`` head is read directly. A PEFT-wrapped head (``modules_to_save``, LoRA on the head,
    several adapters...) is read as the affine map it computes: a float32 copy of it, in eval mode, is run on zero
    and the unit vectors, so the LoRA delta (``base + B @ A * scaling``, DoRA included) is in the weight. The model
    itself is neither changed nor run.
    """
    head = head_module(model)
    active = getattr(head, "active_adapters", None)
    copies = getattr(head, "modules_to_save", None)  # a ModulesToSaveWrapper: the active copy, read as it is
    if isinstance(copies, nn.ModuleDict) and not head.disable_adapters and active and len(active) == 1:
        head = copies[active[0]] if active[0] in copies else head
    if type(head) is nn.Linear:
        weight = head.weight.detach().float().cpu().clone()
        return weight, head.bias.detach().float().cpu().clone() if head.bias is not None else None
    dim = getattr(head, "in_features", None) or head.weight.shape[-1]
    copy_ = copy.deepcopy(head).float().eval()
    device = _device_of(copy_)
    with torch.no_grad():
        x = torch.cat([torch.zeros(1, dim), torch.eye(dim)]).to(device)  # (1 + D, D)
        out = copy_(x).float().cpu()  # (1 + D, C)
    del copy_
    bias = out[0].clone()
    return (out[1:] - bias).T.contiguous(), bias


def _check_model(model: Any, argument: str, num_labels: int | None = None) -> int:
    if not isinstance(model, nn.Module):
        raise ValueError(f"`{argument}` must be a torch model, got {type(model).__name__}.")
    try:
        head_module(model)
    except ValueError as e:
        raise ValueError(str(e).replace("`model`", f"`{argument}`")) from None
    n = int(unwrap_model(model).config.num_labels)
    if num_labels is not None and n != num_labels:
        raise ValueError(f"`{argument}` has {n} labels but `model` has {num_labels}; audit models of the same task.")
    return n


def _check_labels(labels: np.ndarray, num_labels: int, argument: str) -> None:
    if labels.min() < 0 or labels.max() >= num_labels:
        raise ValueError(
            f"`{argument}` holds labels in [{labels.min()}, {labels.max()}] but the model has num_labels={num_labels} "
            f"(ids 0..{num_labels - 1}): label mismatch between model and data."
        )


def _check_steps(relearn_steps: Any) -> list[int]:
    if isinstance(relearn_steps, int):
        relearn_steps = [relearn_steps]
    try:
        steps = sorted({int(k) for k in relearn_steps})
    except (TypeError, ValueError):
        raise ValueError(f"`relearn_steps` must be positive integers, got {relearn_steps!r}.") from None
    if any(k < 1 for k in steps) or any(isinstance(k, bool) for k in relearn_steps):
        raise ValueError(f"`relearn_steps` must be positive integers, got {relearn_steps!r}.")
    return steps


def _positive_int(value: Any, argument: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{argument}` must be a positive integer, got {value!r}.")


def _prepare_data(
    train_dataset: Any,
    eval_dataset: Any,
    forget: list[int],
    num_labels: int,
    seed: int,
    prototype_shots: int,
    relearn_forget_samples: int,
    relearn_retain_samples: int,
    max_probe_samples: int | None,
    data_collator: Callable | None,
) -> _Data:
    check_dataset(train_dataset, "train_dataset")
    check_dataset(eval_dataset, "eval_dataset")
    train_labels = labels_of(train_dataset, "train_dataset")
    eval_labels = labels_of(eval_dataset, "eval_dataset")
    _check_labels(train_labels, num_labels, "train_dataset")
    _check_labels(eval_labels, num_labels, "eval_dataset")
    missing = [c for c in forget if not (train_labels == c).any()]
    if missing:
        raise ValueError(f"`train_dataset` holds no sample of the forget class(es) {missing}; nothing to audit.")
    forget_eval_mask = np.isin(eval_labels, forget)
    if not forget_eval_mask.any():
        raise ValueError(f"`eval_dataset` holds no sample of the forget classes {forget}; nothing to measure on.")
    if forget_eval_mask.all():
        logger.warning("`eval_dataset` holds only forget-class samples: retain_accuracy is None.")

    rng = np.random.default_rng(seed)
    n_train = len(train_labels)
    is_forget = np.isin(train_labels, forget)
    forget_train_idx = np.flatnonzero(is_forget)
    retain_train_idx = np.flatnonzero(~is_forget)
    proto_idx = {}
    for c in forget:
        rows = np.flatnonzero(train_labels == c)
        proto_idx[c] = sorted(rng.choice(rows, size=min(prototype_shots, len(rows)), replace=False).tolist())
    relearn = rng.choice(forget_train_idx, size=min(relearn_forget_samples, len(forget_train_idx)), replace=False)
    if len(retain_train_idx):
        relearn = np.concatenate(
            [
                relearn,
                rng.choice(retain_train_idx, size=min(relearn_retain_samples, len(retain_train_idx)), replace=False),
            ]
        )
    if max_probe_samples is not None and n_train > max_probe_samples:
        probe = rng.choice(n_train, size=max_probe_samples, replace=False)
    else:
        probe = np.arange(n_train)
    probe_idx = sorted(int(i) for i in probe)
    shots = {i for rows in proto_idx.values() for i in rows}
    feature_idx = sorted(set(probe_idx) | shots | set(forget_train_idx.tolist()))
    return _Data(
        train=train_dataset,
        eval=eval_dataset,
        train_labels=train_labels,
        eval_labels=eval_labels,
        probe_idx=probe_idx,
        feature_idx=feature_idx,
        proto_idx=proto_idx,
        relearn_idx=[int(i) for i in relearn],
        forget_train_idx=forget_train_idx.tolist(),
        forget_eval_mask=forget_eval_mask,
        collator=data_collator,
    )


# --------------------------------------------------------------------------------------------------------- passes
def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return send_to_device(batch, device)


def _progress(iterable: Iterable, total: int, desc: str, show: bool) -> Iterable:
    if not show or total <= 1:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def _features(
    model: nn.Module,
    data: _Data,
    indices: Sequence[int],
    argument: str,
    data_collator: Callable | None,
    batch_size: int,
    show_progress: bool,
    desc: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The head's input features ``(N, D)`` and the logits ``(N, C)`` of the rows ``indices``, in eval mode."""
    net = unwrap_model(model)
    head = head_module(net)
    device = _device_of(net)
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple) -> None:
        captured.append(args[0].detach().float().cpu())

    feats, logits = [], []
    ordered = data.pass_order(argument, indices)
    modes = {m: m.training for m in net.modules()}
    handle = head.register_forward_pre_hook(hook)
    try:
        net.eval()
        starts = range(0, len(ordered), batch_size)
        with torch.no_grad():
            for start in _progress(starts, len(starts), desc, show_progress):
                batch = data.batch(net, argument, ordered[start : start + batch_size], data_collator)
                batch.pop("labels")
                captured.clear()
                out = logits_from_outputs(net(**_to_device(batch, device)))
                if len(captured) != 1 or captured[0].ndim != 2:
                    shape = [tuple(c.shape) for c in captured]
                    raise ValueError(
                        f"`model`'s classification head was called {len(captured)} time(s) with inputs {shape} per "
                        "forward; the audit needs one (batch, features) input per forward."
                    )
                feats.append(captured[0])
                logits.append(out.detach().float().cpu())
    finally:
        handle.remove()
        for m, training in modes.items():
            m.training = training
    where = {row: j for j, row in enumerate(ordered)}
    back = [where[row] for row in indices]  # the rows in the order asked for
    return torch.cat(feats).numpy()[back], torch.cat(logits).numpy()[back]


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float | None:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else None


def _probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    forget_mask: np.ndarray,
    seed: int,
) -> tuple[float, float | None]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        probe.fit(train_x, train_y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.info("The linear probe's logistic regression did not fully converge in 1000 iterations.")
    pred = probe.predict(eval_x)
    correct = pred == eval_y
    retain = float(correct[~forget_mask].mean()) if (~forget_mask).any() else None
    return float(correct[forget_mask].mean()), retain


def _prototype(
    head: tuple[torch.Tensor, torch.Tensor | None],
    train_feats: dict[int, np.ndarray],
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    forget_mask: np.ndarray,
    forget: list[int],
) -> tuple[float, float | None]:
    """Accuracy on the forget (and the retained) eval rows of the head ``(weight, bias)`` ([`head_weights`], copies)
    with its forget rows rewritten."""
    weight, bias = (t.clone() if t is not None else None for t in head)  # (C, D), (C,)
    keep = [c for c in range(weight.shape[0]) if c not in forget]
    target_norm = weight[keep].norm(dim=1).mean()
    for c in forget:
        proto = torch.from_numpy(train_feats[c]).float().mean(0)  # (D,)
        weight[c] = proto / proto.norm().clamp_min(1e-12) * target_norm
        if bias is not None:
            bias[c] = bias[keep].mean()
    logits = torch.from_numpy(eval_x).float() @ weight.T  # (N, C)
    if bias is not None:
        logits = logits + bias
    correct = logits.argmax(1).numpy() == eval_y
    retain = float(correct[~forget_mask].mean()) if (~forget_mask).any() else None
    return float(correct[forget_mask].mean()), retain


def _batches_accuracy(net: nn.Module, batches: list[tuple[torch.Tensor, dict]]) -> float:
    """Accuracy of ``net`` (put in eval mode) on ``(labels, inputs)`` batches."""
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for y, b in batches:
            correct += int((logits_from_outputs(net(**b)).argmax(-1).cpu() == y).sum())
            total += len(y)
    return correct / total


def _relearn(
    model: nn.Module,
    data: _Data,
    data_collator: Callable | None,
    batch_size: int,
    steps: int,
    lr: float,
    seed: int,
    start_accuracy: float,
    stop_at: float | None,
    read_at: list[int],
    show_progress: bool,
    reset_rows: list[int] | None = None,
) -> list[float | None]:
    """Forget accuracy after 0, 1, ..., ``steps`` Adam steps on the fixed relearn batch, on a copy of ``model``.

    The accuracy is read at the steps ``read_at`` and, while ``stop_at`` (the relearn target) is given and not yet
    reached, after every step (``None`` elsewhere). Stops once the target is reached and ``read_at`` is done.
    With ``reset_rows``, the copy's head rows of those classes are first reset ([`reset_head_rows`]) and the
    accuracy at step 0 is measured on it (``start_accuracy`` may then be ``None``).
    """
    net = copy.deepcopy(unwrap_model(model))
    if reset_rows:
        reset_head_rows(net, reset_rows)
    device = _device_of(net)
    for p in net.parameters():
        if p.is_floating_point():
            p.requires_grad_(True)
    batch = data.batch(net, "train_dataset", data.relearn_idx, data_collator)
    labels = torch.as_tensor(batch.pop("labels")).long().reshape(-1).to(device)
    inputs = _to_device(batch, device)
    forget_rows = data.pass_order("eval_dataset", np.flatnonzero(data.forget_eval_mask).tolist())
    eval_batches = []
    for s in range(0, len(forget_rows), batch_size):
        b = data.batch(net, "eval_dataset", forget_rows[s : s + batch_size], data_collator)
        eval_batches.append((torch.as_tensor(b.pop("labels")).long().reshape(-1), _to_device(b, device)))
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)

    curve: list[float | None] = [_batches_accuracy(net, eval_batches) if start_accuracy is None else start_accuracy]
    reached = stop_at is None or curve[0] >= stop_at
    last = max(read_at, default=0)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for step in _progress(range(1, steps + 1), steps, "relearn", show_progress):
            if reached and step > last:
                break
            net.train()
            loss = nn.functional.cross_entropy(logits_from_outputs(net(**inputs)).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if reached and step not in read_at:
                curve.append(None)
                continue
            curve.append(_batches_accuracy(net, eval_batches))
            reached = reached or curve[-1] >= stop_at
    del net, optimizer
    return curve


def _measure(
    model: nn.Module,
    data: _Data,
    forget: list[int],
    *,
    data_collator: Callable | None,
    batch_size: int,
    relearn_steps: list[int],
    relearn_max_steps: int,
    relearn_lr: float,
    relearn_threshold: float | None,
    seed: int,
    show_progress: bool,
    name: str,
    argument: str,
) -> _Record:
    t0 = time.perf_counter()
    logger.info(
        "Auditing %s: feature passes over %d training and %d eval samples.",
        name,
        len(data.feature_idx),
        len(data.eval_labels),
    )
    train_x, train_logits = _features(
        model,
        data,
        data.feature_idx,
        "train_dataset",
        data_collator,
        batch_size,
        show_progress,
        f"{name}: train features",
    )
    eval_x, eval_logits = _features(
        model,
        data,
        range(len(data.eval_labels)),
        "eval_dataset",
        data_collator,
        batch_size,
        show_progress,
        f"{name}: eval features",
    )
    if not np.isfinite(eval_logits).all():
        raise ValueError(f"`{argument}` produced NaN or infinite logits on `eval_dataset`; its weights are broken.")
    y_eval = data.eval_labels
    fmask = data.forget_eval_mask
    forget_acc = _accuracy(eval_logits[fmask], y_eval[fmask])
    metrics: dict[str, Any] = {
        "forget_accuracy": forget_acc,
        "forget_error": 1.0 - forget_acc,
        "retain_accuracy": _accuracy(eval_logits[~fmask], y_eval[~fmask]),
        "test_accuracy": _accuracy(eval_logits, y_eval),
    }
    pos = {row: j for j, row in enumerate(data.feature_idx)}
    members = [pos[i] for i in data.forget_train_idx]
    metrics["mia_auc"] = mia_auc(
        train_logits[members], data.train_labels[data.forget_train_idx], eval_logits[fmask], y_eval[fmask]
    )
    probe_rows = [pos[i] for i in data.probe_idx]
    probe_forget, probe_retain = _probe(
        train_x[probe_rows], data.train_labels[data.probe_idx], eval_x, y_eval, fmask, seed
    )
    metrics["probe_forget_accuracy"] = probe_forget
    metrics["probe_retain_accuracy"] = probe_retain
    shots = {c: train_x[[pos[i] for i in rows]] for c, rows in data.proto_idx.items()}
    metrics["prototype_forget_accuracy"], metrics["prototype_retain_accuracy"] = _prototype(
        head_weights(model), shots, eval_x, y_eval, fmask, forget
    )
    if relearn_steps:
        curve = _relearn(
            model,
            data,
            data_collator,
            batch_size,
            relearn_max_steps,
            relearn_lr,
            seed,
            forget_acc,
            relearn_threshold,
            relearn_steps,
            show_progress,
        )
        metrics[RELEARN_KEY] = {k: curve[k] for k in relearn_steps}
        metrics["relearn_curve"] = curve
        _set_relearn_time(metrics, relearn_threshold, relearn_max_steps)
        reset_curve = _relearn(
            model,
            data,
            data_collator,
            batch_size,
            max(relearn_steps),
            relearn_lr,
            seed,
            None,
            None,
            relearn_steps,
            show_progress,
            reset_rows=forget,
        )
        metrics[RESET_RELEARN_KEY] = {k: reset_curve[k] for k in relearn_steps}
        metrics["reset_relearn_start_accuracy"] = reset_curve[0]
    probs = torch.softmax(torch.from_numpy(eval_logits[fmask]).double(), dim=1).numpy()
    every_forget = np.concatenate([train_logits[members], eval_logits[fmask]])
    log_probs = torch.log_softmax(torch.from_numpy(every_forget).double(), dim=1).numpy()
    return _Record(metrics=metrics, forget_probs=probs, seconds=time.perf_counter() - t0, forget_log_probs=log_probs)


def _set_relearn_time(metrics: dict[str, Any], threshold: float | None, cap: int) -> None:
    curve = metrics.get("relearn_curve")
    if threshold is None or curve is None:
        metrics["relearn_time"], metrics["relearn_time_censored"] = None, None
        return
    reached = [k for k, acc in enumerate(curve) if acc is not None and acc >= threshold]
    metrics["relearn_time"] = reached[0] if reached else cap
    metrics["relearn_time_censored"] = not reached


def mia_auc(
    member_logits: np.ndarray, member_labels: np.ndarray, nonmember_logits: np.ndarray, nonmember_labels: np.ndarray
) -> float:
    """The loss-threshold membership-inference AUC of ``hf_unlearn.evaluation.membership_inference_auc`` (score
    ``-cross_entropy``), from logits already computed: the feature passes give them, so no extra model pass."""
    from ..evaluation import mia_auc_from_logits

    return mia_auc_from_logits(member_logits, member_labels, nonmember_logits, nonmember_labels, "loss")


def _js(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(np.mean(jensenshannon(p, q, axis=1) ** 2))


def _ain(rt: int | None, refs: list[int | None]) -> float | None:
    refs = [r for r in refs if r is not None]
    if rt is None or not refs or np.mean(refs) == 0:
        return None
    return float(rt / np.mean(refs))


def _gap(x: float) -> str:
    return f"{x:.3f}" if x >= 5e-4 else f"{x:.1e}"  # tiny gaps (JS divergences) keep a digit


def _standing(value: Any, values: list[Any]) -> tuple[str, dict[str, float]] | None:
    vals = [float(v) for v in values if v is not None]
    if value is None or not vals:
        return None
    lo, hi = min(vals), max(vals)
    rng = {"min": lo, "max": hi, "mean": float(np.mean(vals))}
    value = float(value)
    eps = 1e-9
    if value > hi + eps:
        return f"above by {_gap(value - hi)}", rng
    if value < lo - eps:
        return f"below by {_gap(lo - value)}", rng
    return "within", rng


def _two_sided(
    value: Any, values: list[Any], tolerance: float, what_above: str, what_below: str
) -> dict[str, Any] | None:
    """Two-sided judgement of ``value`` against the retrained models' ``values``: within mean ± max(2 std,
    ``tolerance``) (sample std; 0 with one model)."""
    vals = [float(v) for v in values if v is not None]
    if value is None or not vals:
        return None
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    half = max(2 * std, tolerance)
    return _verdict(
        float(value), mean - half, mean + half, what_above, what_below, f"mean ± max(2 std, {tolerance:g})"
    )


def _verdict(value: float, low: float, high: float, above: str, below: str, rule: str) -> dict[str, Any]:
    eps = 1e-9
    if value > high + eps:
        verdict = f"above by {_gap(value - high)}: {above}"
    elif value < low - eps:
        verdict = f"below by {_gap(low - value)}: {below}"
    else:
        verdict = "within"
    return {"value": value, "low": low, "high": high, "rule": rule, "verdict": verdict}


# ------------------------------------------------------------------------------------------------- head rewrites
def _editable_linear(head: nn.Module) -> nn.Module:
    """The ``nn.Linear`` whose rows an edit of ``head`` changes: the head itself, the active ``modules_to_save``
    copy of a PEFT wrapper, or the base layer of a LoRA-wrapped head (the LoRA delta then stays added)."""
    copies = getattr(head, "modules_to_save", None)
    active = getattr(head, "active_adapters", None)
    if isinstance(copies, nn.ModuleDict) and active and active[0] in copies:
        return copies[active[0]]
    base = getattr(head, "base_layer", None)
    return base if isinstance(base, nn.Linear) else head


def reset_head_rows(model: nn.Module, classes: Sequence[int]) -> None:
    """Sets the head rows of ``classes`` (as the head applies them, adapters included) to the mean of the other
    rows, and their biases to the mean of the other biases, in place: every model then starts relearning from the
    same kind of head, so a rewritten head neither helps nor hurts."""
    weight, bias = head_weights(model)  # (C, D), (C,) as applied
    keep = [c for c in range(weight.shape[0]) if c not in classes]
    linear = _editable_linear(head_module(model))
    with torch.no_grad():
        for c in classes:
            delta = (weight[keep].mean(0) - weight[c]).to(linear.weight.device, linear.weight.dtype)
            linear.weight[c] += delta
            if bias is not None and linear.bias is not None:
                linear.bias[c] += (bias[keep].mean() - bias[c]).to(linear.bias.device, linear.bias.dtype)


def full_label_space(
    model: nn.Module, id2label: dict[int, str], forget: list[int], argument: str
) -> tuple[nn.Module, list[int]]:
    """``model`` as a classifier over ``id2label``'s classes: unchanged when it already has them; when it was
    retrained without some forgotten classes (fewer labels, ids shifted), a copy whose head rows are moved to the
    ids of ``id2label`` (matched by label names) and whose dropped classes get the mean row and bias of the others
    (the reset of [`reset_head_rows`]: they never win). Returns ``(model or copy, dropped class ids)``."""
    num_labels = len(id2label)
    n = int(unwrap_model(model).config.num_labels)
    if n == num_labels:
        return model, []
    names = id2label_of(model)
    wanted = {name: c for c, name in id2label.items()}
    default = all(name == f"LABEL_{i}" for i, name in names.items())
    dropped = sorted(wanted[name] for name in set(wanted) - set(names.values()))
    problem = None
    if n > num_labels:
        problem = "more"
    elif default:
        problem = "it has no label names (`config.id2label`) to match its classes by"
    elif len(set(names.values())) != n or set(names.values()) - set(wanted):
        problem = f"its labels {sorted(set(names.values()) - set(wanted))} are not `model`'s"
    elif set(dropped) - set(forget):
        problem = f"it lacks retained classes {[id2label[c] for c in dropped if c not in forget]}"
    if problem is not None:
        extra = (
            "" if problem == "more" else f"; a reference may drop only forgotten classes (by label name): {problem}"
        )
        raise ValueError(f"`{argument}` has {n} labels but `model` has {num_labels}{extra}.")
    net = unwrap_model(model)
    head = head_module(net)
    if type(head) is not nn.Linear:
        raise ValueError(
            f"`{argument}` has {n} labels and an adapter-wrapped head; merge it (merge_and_unload) to audit it "
            "against a model with the forgotten classes."
        )
    new = copy.deepcopy(net)
    path = next(name for name, m in net.named_modules() if m is head)
    old = new.get_submodule(path)
    keep_rows = torch.tensor([wanted[names[i]] for i in range(n)])
    linear = nn.Linear(old.in_features, num_labels, bias=old.bias is not None)
    linear.to(old.weight.device, old.weight.dtype)
    with torch.no_grad():
        linear.weight[keep_rows] = old.weight
        linear.weight[dropped] = old.weight.mean(0)
        if old.bias is not None:
            linear.bias[keep_rows] = old.bias
            linear.bias[dropped] = old.bias.mean()
    parent, _, leaf = path.rpartition(".")
    setattr(new.get_submodule(parent) if parent else new, leaf, linear)
    new.config.num_labels = num_labels
    new.config.id2label = dict(id2label)
    new.config.label2id = {v: k for k, v in id2label.items()}
    if isinstance(getattr(new, "num_labels", None), int):
        new.num_labels = num_labels
    return new, dropped


# --------------------------------------------------------------------------------------------------- distinguisher
def _fit_and_score(
    train_a: np.ndarray, train_b: np.ndarray, test_a: np.ndarray, test_b: np.ndarray, seed: int
) -> float:
    """Accuracy on (``test_a`` -> 0, ``test_b`` -> 1) of a standardised logistic regression fitted on
    (``train_a`` -> 0, ``train_b`` -> 1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([train_a, train_b])
    y = np.concatenate([np.zeros(len(train_a)), np.ones(len(train_b))])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x, y)
    x_test = np.concatenate([test_a, test_b])
    y_test = np.concatenate([np.zeros(len(test_a)), np.ones(len(test_b))])
    return float((clf.predict(x_test) == y_test).mean())


def distinguisher_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint training and test inputs of the distinguisher: a seeded half of the ``n`` forget-class samples each."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def distinguisher_accuracy(
    candidate: np.ndarray, references: list[np.ndarray], seed: int
) -> tuple[float | None, str | None]:
    """How well a classifier on a model's outputs (``(N, C)`` features of the forget-class samples) tells
    ``candidate`` from models retrained without the classes.

    With two or more ``references``: for every ordered pair (i, j), a logistic regression is fitted on reference
    i's vs the candidate's outputs on half of the samples and tested on reference j's vs the candidate's outputs on
    the other half (another retrained model, unseen inputs); the mean accuracy. With one reference (the leave-one-out
    baseline of two retrained models): fitted and tested on that reference vs the candidate, held-out inputs.
    About 0.5 when the candidate cannot be told from retraining. Returns ``(accuracy, protocol)``, ``(None, None)``
    without references.
    """
    if not references:
        return None, None
    tr, te = distinguisher_split(len(candidate), seed)
    if len(references) == 1:
        r = references[0]
        return _fit_and_score(r[tr], candidate[tr], r[te], candidate[te], seed), "one reference, held-out inputs"
    accs = [
        _fit_and_score(a[tr], candidate[tr], b[te], candidate[te], seed)
        for i, a in enumerate(references)
        for j, b in enumerate(references)
        if i != j
    ]
    return float(np.mean(accs)), "fitted against one retrained model, tested against another, held-out inputs"


def distinguisher_features(log_probs: np.ndarray, retained: list[int] | None) -> np.ndarray:
    """The distinguisher's input per sample: the log-softmax over every class (floored at -100), or, when
    ``retained`` is given (a reference dropped the forgotten classes), renormalised over the retained classes."""
    lp = np.maximum(log_probs, -100.0)
    if retained is None:
        return lp
    sub = lp[:, retained]
    return sub - np.logaddexp.reduce(sub, axis=1, keepdims=True)
