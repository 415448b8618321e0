"""Diagonal Fisher information of a classifier, batched, across processes.

``compute_fisher`` returns, per parameter tensor, the average over samples of squared gradients:

- ``kind="empirical"``: squared per-sample gradients of the loss at the true label (the mnemonic paper);
- ``kind="true"``: per-sample expectation over the model's predicted distribution,
  ``sum_y p(y|x) (d log p(y|x) / dw)^2``;
- ``kind="batch_true"``: the Fisher-masking authors' batched variant: per batch and class y, the squared gradient
  of the batch-mean loss at label y weighted by the batch-mean p(y), summed over y, averaged over batches;
- ``kind="batch"``: squared mini-batch gradients at the true labels averaged over batches (SSD's importance).

Per-sample kinds have three implementations, equal to 1e-5 relative (see ``benchmarks/results/fisher_speed.md``):
``"layers"`` (the default, :mod:`hf_unlearn.fisher_layers`) forms each layer's squared per-sample gradients from
hooks during one batched forward and backward, one layer at a time; ``"vmap"`` holds every weight's per-sample
gradient at once (``torch.func.vmap(grad(...))`` over a chunk); ``"loop"`` runs one backward per sample (the
reference).

Across processes each rank takes every ``world_size``-th sample, sums squared gradients and counts locally on the
*unwrapped* model, and the sums and counts are reduced with ``accelerator.reduce(..., "sum")`` before dividing:
never through a DDP-wrapped model, whose backward averages gradients across ranks (squares of averages).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from accelerate.utils import send_to_device
from torch import nn
from torch.func import functional_call, grad, vmap

from .data_utils import dataset_size, forward_input_names, iterate_batches, shard_indices
from .data_utils import logits_from_outputs as _logits
from .fisher_layers import LayerFisher, LazySums
from .utils import get_logger, unwrap_model

logger = get_logger(__name__)

KINDS = ("empirical", "true", "batch_true", "batch")
IMPLEMENTATIONS = ("layers", "vmap", "loop")
FISHER_FLOOR = 1e-16


# ---------------------------------------------------------------------- data handling
# Reading batches lives in data_utils (shared with the evaluation); `dataset_size` and `iterate_batches` are
# re-exported here.


# ---------------------------------------------------------------------- model state
@contextlib.contextmanager
def fisher_mode(model: nn.Module, names: set[str]):
    """Eval mode, grads only for ``names``; restores mode, ``requires_grad`` and ``.grad`` on exit."""
    was_training = model.training
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    grads = {n: p.grad for n, p in model.named_parameters()}
    try:
        model.eval()
        for n, p in model.named_parameters():
            p.requires_grad_(n in names)
            p.grad = None
        yield
    finally:
        model.train(was_training)
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
            p.grad = grads[n]


def select_parameters(model: nn.Module, parameters: Iterable[str] | Callable[[str, nn.Parameter], bool] | None):
    named = dict(unwrap_model(model).named_parameters())
    if parameters is None:
        return named
    if callable(parameters):
        return {n: p for n, p in named.items() if parameters(n, p)}
    wanted = list(parameters)
    unknown = [n for n in wanted if n not in named]
    if unknown:
        raise ValueError(f"`parameters` names {unknown[:3]}... that the model does not have.")
    return {n: named[n] for n in wanted}


# model -> True when a ready 4D additive mask means the same to it as the 2D 0/1 mask (checked on a padded batch)
_ADDITIVE_MASK_OK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _prepare_attention_mask(model: nn.Module, batch: dict[str, torch.Tensor], dtype: torch.dtype) -> dict:
    """The inputs vmap gets: a 2D attention mask becomes a 4D additive one where that means the same to the model.

    transformers builds its mask with data-dependent checks (``mask.all()``) that vmap rejects; a ready 4D additive
    mask (B, 1, 1, L) is passed through as-is and means the same thing to eager and SDPA attention. Not every model
    reads it so (DeBERTa-v2 builds its own mask and reads any 4D mask as 0/1, and multiplies its embeddings by it):
    once per model, on a batch with padding, the logits with both masks are compared, and the 2D mask is kept
    where they differ (such models build their mask element-wise, which vmap accepts).
    """
    am = batch.get("attention_mask")
    if am is None or am.dim() != 2:
        return batch
    additive = (1.0 - am[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
    ok = _ADDITIVE_MASK_OK.get(model)
    if ok is None:
        with torch.no_grad():
            ref = _logits(model(**batch)).float()
            out = _logits(model(**{**batch, "attention_mask": additive})).float()
        ok = bool(torch.allclose(out, ref, rtol=1e-4, atol=1e-5 * (1.0 + ref.abs().max().item())))
        if not ok or not bool(am.all()):  # a batch without padding cannot tell padding handling apart
            _ADDITIVE_MASK_OK[model] = ok
        if not ok:
            logger.info("Fisher: %s reads a 4D mask differently; vmap gets the 2D mask", type(model).__name__)
    if not ok:
        return batch
    return {**batch, "attention_mask": additive}


def input_embeddings(model: nn.Module) -> nn.Module | None:
    """The model's input embedding module, or None when it has none (CNNs, MobileViT: transformers raises
    ``NotImplementedError`` from ``get_input_embeddings`` there)."""
    get = getattr(model, "get_input_embeddings", None)
    if get is None:
        return None
    try:
        return get()
    except (NotImplementedError, AttributeError):
        return None


# ---------------------------------------------------------------------- per-sample sums
@contextlib.contextmanager
def _no_input_grad_hooks(model: nn.Module):
    """Lifts transformers' ``enable_input_require_grads`` hooks (installed by ``gradient_checkpointing_enable``):
    they call ``requires_grad_`` on the embeddings' output, which vmap rejects."""
    hooks = getattr(model, "_require_grads_hooks", None)
    if not hooks or not hasattr(model, "disable_input_require_grads"):
        yield
        return
    model.disable_input_require_grads()
    try:
        yield
    finally:
        model.enable_input_require_grads()


def _per_sample_sq_sums(model, params, batch, kind, num_labels) -> dict[str, torch.Tensor]:
    """Sum over the batch of squared per-sample gradients (vmap over samples).

    Under ``no_grad``: ``torch.func.grad`` ignores an outer ``no_grad``, while without it autograd would also record
    the per-sample gradients' own graph through the model's other parameters (those not in ``params`` that require
    grad, as in the per-layer pass's fallback), and the sums, added in place into the accumulators, would chain
    every chunk's graph to the next (memory growing with every chunk).
    """
    with _no_input_grad_hooks(model), torch.no_grad():
        return _vmap_sq_sums(model, params, batch, kind, num_labels)


def _vmap_sq_sums(model, params, batch, kind, num_labels) -> dict[str, torch.Tensor]:
    labels = batch["labels"]
    inputs = _prepare_attention_mask(model, {k: v for k, v in batch.items() if k != "labels"}, torch.float32)
    frozen = {n: p.detach() for n, p in params.items()}

    def sample_logp(p, inp):
        out = functional_call(model, p, args=(), kwargs={k: v.unsqueeze(0) for k, v in inp.items()})
        return torch.log_softmax(_logits(out).float(), dim=-1)[0]  # (C,)

    if kind == "empirical":
        onehot = F.one_hot(labels, num_labels).float()  # (B, C): tensor indexing inside vmap is not supported
        sparse = _sparse_embedding_sq_sums(model, params, frozen, inputs, onehot)
        if sparse is not None:
            return sparse

        def loss(p, inp, oh):
            return -(sample_logp(p, inp) * oh).sum()

        g = vmap(grad(loss), in_dims=(None, 0, 0))(frozen, inputs, onehot)
        return {n: (v.float() ** 2).sum(0) for n, v in g.items()}
    # kind == "true": sum_y p(y|x) (d log p(y|x))^2, one vmap per class
    with torch.no_grad():
        probs = torch.softmax(_logits(model(**inputs)).float(), -1)  # inputs hold no labels: no loss computed
    out = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    for y in range(num_labels):
        oh = torch.zeros(num_labels)
        oh[y] = 1.0
        onehot = oh.expand(labels.shape[0], -1)

        def loss_y(p, inp, o):
            return -(sample_logp(p, inp) * o).sum()

        g = vmap(grad(loss_y), in_dims=(None, 0, 0))(frozen, inputs, onehot)
        w = probs[:, y]
        for n, v in g.items():
            out[n] += torch.einsum("b,b...->...", w, v.float() ** 2)
    return out


def _sparse_embedding_sq_sums(model, params, frozen, inputs, onehot) -> dict[str, torch.Tensor] | None:
    """Empirical per-sample squares with the word-embedding matrix handled sparsely.

    A sample's gradient on the embedding matrix is non-zero only on the rows of its own tokens, yet vmap would
    materialise it densely (B x vocab x hidden: most of MiniLM's weights). So the embeddings are looked up outside
    vmap, the per-token gradients taken with respect to them, summed per (sample, token id) and squared. Returns
    ``None`` when the model does not fit that pattern (no ``input_ids``, no ``inputs_embeds`` argument...).
    """
    emb = input_embeddings(model)
    if (
        "input_ids" not in inputs
        or not isinstance(emb, nn.Embedding)
        or "inputs_embeds" not in forward_input_names(model)
    ):
        return None
    emb_name = next((n for n, p in params.items() if p is emb.weight), None)
    if emb_name is None:
        return None
    ids = inputs["input_ids"]
    rest = {k: v for k, v in inputs.items() if k != "input_ids"}
    others = {n: v for n, v in frozen.items() if n != emb_name}
    embeds = F.embedding(ids, frozen[emb_name], padding_idx=emb.padding_idx)  # (B, L, H)

    def loss(p, e, inp, oh):
        kwargs = {k: v.unsqueeze(0) for k, v in inp.items()}
        out = functional_call(model, p, args=(), kwargs={"inputs_embeds": e.unsqueeze(0), **kwargs})
        return -(torch.log_softmax(_logits(out).float(), dim=-1)[0] * oh).sum()

    g, g_e = vmap(grad(loss, argnums=(0, 1)), in_dims=(None, 0, 0, 0))(others, embeds, rest, onehot)
    out = {n: (v.float() ** 2).sum(0) for n, v in g.items()}
    acc = torch.zeros_like(frozen[emb_name], dtype=torch.float32)
    for i in range(ids.shape[0]):
        uniq, inv = torch.unique(ids[i], return_inverse=True)
        per_row = torch.zeros(uniq.shape[0], acc.shape[1], dtype=torch.float32, device=acc.device)
        per_row.index_add_(0, inv, g_e[i].float())  # (U, H): this sample's gradient on each of its token rows
        acc.index_add_(0, uniq, per_row**2)
    if emb.padding_idx is not None:
        acc[emb.padding_idx] = 0.0  # nn.Embedding gives the padding row no gradient
    out[emb_name] = acc
    return out


def _loop_sq_sums(model, params, batch, kind, num_labels) -> dict[str, torch.Tensor]:
    """Reference implementation: one backward per sample (and per class for ``kind="true"``)."""
    out = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    for i in range(labels.shape[0]):
        one = {k: v[i : i + 1] for k, v in inputs.items()}
        if kind == "empirical":
            targets = [(int(labels[i]), 1.0)]
        else:
            with torch.no_grad():
                p = torch.softmax(_logits(model(**one)).float(), -1)[0]
            targets = [(y, float(p[y])) for y in range(num_labels)]
        for y, w in targets:
            logp = torch.log_softmax(_logits(model(**one)).float(), -1)[0]
            gs = torch.autograd.grad(-logp[y], list(params.values()), allow_unused=True)
            for (n, _), g in zip(params.items(), gs):
                if g is not None:
                    out[n] += w * g.float() ** 2
    return out


def _add_batch_sq_sums_(model, params, batch, kind, num_labels, sums) -> None:
    """Adds squared batch-mean gradients (SSD importance, or the masking authors' batched true Fisher) to ``sums``.

    Each parameter's gradient is squared into its sum as soon as the backward has accumulated it and freed at once
    (a post-accumulate-grad hook), so no second model-sized set of gradients is held.
    """
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logp = torch.log_softmax(_logits(model(**inputs)).float(), -1)  # (B, C)
    if kind == "batch":
        targets = [(None, 1.0)]
    else:
        mean_p = logp.detach().exp().mean(0)
        targets = [(y, float(mean_p[y])) for y in range(num_labels)]
    weight = [1.0]

    def square_into(name):
        def hook(p):
            g = p.grad.float()
            sums[name].addcmul_(g, g, value=weight[0])
            p.grad = None

        return hook

    handles = [p.register_post_accumulate_grad_hook(square_into(n)) for n, p in params.items()]
    try:
        for j, (y, w) in enumerate(targets):
            weight[0] = w
            loss = F.nll_loss(logp, labels) if y is None else -logp[:, y].mean()
            loss.backward(retain_graph=j < len(targets) - 1)
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------------- public entry point
def compute_fisher(
    model: nn.Module,
    dataset: Any,
    *,
    data_collator: Callable | None = None,
    batch_size: int = 16,
    kind: str = "empirical",
    parameters: Iterable[str] | Callable[[str, nn.Parameter], bool] | None = None,
    accelerator: Any = None,
    max_samples: int | None = None,
    implementation: str = "layers",
    floor: float | None = None,
    return_count: bool = False,
    show_progress: bool | None = None,
    layer_memory_mb: float = 256.0,
) -> dict[str, torch.Tensor] | tuple[dict[str, torch.Tensor], int]:
    """Diagonal Fisher information of ``model`` over ``dataset``.

    Args:
        model: a classifier returning ``logits`` (transformers model or any ``nn.Module``). Not DDP-wrapped: a
            wrapped model is unwrapped first.
        dataset: a ``datasets.Dataset``, a torch dataset of dicts, or a dict of tensors such as
            ``codebook.as_inputs(with_labels=True)``; must hold ``labels``.
        data_collator: collates rows (e.g. ``DataCollatorWithPadding`` for text); tensors are stacked otherwise.
        batch_size: samples per forward chunk (``empirical``/``true``) or per mini-batch (``batch``/``batch_true``).
        kind: ``"empirical"``, ``"true"``, ``"batch_true"`` or ``"batch"`` (see the module docstring).
        parameters: names of the parameters to include, or a predicate ``(name, param) -> bool``; all by default.
        accelerator: an ``accelerate.Accelerator``; with several processes each rank takes its shard and the sums
            and counts are reduced, so every rank returns the same Fisher.
        max_samples: use at most the first ``max_samples`` samples.
        implementation: ``"layers"`` (per-layer squared per-sample gradients from one batched forward and
            backward: the fastest, memory of one layer's per-sample gradients; works with gradient checkpointing,
            which stays active during the pass), ``"vmap"`` (every weight's per-sample gradient at once) or
            ``"loop"`` (one backward per sample; the reference). Ignored for the batch kinds.
        floor: clamp the result from below (e.g. ``1e-16`` as the mnemonic paper does).
        return_count: also return the number of samples (or batches for the batch kinds) averaged over.
        show_progress: a progress bar on the main process (default: when there are more than 20 chunks).
        layer_memory_mb: ``"layers"`` only: bound on one layer's per-sample gradients held at once (a chunk is split
            over samples to stay under it, e.g. ``B x 4096 x 1024 x 4`` bytes for a ViT-large MLP weight).

    Returns:
        ``{name: tensor}`` in float32 on the parameters' device (and the count when ``return_count``).
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}.")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"`implementation` must be one of {IMPLEMENTATIONS}, got {implementation!r}.")
    if not layer_memory_mb > 0:
        raise ValueError(f"`layer_memory_mb` must be > 0, got {layer_memory_mb}.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
    model = unwrap_model(model)
    n_total = dataset_size(dataset)
    if max_samples is not None:
        n_total = min(n_total, max_samples)
    if n_total == 0:
        raise ValueError("`dataset` is empty: the Fisher needs at least one sample.")
    params = select_parameters(model, parameters)
    if not params:
        raise ValueError("`parameters` selects no parameter of the model.")
    num_labels = int(getattr(getattr(model, "config", None), "num_labels", 0) or 0)
    rank = accelerator.process_index if accelerator is not None else 0
    world = accelerator.num_processes if accelerator is not None else 1
    is_main = rank == 0

    per_sample = kind in ("empirical", "true")
    if not per_sample or implementation == "layers":  # each sum allocated when its tensor first gets a gradient
        sums = LazySums(params)
    else:
        sums = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    count = 0
    step = {
        ("empirical", "vmap"): _per_sample_sq_sums,
        ("true", "vmap"): _per_sample_sq_sums,
        ("empirical", "loop"): _loop_sq_sums,
        ("true", "loop"): _loop_sq_sums,
    }.get((kind, implementation))
    if not per_sample:

        def step(model, params, batch, kind, num_labels):
            _add_batch_sq_sums_(model, params, batch, kind, num_labels, sums)

    if per_sample and implementation == "layers":
        layers = LayerFisher(model, params, fallback=_per_sample_sq_sums, memory_mb=layer_memory_mb)

        def step(model, params, batch, kind, num_labels):
            layers.add_sq_sums_(batch, kind, num_labels, sums)  # accumulates in place: no per-chunk copy

    n_chunks = -(-len(shard_indices(n_total, rank, world)) // batch_size)
    progress = None
    if show_progress is None:
        show_progress = n_chunks > 20
    if show_progress and is_main:
        from tqdm.auto import tqdm

        progress = tqdm(total=n_chunks, desc=f"Fisher ({kind})", leave=False)
    t0 = time.perf_counter()
    device = next(iter(params.values())).device
    with fisher_mode(model, set(params)):
        for batch in iterate_batches(
            model,
            dataset,
            batch_size=batch_size,
            data_collator=data_collator,
            rank=rank,
            world_size=world,
            max_samples=max_samples,
        ):
            labels = batch.get("labels")
            if labels is None:
                raise ValueError("`dataset` must hold `labels` (or `label`) for the Fisher.")
            labels = torch.as_tensor(labels).long()
            if num_labels and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_labels):
                raise ValueError(f"`dataset` holds labels outside the model's {num_labels} classes.")
            batch = send_to_device(batch, device)
            batch["labels"] = labels.to(device)
            part = step(model, params, batch, kind, num_labels)
            for n in sums if part is not None else ():
                sums[n] += part[n]
            count += labels.shape[0] if per_sample else 1
            if progress is not None:
                progress.update(1)
    if progress is not None:
        progress.close()
    sums = {n: sums[n] for n in params}  # (LazySums: zeros for tensors no gradient reached)
    if accelerator is not None and world > 1:
        sums = accelerator.reduce(sums, reduction="sum")
        count = int(accelerator.reduce(torch.tensor(count, device=device, dtype=torch.float64), reduction="sum"))
    fisher = {n: s.div_(max(count, 1)) for n, s in sums.items()}  # in place: no second copy of every tensor
    for n, f in fisher.items():
        if not torch.isfinite(f.max()):  # squares are >= 0: the max is NaN or inf when any entry is
            bad = next((m for m, p in params.items() if not torch.isfinite(p).all()), None)
            why = (
                f"`model` weight {bad!r} holds NaN/inf"
                if bad is not None
                else "the weights are finite: check `dataset` inputs for NaN/inf, or compare with "
                f"implementation='loop' (this was {implementation!r})"
            )
            raise FloatingPointError(f"The Fisher of parameter {n!r} holds NaN/inf: {why}.")
    if floor is not None:
        fisher = {n: f.clamp_min_(floor) for n, f in fisher.items()}
    logger.info("Fisher (%s) over %d samples in %.2fs", kind, count, time.perf_counter() - t0)
    return (fisher, count) if return_count else fisher
