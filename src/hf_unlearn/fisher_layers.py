"""Per-layer Fisher: squared per-sample gradients formed layer by layer during one batched backward.

The per-sample gradient of a layer's weights is a function of that layer's input ``x`` and of the gradient ``dy``
that reaches its output, both of which a batched forward and backward already compute. So instead of
materialising every weight's per-sample gradient at once (``vmap(grad)``: ``B x`` the model), a forward hook keeps
each layer's input and a tensor hook on its output receives ``dy``; the per-sample gradients of that layer are
formed, squared, summed into the float32 accumulator and freed at once (Opacus's grad samplers form the same
products, here they are squared and summed instead of kept):

- ``nn.Linear`` on sequences: ``g_n = sum_t dy_{n,t} x_{n,t}^T`` (a matmul over tokens per sample, squared into the
  sum through one reused buffer for large layers, batched in slices under a memory budget for small ones); bias
  ``sum_t dy_{n,t}``; with one token per sample (a pooler, a head) ``sum_n g_n^2 = (dy^2)^T x^2``, one matmul;
- ``nn.LayerNorm``: weight ``sum_t dy * x_hat``, bias ``sum_t dy``;
- ``nn.Embedding``: each sample's gradient on the rows of its own tokens (summed per row, then squared): only
  touched rows are formed;
- ``nn.Conv2d`` (the patch embedding): a Linear on unfolded patches.

The weights of hooked layers do not require grad during the pass: autograd then skips the batch weight gradients
(``dy^T x``), whose work the per-sample products replace, and the backward only propagates ``dy`` through the
network; the first hooked outputs become the leaves the backward is asked for.

Parameters outside those layers (a ViT's ``cls_token`` and ``position_embeddings``) are handled in the same
backward when their first dimension is 1 and the model broadcasts them over the batch: they are replaced by a
``(B, ...)`` copy whose gradient row ``n`` is sample ``n``'s. That replacement (and the batch-expanded position
ids of BERT-like embeddings) is checked once per model on two samples: perturbing sample 0's row must change
sample 0's output and leave sample 1's identical. Everything else goes to a fallback, the ``vmap`` path: unknown
parameter kinds, tied weights, a layer called twice per forward or fed a batch dimension that is not the samples'
(both seen in the forward, which is then rerun without it), and a layer whose output no gradient reaches (its
weights are used outside the module, as ``nn.MultiheadAttention`` does with ``out_proj``).

``kind="empirical"`` backpropagates ``softmax(z) - onehot(y)`` from the logits once. ``kind="true"``
(``sum_y p(y|x) g_y^2``) uses ``sum_y p_y (e_y - p)(e_y - p)^T = diag(p) - p p^T``, a rank ``C - 1`` matrix: its
``C - 1`` scaled eigenvectors per sample are backpropagated from one forward, one backward each (one fewer than
one per class). Gradient checkpointing stays active during the pass when the model enables it (the checkpointed
layers are switched to training mode, their submodules stay in eval mode, so dropout stays off). Each layer is
counted once per backward: with non-reentrant checkpointing the hooks set again during the recompute sit on
tensors the backward never reaches; with reentrant checkpointing the first forward runs without grad, sets none,
and the recompute sets them.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data_utils import logits_from_outputs as _logits
from .utils import get_logger

logger = get_logger(__name__)

# model -> {probe key: (valid, frozenset of expanded embedding names)}: the substitution check runs once per model
_PROBE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Unsupported(Exception):
    """Raised in a forward hook when a layer cannot be handled per layer; the pass is restarted without it."""

    def __init__(self, module_name: str, why: str):
        super().__init__(f"{module_name}: {why}")
        self.module_name = module_name


class LazySums(dict):
    """``{name: float32 sum}`` whose entries are allocated (as zeros) on first use, as autograd allocates ``.grad``:
    a one-chunk pass then never holds every accumulator next to every activation."""

    def __init__(self, params: dict[str, nn.Parameter]):
        super().__init__()
        self._params = params

    def __missing__(self, name: str) -> torch.Tensor:
        self[name] = t = torch.zeros_like(self._params[name], dtype=torch.float32)
        return t


def layer_type(module: nn.Module) -> str | None:
    """The per-layer rule for ``module`` (``"linear"``, ``"layernorm"``, ``"embedding"``, ``"conv2d"``) or None."""
    t = type(module)
    if isinstance(module, nn.Linear) and t.forward is nn.Linear.forward:
        return "linear"
    if isinstance(module, nn.LayerNorm) and t.forward is nn.LayerNorm.forward and module.elementwise_affine:
        return "layernorm"
    if isinstance(module, nn.Embedding) and t.forward is nn.Embedding.forward and module.max_norm is None:
        return "embedding"
    if (
        isinstance(module, nn.Conv2d)
        and t.forward is nn.Conv2d.forward
        and module.groups == 1
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    ):
        return "conv2d"
    return None


# ---------------------------------------------------------------------- per-layer squared per-sample gradients
def _step(per_sample_bytes: int, budget_bytes: int) -> int:
    """Samples per slice so that one slice of per-sample gradients stays under the budget (at least one)."""
    return max(1, budget_bytes // max(per_sample_bytes, 1))


def _add_sq_products_(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor, budget: int) -> None:
    """``acc (O, I) += sum_n (a[n] @ b[n])**2`` for ``a (N, O, T)``, ``b (N, T, I)``: squared per-sample gradients.

    On CPU, large layers go one sample at a time through one reused buffer (``mm`` + ``addcmul_``: about 1.3x the
    batch gradient's ``mm``; a batched ``bmm`` writing ``N x O x I`` is memory-bound and 3-6x slower). Small layers,
    and every layer on an accelerator (where one launch per sample would dominate), are formed in slices of samples
    under ``budget`` bytes.
    """
    n = a.shape[0]
    if acc.device.type == "cpu" and acc.numel() >= 2**16:
        buf = torch.empty_like(acc)
        for i in range(n):
            torch.mm(a[i], b[i], out=buf)
            acc.addcmul_(buf, buf)
        return
    step = _step(acc.numel() * 4, budget)
    for s in range(0, n, step):
        acc += torch.bmm(a[s : s + step], b[s : s + step]).square_().sum(0)


def _linear_sq_(module, x, dy, names, sums, budget) -> None:
    b = x.shape[0]
    x3 = x.reshape(b, -1, x.shape[-1])  # (B, T, in)
    dy3 = dy.reshape(b, -1, dy.shape[-1])  # (B, T, out)
    if names.get("weight"):
        if x3.shape[1] == 1:  # one token per sample (a pooler, a head): (dy x^T)^2 = dy^2 (x^2)^T, one matmul
            acc = sums[names["weight"]]
            acc.addmm_(dy3[:, 0].float().square().T, x3[:, 0].float().square())
        else:
            _add_sq_products_(sums[names["weight"]], dy3.transpose(1, 2).float(), x3.float(), budget)  # (B,out,in)
    if names.get("bias"):
        sums[names["bias"]] += dy3.float().sum(1).square_().sum(0)


def _layernorm_sq_(module, x, dy, names, sums, budget) -> None:
    k = len(module.normalized_shape)
    tokens = tuple(range(1, x.dim() - k))  # the dims between the batch and the normalised dims
    dy = dy.float()
    if names.get("weight"):
        x_hat = F.layer_norm(x.float(), module.normalized_shape, None, None, module.eps)
        g = dy * x_hat
        sums[names["weight"]] += (g.sum(tokens) if tokens else g).square_().sum(0)
    if names.get("bias"):
        sums[names["bias"]] += (dy.sum(tokens) if tokens else dy.clone()).square_().sum(0)


def _embedding_sq_(module, idx, dy, names, sums, budget) -> None:
    if not names.get("weight"):
        return
    acc = sums[names["weight"]]
    v, h = acc.shape
    b = idx.shape[0]
    idx2 = idx.reshape(b, -1)  # (B, T)
    dy2 = dy.reshape(b, -1, h).float()  # (B, T, H)
    keys = idx2 + v * torch.arange(b, device=idx2.device)[:, None]  # one key per (sample, row)
    keep = torch.ones_like(idx2, dtype=torch.bool) if module.padding_idx is None else idx2 != module.padding_idx
    keys, rows = keys[keep], dy2[keep]  # nn.Embedding gives the padding row no gradient
    uniq, inv = torch.unique(keys, return_inverse=True)
    per_row = torch.zeros(uniq.shape[0], h, dtype=torch.float32, device=acc.device)
    per_row.index_add_(0, inv, rows)  # (U, H): each sample's gradient on each of its rows
    acc.index_add_(0, uniq % v, per_row.square_())


def _conv2d_sq_(module, x, dy, names, sums, budget) -> None:
    b = x.shape[0]
    dy3 = dy.reshape(b, dy.shape[1], -1)  # (B, out, L)
    if names.get("weight"):
        acc = sums[names["weight"]]
        # (B, in*k*k, L): the patches each output position sees
        cols = F.unfold(x.float(), module.kernel_size, module.dilation, module.padding, module.stride)
        _add_sq_products_(acc.view(acc.shape[0], -1), dy3.float(), cols.transpose(1, 2), budget)  # (B,out,in*k*k)
    if names.get("bias"):
        sums[names["bias"]] += dy3.float().sum(2).square_().sum(0)


_RULES: dict[str, Callable] = {
    "linear": _linear_sq_,
    "layernorm": _layernorm_sq_,
    "embedding": _embedding_sq_,
    "conv2d": _conv2d_sq_,
}


def _checkpointed_layers(model: nn.Module) -> list[nn.Module]:
    """Modules that checkpoint when in training mode and whose own forward does not read ``self.training``."""
    out = []
    for m in model.modules():
        if getattr(m, "gradient_checkpointing", False) is True and hasattr(m, "_gradient_checkpointing_func"):
            try:
                src = inspect.getsource(inspect.unwrap(type(m).forward))
            except (OSError, TypeError):
                continue
            if "self.training" not in src:
                out.append(m)
    return out


# ---------------------------------------------------------------------- the per-layer pass
class LayerFisher:
    """Per-layer sums of squared per-sample gradients for ``params`` of ``model`` (see the module docstring).

    Args:
        model: the unwrapped model, already in ``fisher_mode`` (eval, grads only for ``params``).
        params: ``{name: parameter}`` to compute.
        fallback: ``fallback(model, params, batch, kind, num_labels) -> {name: sum}`` for the parameters the
            per-layer rules cannot handle (the vmap path).
        memory_mb: bound on the per-sample gradients of one layer held at once; a chunk is split over samples to
            stay under it (at least one sample at a time).
    """

    def __init__(self, model: nn.Module, params: dict[str, nn.Parameter], fallback: Callable, memory_mb: float = 256):
        self.model = model
        self.params = params
        self.fallback = fallback
        self.budget = int(memory_mb * 2**20)
        by_id = {id(p): n for n, p in params.items()}
        owners: dict[int, int] = {}
        for m in model.modules():
            for p in m._parameters.values():
                if p is not None:
                    owners[id(p)] = owners.get(id(p), 0) + 1
        self.targets: dict[str, tuple[nn.Module, str, dict[str, str]]] = {}  # module name -> (module, rule, names)
        covered: set[str] = set()
        for mname, m in model.named_modules():
            rule = layer_type(m)
            if rule is None:
                continue
            names = {
                attr: by_id[id(p)]
                for attr, p in m._parameters.items()
                if p is not None and id(p) in by_id and owners[id(p)] == 1 and attr in ("weight", "bias")
            }
            if names:
                self.targets[mname] = (m, rule, names)
                covered.update(names.values())
        rest = [n for n in params if n not in covered]
        # parameters with a leading 1 that the model broadcasts over the batch (checked by the probe)
        self.broadcast = [n for n in rest if params[n].dim() >= 1 and params[n].shape[0] == 1]
        self.leftover = [n for n in rest if n not in self.broadcast]
        self.expanded: frozenset[str] = frozenset()  # embedding modules fed (1, T) ids, expanded to (B, T)
        self.probed = False
        self._ckpt_layers = _checkpointed_layers(model)

    # ------------------------------------------------------------------ bookkeeping
    def _drop_module(self, mname: str, why: str) -> None:
        _, _, names = self.targets.pop(mname)
        self.leftover.extend(names.values())
        logger.info("Fisher per layer: %s goes to the fallback (%s)", mname, why)

    @contextlib.contextmanager
    def _swapped(self, subs: dict[str, torch.Tensor]):
        """Replaces parameters by tensors for the duration (forward and backward, so checkpoint recomputes see them)."""
        saved = []
        try:
            for n, t in subs.items():
                mod_name, _, attr = n.rpartition(".")
                mod = self.model.get_submodule(mod_name)
                saved.append((mod, attr, mod._parameters[attr]))
                mod._parameters[attr] = t
            yield
        finally:
            for mod, attr, p in reversed(saved):
                mod._parameters[attr] = p

    @contextlib.contextmanager
    def _hooks(self, pre_fn: Callable | None, fwd_fn: Callable):
        handles = []
        try:
            for mname, (m, rule, _names) in self.targets.items():
                if pre_fn is not None and rule == "embedding":
                    handles.append(m.register_forward_pre_hook(pre_fn(mname)))
                handles.append(m.register_forward_hook(fwd_fn(mname, m, rule)))
            yield
        finally:
            for h in handles:
                h.remove()

    # ------------------------------------------------------------------ one-off check on two samples
    def _probe(self, inputs: dict[str, torch.Tensor]) -> None:
        """Decides which embeddings get batch-expanded ids and whether broadcast parameters may be replaced."""
        self.probed = True
        two = {k: v[:2] for k, v in inputs.items()}
        key = (tuple(sorted(self.params)), tuple(sorted(inputs)))
        cache = _PROBE_CACHE.setdefault(self.model, {})
        if key in cache:
            valid, self.expanded = cache[key]
            if not valid:
                self._give_up_broadcast()
            return
        dims: dict[str, int] = {}

        def record_pre(mname):
            def hook(module, args):
                if args and torch.is_tensor(args[0]):
                    dims.setdefault(mname, args[0].shape[0])

            return hook

        def nothing(mname, m, rule):
            return lambda *a: None

        with torch.no_grad(), self._hooks(record_pre, nothing):
            ref = _logits(self.model(**two)).float()
        self.expanded = frozenset(
            n for n, (_, rule, _) in self.targets.items() if rule == "embedding" and dims.get(n) == 1
        )
        valid = True
        if self.broadcast or self.expanded:
            g = torch.Generator().manual_seed(0)
            subs = {}
            for n in self.broadcast:
                p = self.params[n].detach()
                pb = p.expand(2, *p.shape[1:]).clone()
                noise = torch.randn(pb[0].shape, generator=g, dtype=torch.float32).to(pb)
                pb[0] += 0.5 * noise * (p.float().std().nan_to_num(0.0) + 0.02).to(pb.dtype)
                subs[n] = pb

            def expand_pre(mname):
                def hook(module, args):
                    if mname in self.expanded and args[0].shape[0] == 1:
                        return (args[0].expand(2, *args[0].shape[1:]),) + tuple(args[1:])
                    return None

                return hook

            def perturb(mname, m, rule):
                def hook(module, args, output):
                    if mname in self.expanded:
                        output = output.clone()
                        noise = torch.randn(output[0].shape, generator=g, dtype=torch.float32).to(output)
                        output[0] += 0.5 * noise * (output.float().std().nan_to_num(0.0) + 0.02).to(output.dtype)
                        return output
                    return None

                return hook

            try:
                with torch.no_grad(), self._swapped(subs), self._hooks(expand_pre, perturb):
                    out = _logits(self.model(**two)).float()
                tiny = 1e-6 * (ref.abs().max().item() + 1e-6)
                same1 = (out[1] - ref[1]).abs().max().item() <= tiny
                changed0 = (out[0] - ref[0]).abs().max().item() > 10 * tiny
                valid = out.shape == ref.shape and same1 and changed0
            except Exception as e:  # noqa: BLE001 - any failure of the replaced forward means: not batch-aligned
                logger.info("Fisher per layer: broadcast check failed (%s)", e)
                valid = False
        cache[key] = (valid, self.expanded)
        if not valid:
            self._give_up_broadcast()

    def _give_up_broadcast(self) -> None:
        logger.info("Fisher per layer: %s and %s go to the fallback", self.broadcast, sorted(self.expanded))
        self.leftover.extend(self.broadcast)
        self.broadcast = []
        for mname in self.expanded:
            if mname in self.targets:
                self._drop_module(mname, "ids shared across the batch")
        self.expanded = frozenset()

    # ------------------------------------------------------------------ the pass
    def _backward_vectors(self, z: torch.Tensor, labels: torch.Tensor, kind: str) -> list[torch.Tensor]:
        """Gradients to send into the logits ``z`` (B, C), one backward each."""
        p = torch.softmax(z.detach().double(), -1)  # (B, C)
        if kind == "empirical":
            return [(p - F.one_hot(labels, z.shape[-1]).double()).to(z.dtype)]
        # true Fisher: diag(p) - p p^T = sum_k lam_k v_k v_k^T (rank C - 1: the smallest eigenvalue is 0)
        m = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # (B, C, C)
        lam, vec = torch.linalg.eigh(m)
        a = vec * lam.clamp_min(0).sqrt()[:, None, :]  # (B, C, C): column k is sqrt(lam_k) v_k
        return [a[:, :, k].to(z.dtype) for k in range(1, z.shape[-1])]

    def _pass(self, inputs, labels, kind, sums) -> set[str]:
        """One forward and the backward(s); returns the names of hooked modules that never received a gradient."""
        b = labels.shape[0]
        state = {"phase": "forward", "backwards": 0, "last": 0}
        calls: dict[str, int] = {}
        fired: dict[str, int] = {}
        sources: list[torch.Tensor] = []

        def expand_pre(mname):
            def hook(module, args):
                if mname in self.expanded and args and args[0].shape[0] == 1 and b > 1:
                    return (args[0].expand(b, *args[0].shape[1:]),) + tuple(args[1:])
                return None

            return hook

        def fwd(mname, module, rule):
            names = self.targets[mname][2]
            fn = _RULES[rule]

            def hook(mod, args, output):
                if not torch.is_grad_enabled():  # e.g. the no-grad first forward of reentrant checkpointing
                    return None
                why = None
                if not args or not torch.is_tensor(args[0]) or not torch.is_tensor(output):
                    why = "input passed by keyword or not a tensor"
                elif args[0].shape[0] != b or output.shape[0] != b:
                    why = f"batch dimension {args[0].shape[0]} != {b}"
                if why is not None:
                    if state["phase"] != "forward":  # a recompute during the backward: sums are partly added
                        raise RuntimeError(f"Fisher per layer: {mname}: {why}; use implementation='vmap'.")
                    raise _Unsupported(mname, why)
                x = args[0]
                if state["phase"] == "forward":
                    calls[mname] = calls.get(mname, 0) + 1
                    if calls[mname] > 1:
                        raise _Unsupported(mname, "called more than once per forward")
                box = [x.detach()]  # released after the last backward, as autograd frees its saved tensors
                new_output = None
                target = output
                if not output.requires_grad:
                    if state["phase"] != "forward":
                        return None
                    target = output.detach().requires_grad_()  # a leaf the backward is asked for
                    sources.append(target)
                    new_output = target.clone()  # the model may modify its input in place; never a leaf
                done = [0]  # the backward this hook last counted in: one count per backward

                def on_grad(dy):
                    if done[0] == state["backwards"]:
                        return
                    done[0] = state["backwards"]
                    fired[mname] = fired.get(mname, 0) + 1
                    if fired[mname] > state["backwards"]:
                        raise RuntimeError(
                            f"Fisher per layer: {mname} received two gradients in one backward (a module called "
                            "twice per forward under reentrant checkpointing?): use implementation='vmap'."
                        )
                    with torch.no_grad():
                        fn(mod, box[0], dy.detach(), names, sums, self.budget)
                    if state["backwards"] == state["last"]:
                        box[0] = None

                target.register_hook(on_grad)
                return new_output

            return hook

        # weights of hooked layers and fallback parameters do not require grad during the pass
        frozen = [self.params[n] for n in self.params if n not in self.broadcast]
        flags = [p.requires_grad for p in frozen]
        subs = {}
        for n in self.broadcast:
            p = self.params[n].detach()
            subs[n] = p.expand(b, *p.shape[1:]).clone().requires_grad_()
        ckpt = [m for m in self._ckpt_layers if not m.training]
        try:
            for p in frozen:
                p.requires_grad_(False)
            for m in ckpt:
                m.training = True  # only the layer itself: its submodules (dropout) stay in eval mode
            with self._swapped(subs), self._hooks(expand_pre, fwd):
                z = _logits(self.model(**inputs)).float()  # (B, C)
                state["phase"] = "backward"
                if not z.requires_grad:
                    return set(self.targets)
                vectors = self._backward_vectors(z, labels, kind)
                state["last"] = len(vectors)
                for k, v in enumerate(vectors):
                    state["backwards"] = k + 1
                    # .backward, not autograd.grad: reentrant checkpointing rejects the latter; the only leaves
                    # that require grad here are the sources and the broadcast replacements
                    z.backward(v, retain_graph=k < len(vectors) - 1)
                    for n, t in subs.items():
                        if t.grad is not None:
                            sums[n] += t.grad.float().square().sum(0, keepdim=True)
                            t.grad = None
                del z, sources[:]
        finally:
            for m in ckpt:
                m.training = False
            for p, f in zip(frozen, flags):
                p.requires_grad_(f)
        return {m for m in self.targets if m not in fired}

    def add_sq_sums_(self, batch: dict[str, torch.Tensor], kind: str, num_labels: int, sums: dict) -> None:
        """Adds to ``sums`` the batch's sums of squared per-sample gradients (``kind`` ``"empirical"``/``"true"``)."""
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if not self.probed and labels.shape[0] >= 2:
            self._probe(inputs)
        while True:
            try:
                silent = self._pass(inputs, labels, kind, sums)
                break
            except _Unsupported as e:  # raised in the forward, before anything was accumulated
                self._drop_module(e.module_name, str(e))
        for mname in silent:  # no gradient reached its output: its weights may be used outside the module
            self._drop_module(mname, "no gradient reached its output")
        if self.leftover:
            rest = {n: self.params[n] for n in self.leftover}
            part = self.fallback(self.model, rest, batch, kind, num_labels)
            for n in rest:
                sums[n] += part[n]
