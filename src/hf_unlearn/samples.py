"""Forgetting chosen training rows (``UnlearningConfig(forget_scope="samples")``): picking the rows, checking them,
fingerprinting them, and telling whether they now look like held-out data.

Which rows: either two data sets (``forget_dataset`` and ``retain_dataset``) or one ``train_dataset`` with
``forget_rows`` (row indices) and optionally ``retain_rows`` (default: every other row). [`split_rows`] refuses,
before anything runs, rows outside the data set, duplicate rows, an empty selection, a selection of every row
(nothing retained) and forget rows that are also retain rows; each error names the argument.

What success means: a model retrained without the rows classifies them about as well as unseen data, so the rows
must look like held-out rows, not be misclassified (accuracy 0 would itself reveal them). [`samples_check`] measures,
on the edited model, the forget rows' accuracy at their training labels and mean loss, the same on ``eval_dataset``
(held-out rows), and the loss-threshold membership-inference AUC of forget rows against held-out rows.
[`decide_samples`] calls it ``"verified"`` when the forget rows' accuracy exceeds the held-out accuracy by at most
``tolerance`` and the AUC exceeds 0.5 by at most ``max(tolerance, 2 x its standard error under chance)`` (the
Hanley-McNeil bound: a few dozen rows give a noisy AUC, and a retrained model must pass), and the model still works:
its held-out accuracy fell by at most ``max(tolerance, 2 x the binomial standard error of the original's held-out
accuracy)`` from that of the model before the edit on the same rows (a wrecked model that predicts nothing also makes
the forget rows "look like" held-out rows). Lower accuracy or AUC than held-out is fine (mislabeled rows are rightly
"wrong" at their training labels). Without held-out data, or without the check of the model before the edit, the
outcome is ``"unverified"``, never ``"verified"``.

This is a necessary check, not proof: it assumes the rows were drawn like the held-out rows. Rows that are atypical
(mislabeled, poisoned) can pass it while the model still predicts some of their wrong labels, and a few dozen rows of
a model that memorises little can pass it unedited (``benchmarks/results/samples/README.md``). For such rows judge
with [`hf_unlearn.audit.audit_samples`] against retrained models (wrong-label rate, attack success rate).

Reports and model cards name the rows only by count and [`rows_fingerprint`] (SHA-256 of the sorted row ids, when
known, and of each row's content hash), never by content.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .data_utils import DatasetReader, check_dataset, subset

__all__ = [
    "check_rows",
    "decide_samples",
    "read_rows_file",
    "rows_fingerprint",
    "samples_check",
    "split_rows",
    "STRENGTH_LADDERS",
    "strength_rungs",
    "strength_search",
]


# ------------------------------------------------------------------------------------------------------------ rows
def check_rows(rows: Any, n: int, argument: str = "forget_rows", of: str = "train_dataset") -> list[int]:
    """``rows`` as a list of ints, after checking they are row indices of a data set of ``n`` rows: integers (no
    bools, no fractions), inside ``[0, n)``, no duplicates, at least one. Raises ``ValueError`` naming ``argument``."""
    if rows is None or isinstance(rows, (str, bytes)):
        raise ValueError(f"`{argument}` must be a sequence of row indices of `{of}`, got {rows!r}.")
    if isinstance(rows, (torch.Tensor, np.ndarray)):
        rows = rows.tolist()
    try:
        rows = list(rows)
    except TypeError:
        raise ValueError(
            f"`{argument}` must be a sequence of row indices of `{of}`, got {type(rows).__name__}."
        ) from None
    out = []
    for r in rows:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer, float, np.floating)):
            raise ValueError(f"`{argument}` must hold integer row indices of `{of}`, got {r!r}.")
        if float(r) != int(r):
            raise ValueError(f"`{argument}` must hold integer row indices of `{of}`, got {r!r}.")
        out.append(int(r))
    if not out:
        raise ValueError(f"`{argument}` is empty: name at least one row of `{of}`.")
    outside = sorted({r for r in out if not 0 <= r < n})
    if outside:
        raise ValueError(f"`{argument}` holds rows outside `{of}` (rows 0..{n - 1}): {_few(outside)}.")
    seen, dup = set(), set()
    for r in out:
        (dup if r in seen else seen).add(r)
    if dup:
        raise ValueError(f"`{argument}` names rows more than once: {_few(sorted(dup))}.")
    return out


def _few(values: Sequence[int], k: int = 5) -> str:
    head = ", ".join(str(v) for v in values[:k])
    return f"[{head}{', ...' if len(values) > k else ''}] ({len(values)} in all)"


def split_rows(train_dataset: Any, forget_rows: Any, retain_rows: Any = None) -> tuple[Any, Any, list[int], list[int]]:
    """``(forget_dataset, retain_dataset, forget_rows, retain_rows)``: the rows of ``train_dataset`` to forget and
    those kept (by default every other row), as data sets of the same kind, after the checks of [`check_rows`] plus:
    not every row selected, and no row both forgotten and retained. Errors name the argument at fault."""
    n = check_dataset(train_dataset, "train_dataset")
    forget = check_rows(forget_rows, n, "forget_rows")
    if len(forget) == n:
        raise ValueError(
            f"`forget_rows` selects every row of `train_dataset` ({n}); at least one row must be retained (to forget "
            "everything, train a new model)."
        )
    chosen = set(forget)
    if retain_rows is None:
        retain = [i for i in range(n) if i not in chosen]
    else:
        retain = check_rows(retain_rows, n, "retain_rows")
        both = sorted(chosen.intersection(retain))
        if both:
            raise ValueError(
                f"`retain_rows` also holds rows of `forget_rows`: {_few(both)}; a row is forgotten or kept."
            )
    return subset(train_dataset, forget), subset(train_dataset, retain), forget, retain


def read_rows_file(
    path: str | os.PathLike, ids: Sequence[Any] | None = None, argument: str = "forget_rows"
) -> list[int]:
    """Row indices from a text file with one entry a line (blank lines and ``#`` comments skipped).

    Without ``ids`` each entry is a row index. With ``ids`` (the values of an id column, row by row) each entry is an
    id, matched as text against ``str(id)``; an id that matches no row, or several, is an error naming ``argument``.
    Range and duplicate checks are left to [`split_rows`]."""
    if not os.path.isfile(path):
        raise ValueError(f"`{argument}` file {os.fspath(path)!r} does not exist.")
    try:
        with open(path, encoding="utf-8") as f:
            entries = [(k + 1, line.split("#", 1)[0].strip()) for k, line in enumerate(f)]
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"`{argument}` file {os.fspath(path)!r} cannot be read as text: {e}.") from e
    entries = [(k, e) for k, e in entries if e]
    if ids is None:
        rows = []
        for k, e in entries:
            try:
                rows.append(int(e))
            except ValueError:
                raise ValueError(
                    f"`{argument}` file {os.fspath(path)!r} line {k}: {e!r} is not a row index (give an id column to "
                    "match ids)."
                ) from None
        return rows
    where: dict[str, list[int]] = {}
    for i, v in enumerate(ids):
        where.setdefault(str(v), []).append(i)
    rows = []
    for k, e in entries:
        found = where.get(e, [])
        if len(found) != 1:
            what = "matches no row" if not found else f"matches {len(found)} rows"
            raise ValueError(f"`{argument}` file {os.fspath(path)!r} line {k}: id {e!r} {what} of the id column.")
        rows.append(found[0])
    return rows


# ----------------------------------------------------------------------------------------------------- fingerprint
def _value_bytes(v: Any) -> bytes:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray):
        return f"{v.dtype}{v.shape}".encode() + np.ascontiguousarray(v).tobytes()
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    return json.dumps(v, sort_keys=True, default=str).encode()


def rows_fingerprint(model: torch.nn.Module, dataset: Any, rows: Sequence[int] | None = None) -> str:
    """SHA-256 of a set of rows: of the sorted row ids (when known) and of the sorted per-row content hashes (the
    model inputs and the label of each row), so that it does not depend on the order and reveals no content."""
    reader = DatasetReader(dataset, model, "forget_dataset")
    digests = []
    for s in range(0, reader.n, 256):
        for row in reader.rows(list(range(s, min(s + 256, reader.n)))):
            h = hashlib.sha256()
            for k in sorted(row):
                h.update(k.encode() + b"\0" + _value_bytes(row[k]) + b"\0")
            digests.append(h.hexdigest())
    total = hashlib.sha256()
    if rows is not None:
        total.update(json.dumps(sorted(int(r) for r in rows)).encode())
    for d in sorted(digests):
        total.update(d.encode())
    return total.hexdigest()


# ---------------------------------------------------------------------------------------------------- verification
def _scores(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row correctness and loss (cross-entropy at the row's label)."""
    log_probs = torch.log_softmax(torch.from_numpy(np.asarray(logits)).double(), dim=1)
    loss = -log_probs.gather(1, torch.from_numpy(np.asarray(labels)).long()[:, None])[:, 0]
    return (np.asarray(logits).argmax(1) == np.asarray(labels)), loss.numpy()


def mia_auc_from_losses(member_loss: np.ndarray, nonmember_loss: np.ndarray) -> float:
    """Loss-threshold membership AUC: members are guessed by a low loss. 0.5: indistinguishable."""
    from .evaluation import mia_auc_from_scores

    return mia_auc_from_scores(-np.asarray(member_loss), -np.asarray(nonmember_loss))


def chance_auc_se(n_members: int, n_nonmembers: int) -> float:
    """Standard error of the AUC of two samples from one distribution (Hanley & McNeil, AUC = 0.5)."""
    return math.sqrt((n_members + n_nonmembers + 1) / (12.0 * n_members * n_nonmembers))


def samples_check(
    model: torch.nn.Module,
    forget_dataset: Any,
    eval_dataset: Any,
    *,
    data_collator: Callable | None = None,
    batch_size: int = 64,
    accelerator: Any = None,
    heldout_losses: dict[str, torch.Tensor] | None = None,
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """How the forget rows look to ``model`` next to held-out rows: accuracy at their labels, mean loss, the
    loss-based membership AUC (forget vs held-out) and its chance standard error. ``eval_dataset=None``: only the
    forget rows' side, with ``skipped`` saying why no comparison was made. ``heldout_losses``: a dict that receives
    the held-out rows' per-row losses under ``"losses"`` (kept out of the returned check, which goes into reports).
    ``features``: a dict that receives the rows' inputs to the output layer with their labels, ``(x, y)``, under
    ``"forget"`` and ``"heldout"`` (measured by the same passes; a key is absent when that layer does not run once per
    row), for a method that reads them ([`hf_unlearn.methods.retain_finetune.probe_losses`])."""
    from .evaluation import _predict

    kw = dict(data_collator=data_collator, batch_size=batch_size, accelerator=accelerator)
    grabbed: dict[str, torch.Tensor] | None = {} if features is not None else None
    f_logits, f_labels = _predict(model, forget_dataset, argument="forget_dataset", features=grabbed, **kw)
    if features is not None and "features" in grabbed:
        features["forget"] = (grabbed.pop("features"), torch.from_numpy(f_labels))
    f_ok, f_loss = _scores(f_logits, f_labels)
    out: dict[str, Any] = {
        "forget_rows_accuracy": float(f_ok.mean()),
        "forget_rows_loss": float(f_loss.mean()),
        "num_forget_rows": len(f_ok),
    }
    if eval_dataset is None:
        out["skipped"] = "no held-out data (eval_dataset) to compare the forget rows with"
        return out
    e_logits, e_labels = _predict(model, eval_dataset, argument="eval_dataset", features=grabbed, **kw)
    if features is not None and "features" in grabbed:
        features["heldout"] = (grabbed.pop("features"), torch.from_numpy(e_labels))
    e_ok, e_loss = _scores(e_logits, e_labels)
    if heldout_losses is not None:
        heldout_losses["losses"] = torch.as_tensor(e_loss).float()
    out.update(
        heldout_accuracy=float(e_ok.mean()),
        heldout_loss=float(e_loss.mean()),
        num_heldout_rows=len(e_ok),
        mia_auc=mia_auc_from_losses(f_loss, e_loss),
        mia_auc_chance_se=chance_auc_se(len(f_ok), len(e_ok)),
    )
    return out


def decide_samples(check: dict[str, Any], tolerance: float, *, before: dict[str, Any] | None) -> tuple[str, str]:
    """``(status, reason)`` for a samples-scope edit from [`samples_check`] of the edited model (``check``) and of the
    model before the edit on the same held-out rows (``before``; see the module docstring)."""
    if "heldout_accuracy" not in check:
        return "unverified", (
            "nothing shows the forget rows now look like unseen data: give eval_dataset (held-out rows) to compare them with"
        )
    if (
        before is None
        or "heldout_accuracy" not in before
        or before.get("num_heldout_rows") != check["num_heldout_rows"]
    ):
        return "unverified", (
            "nothing shows the edit kept the model's accuracy: the held-out accuracy of the model before the edit, on "
            "the same eval_dataset, is needed to compare with"
        )
    gap = check["forget_rows_accuracy"] - check["heldout_accuracy"]
    auc_bound = 0.5 + max(tolerance, 2.0 * check["mia_auc_chance_se"])
    p0, n = before["heldout_accuracy"], check["num_heldout_rows"]
    drop_bound = max(tolerance, 2.0 * math.sqrt(p0 * (1.0 - p0) / n))
    problems = []
    if p0 - check["heldout_accuracy"] > drop_bound:
        problems.append(
            f"held-out accuracy fell from {p0:.3f} before the edit to {check['heldout_accuracy']:.3f} (more than "
            f"{drop_bound:.3f}): the edit damaged the model, so the forget rows looking like held-out rows shows nothing"
        )
    if gap > tolerance:
        problems.append(
            f"forget-row accuracy {check['forget_rows_accuracy']:.3f} exceeds held-out accuracy "
            f"{check['heldout_accuracy']:.3f} by more than verification_tolerance {tolerance}"
        )
    if check["mia_auc"] > auc_bound:
        problems.append(f"membership AUC forget-vs-held-out {check['mia_auc']:.3f} is above {auc_bound:.3f}")
    if problems:
        return "incomplete", "; ".join(problems)
    return "verified", (
        f"forget rows look like held-out rows: accuracy {check['forget_rows_accuracy']:.3f} vs "
        f"{check['heldout_accuracy']:.3f}, membership AUC {check['mia_auc']:.3f} (bound {auc_bound:.3f}); held-out "
        f"accuracy {check['heldout_accuracy']:.3f} against {p0:.3f} before the edit (largest drop allowed {drop_bound:.3f})"
    )


# ------------------------------------------------------------------------------------------------- strength search
# One-shot edits in samples scope: the strength is chosen from the held-out rows instead of a fixed value. Per method:
# the config field and its rungs from weak to strong; the configured value is the strongest rung tried.
STRENGTH_LADDERS: dict[str, tuple[str, tuple[float, ...], bool]] = {
    # (field, rungs weak -> strong, a larger value is stronger)
    "fisher_mask": ("mask_ratio", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 5e-2, 0.1), True),
    "ssd": ("ssd_alpha", (100.0, 50.0, 25.0, 10.0, 5.0, 2.0, 1.0), False),
    "fisher_noise": ("noise_alpha", (1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4), True),
}


def strength_rungs(config: Any) -> tuple[str, list[float]]:
    """``(field, values)``: the strengths [`strength_search`] tries for ``config.method``, from weak to the configured
    value (always the last rung)."""
    field_name, ladder, larger_is_stronger = STRENGTH_LADDERS[config.method]
    top = float(getattr(config.method_config, field_name))
    weaker = [v for v in ladder if (v < top if larger_is_stronger else v > top)]
    return field_name, weaker + [top]


class _FisherCache:
    """Serves a method's Fisher passes from its first run on the later rungs: the weights are restored to the same
    values before every rung, so the k-th pass of every run computes the same Fisher."""

    def __init__(self, method: Any):
        self.method, self.compute, self.results, self.k = method, method.fisher, [], 0

    def __call__(self, model, dataset, *, kind, parameters, data_collator, max_samples=None):
        from .data_utils import dataset_size

        key = (kind, max_samples, dataset_size(dataset), tuple(parameters))
        if self.k < len(self.results) and self.results[self.k][0] == key:
            fisher, count = self.results[self.k][1]
        else:
            fisher, count = self.compute(
                model,
                dataset,
                kind=kind,
                parameters=parameters,
                data_collator=data_collator,
                max_samples=max_samples,
            )
            self.results[self.k :] = [(key, (fisher, count))]
        self.k += 1
        return {n: t.clone() for n, t in fisher.items()}, count


def strength_search(
    method: Any,
    model: torch.nn.Module,
    request: Any,
    *,
    saved: dict[str, torch.Tensor],
    forget_dataset: Any,
    eval_dataset: Any,
    before: dict[str, Any],
    tolerance: float,
    check_kw: dict[str, Any],
) -> Any:
    """Runs a one-shot ``method`` (``fisher_mask``, ``ssd``, ``fisher_noise``) in samples scope at the strengths of
    [`strength_rungs`], weak to strong, restoring ``saved`` (the weights it may touch) before each, and keeps the first
    edit that [`decide_samples`] verifies against the held-out rows. It stops early once an edit damages the held-out
    accuracy (stronger ones damage more). When none passes, the model is restored and the result says
    ``complete=False`` (the unlearner then refuses the edit). ``details["strength_search"]`` lists every rung tried."""
    import dataclasses
    import time

    from .methods.base import MethodResult
    from .methods.common import restore_

    config = method.config
    field_name, rungs = strength_rungs(config)
    cache = _FisherCache(method)
    method.fisher = cache
    tried: list[dict[str, Any]] = []
    last_reason = ""
    t0 = time.perf_counter()
    p0, n = before["heldout_accuracy"], before["num_heldout_rows"]
    drop_bound = max(tolerance, 2.0 * math.sqrt(p0 * (1.0 - p0) / n))
    try:
        for value in rungs:
            restore_(model, saved)
            settings = dataclasses.replace(config.method_config, **{field_name: value})
            method.config = dataclasses.replace(config, method_config=settings)
            cache.k = 0
            result = method.run(model, request)
            check = samples_check(model, forget_dataset, eval_dataset, **check_kw)
            status, last_reason = decide_samples(check, tolerance, before=before)
            tried.append(
                {
                    field_name: value,
                    "status": status,
                    "forget_rows_accuracy": check["forget_rows_accuracy"],
                    "heldout_accuracy": check["heldout_accuracy"],
                    "mia_auc": check["mia_auc"],
                }
            )
            if status == "verified" and result.details.get("complete", True) is not False:
                result.details["strength_search"] = {"field": field_name, "chosen": value, "tried": tried}
                result.hyperparameters = {**result.hyperparameters, field_name: value}
                result.timings = {**result.timings, "strength_search": time.perf_counter() - t0}
                return result
            if p0 - check["heldout_accuracy"] > drop_bound:
                break
        restore_(model, saved)
        return MethodResult(
            details={
                "complete": False,
                "strength_search": {
                    "field": field_name,
                    "chosen": None,
                    "tried": tried,
                    "reason": f"no {field_name} up to {rungs[-1]} made the forget rows look like held-out rows while "
                    f"keeping the held-out accuracy (at {field_name} {tried[-1][field_name]}: {last_reason}); the "
                    "model is left as it was",
                },
            },
            hyperparameters={field_name: None},
            timings={"strength_search": time.perf_counter() - t0},
        )
    finally:
        method.config = config
        del method.fisher  # the class's own method again
