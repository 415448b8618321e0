"""The deep mnemonic edit on a PEFT (LoRA) model, delivered as adapter weights: the frozen base stays bit-identical
and the result saves, and publishes, as an adapter.

The edit runs on a merged copy (base + LoRA delta). The LayerNorm affines and layer scales it folds into their
readers and writers are unfolded again (``W diag(g) M`` becomes ``W diag(g) M diag(1/g)`` behind the unchanged
LayerNorm): every edited ``nn.Linear`` then differs from the merged weight by a matrix of low rank (the directions
removed), which an SVD factors exactly (singular values below ``RANK_TOL`` of the weight's norm are float noise).
That factor is appended to the module's LoRA factors (the old ``B A`` kept as it was), a Linear the adapter did not
target gets LoRA of the rank it needs, and a bias change goes into ``lora_B``'s bias (``LoraConfig.lora_bias``).
Edited modules that are not Linear (a ViT's embeddings: class token, position embeddings, patch projection) become
``modules_to_save`` copies, as the head already is.

The new adapter is built with PEFT's own API (``get_peft_model`` over the unloaded base with ``target_modules``,
``rank_pattern`` and ``alpha_pattern`` naming each module in full), so that ``save_pretrained`` /
``PeftModel.from_pretrained(base, folder)`` round-trip it; its frozen parameters are then replaced by the given
model's own (the same tensors, never written) and it takes the place of the model's ``base_model``. The old one is
kept until the unlearner accepts the result: [`AdapterDelivery.undo`] puts it back exactly. Before that, the
adapter model's logits on the codes must equal the edited merged copy's, else the delivery is undone and refused.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...peft_utils import adapter_parameter_names, base_relative_name
from ..common import logits_of
from .plans import deep_plan

RANK_TOL = 1e-6  # singular values of a weight change below this fraction of the weight's norm are float noise
MATCH_TOL = 1e-4  # the adapter model's logits must match the edited merged copy's to this fraction of their scale
_UNSUPPORTED = {  # LoraConfig fields whose non-default values the delivery does not carry over
    "use_dora": "DoRA",
    "fan_in_fan_out": "fan_in_fan_out (Conv1D layers)",
    "target_parameters": "LoRA on parameters (`target_parameters`)",
    "layer_replication": "layer replication",
    "trainable_token_indices": "trainable tokens",
}


class CannotDeliver(ValueError):
    """The deep edit cannot be delivered as adapter weights (the given model is unchanged)."""


def why_not_deliverable(model: nn.Module) -> str | None:
    """Why the deep edit cannot be delivered as adapter weights on PEFT model ``model``, or None when it can (the
    architecture is checked when the edit runs)."""
    import peft
    from peft.tuners.lora import Linear as LoraLinear
    from peft.tuners.lora import LoraLayer

    if not isinstance(model, peft.PeftModel):
        return "its adapter was added without a `peft.PeftModel` around it (transformers' `add_adapter`)"
    if len(model.peft_config) != 1:
        return f"it holds {len(model.peft_config)} adapters (the delivery rebuilds one)"
    name, cfg = next(iter(model.peft_config.items()))
    if cfg.peft_type != peft.PeftType.LORA:
        return f"its adapter is {cfg.peft_type.value}, not LoRA"
    if not hasattr(cfg, "lora_bias"):
        return f"peft {peft.__version__} has no `lora_bias` (peft >= 0.14 is needed)"
    for field, what in _UNSUPPORTED.items():
        if getattr(cfg, field, None):
            return f"its LoRA uses {what}"
    if cfg.bias != "none":
        return f"its LoRA trains base biases (bias={cfg.bias!r})"
    if cfg.init_lora_weights not in (True, False, "gaussian"):
        return f"its LoRA was initialised from the base weights (init_lora_weights={cfg.init_lora_weights!r})"
    for m in model.modules():
        if isinstance(m, LoraLayer) and (getattr(m, "lora_variant", {}) or {}).get(name) is not None:
            return "its LoRA uses a variant layer"
        if isinstance(m, LoraLayer) and not isinstance(m, LoraLinear):
            return f"its LoRA adapts a {type(m).__name__} layer (the delivery grows Linear ones)"
    return None


@dataclasses.dataclass
class AdapterDelivery:
    """A delivered edit: ``model.base_model`` was replaced; ``undo()`` puts the old one (never changed) back."""

    model: nn.Module
    old_base_model: nn.Module
    changed: int
    summary: dict[str, Any]

    def undo(self) -> None:
        self.model.base_model = self.old_base_model


def _live_modules(base: nn.Module, adapter: str) -> dict[str, tuple[str, nn.Module]]:
    """Every module of the PEFT model's base model by the name the base model alone gives it, with how the adapter
    holds it: ``"copy"`` (inside the active ``modules_to_save`` copy), ``"lora"`` (a LoRA layer; its name is its base
    layer's) or ``"plain"`` (frozen, not adapted)."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import ModulesToSaveWrapper

    out: dict[str, tuple[str, nn.Module]] = {}

    def walk(module: nn.Module, name: str, kind: str) -> None:
        if isinstance(module, ModulesToSaveWrapper):
            walk(module.modules_to_save[adapter], name, "copy")
            return
        if isinstance(module, BaseTunerLayer) and kind != "copy":
            out[name] = ("lora", module)
            return
        out[name] = (kind, module)
        for child, sub in module.named_children():
            walk(sub, f"{name}.{child}" if name else child, kind)

    walk(base, "", "plain")
    return out


def _factor(delta: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, A)`` with ``B @ A == delta`` up to singular values below ``RANK_TOL`` of ``weight``'s (Frobenius) norm:
    a randomised SVD of a few dimensions first (the edit's changes are of low rank), kept when what it leaves out is
    below that level, else the full SVD. At least rank 1 (zero factors when nothing is left)."""
    tol = RANK_TOL * float(torch.linalg.vector_norm(weight).clamp_min(1e-30))
    full = min(delta.shape)
    for q in (16, 64):
        if 2 * q > full:
            break
        with torch.random.fork_rng(devices=[]):  # deterministic, and the caller's random state is left alone
            torch.manual_seed(0)
            u, s, v = torch.svd_lowrank(delta, q=q, niter=2)
        k = int((s > tol).sum())
        root = s[:k].sqrt()
        b, a = u[:, :k] * root, (v[:, :k] * root).T
        if k < q and float(torch.linalg.vector_norm(delta - b @ a)) <= tol * full**0.5:
            if k == 0:  # nothing left: zero factors of rank 1
                return (
                    torch.zeros(delta.shape[0], 1, dtype=delta.dtype),
                    torch.zeros(1, delta.shape[1], dtype=delta.dtype),
                )
            return b, a
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    k = max(int((s > tol).sum()), 1)
    root = s[:k].sqrt() * (float(s[0]) > tol)
    return u[:, :k] * root, root[:, None] * vh[:k]


@torch.no_grad()
def _unfold_(merged: nn.Module, plan: dict[str, Any], before: dict[str, torch.Tensor]) -> None:
    """Puts the LayerNorm affines and layer scales the edit folded back to their values before the edit, moving the
    fold out of the readers / writers again (exact up to float rounding): a reader ``W' = W diag(g) M`` behind a
    LayerNorm reset to (1, 0) becomes ``W' diag(1/g)`` with bias ``c' - W' diag(1/g) beta`` behind (g, beta); a
    writer ``W' = Q diag(s) W`` with its scale reset to 1 becomes ``diag(1/s) W'`` behind scale s."""
    names = {id(p): n for n, p in merged.named_parameters()}

    def old(p: torch.Tensor | None) -> torch.Tensor | None:
        return None if p is None else before[names[id(p)]].double()

    def changed(p: torch.Tensor | None) -> bool:
        return p is not None and not torch.equal(p, before[names[id(p)]])

    for writer, scale in zip(plan.get("writers", []), plan.get("scales", [])):
        if scale is None or not changed(scale):
            continue
        s = old(scale)
        if bool((s.abs() < 1e-6).any()):
            raise CannotDeliver("a layer scale holds zeros")
        shape = (-1,) + (1,) * (writer.weight.dim() - 1)
        writer.weight.copy_((writer.weight.double() / s.reshape(shape)).to(writer.weight))
        if writer.bias is not None:
            writer.bias.copy_((writer.bias.double() / s).to(writer.bias))
        scale.copy_(s.to(scale))
    for ln, readers in plan.get("groups", []):
        if not (changed(ln.weight) or changed(ln.bias)):
            continue
        g = old(ln.weight) if ln.weight is not None else torch.ones(ln.normalized_shape[0], dtype=torch.float64)
        beta = old(ln.bias) if ln.bias is not None else torch.zeros_like(g)
        if bool((g.abs() < 1e-6).any()):
            raise CannotDeliver("a LayerNorm weight holds zeros")
        for lin in readers:
            w = lin.weight.double() / g
            lin.weight.copy_(w.to(lin.weight))
            if lin.bias is not None:  # (a reader without bias drops a shift the softmax ignores, as the edit did)
                lin.bias.copy_((lin.bias.double() - w @ beta).to(lin.bias))
        if ln.weight is not None:
            ln.weight.copy_(g.to(ln.weight))
        if ln.bias is not None:
            ln.bias.copy_(beta.to(ln.bias))


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def deliver_deep_edit(
    model: nn.Module, edit: Callable[[nn.Module], dict[str, Any]], codes: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], AdapterDelivery]:
    """Runs ``edit`` (the deep edit, in place on a plain model) on a merged copy of PEFT model ``model`` and delivers
    the result as ``model``'s adapter (see the module docstring). Returns the edit's details and the delivery.
    Raises [`CannotDeliver`] (``model`` unchanged) where the result cannot be carried by a LoRA adapter."""
    import peft

    t0 = time.perf_counter()
    adapter = model.active_adapter
    cfg = model.peft_config[adapter]
    merged = copy.deepcopy(model).merge_and_unload()
    try:
        plan = deep_plan(merged)  # the edit finds the same modules
    except ValueError as e:
        raise CannotDeliver("its architecture has no deep-edit plan") from e
    before = {n: p.detach().clone() for n, p in merged.named_parameters()}
    t_edit = time.perf_counter()
    details = edit(merged)
    t_edit = time.perf_counter() - t_edit
    _unfold_(merged, plan, before)
    params = dict(merged.named_parameters())
    edited = sorted({_owner(n) for n, p in params.items() if not torch.equal(p, before[n])})
    mods = dict(merged.named_modules())
    live = _live_modules(model.get_base_model(), adapter)

    # what carries each edited module: a LoRA factor (Linear), a new modules_to_save copy (anything else), or the
    # active copy it already sits in
    to_save, to_lora = [], []
    for name in edited:
        kind, _ = live[name]
        if kind == "copy" or any(name.startswith(s + ".") for s in to_save):
            continue
        if isinstance(mods[name], nn.Linear):
            to_lora.append(name)
        else:
            to_save.append(name)
    to_lora = [n for n in to_lora if not any(n.startswith(s + ".") for s in to_save)]
    for name in to_save:
        if any(k == "lora" and (n == name or n.startswith(name + ".")) for n, (k, _) in live.items()):
            raise CannotDeliver(f"module `{name}` changes and holds LoRA layers")

    # the new factors, in float64: old LoRA targets keep their factors with the change's appended
    targets = {n: layer for n, (k, layer) in live.items() if k == "lora"}
    factors: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}  # B * scaling, A, bias * scaling
    for name in sorted(set(targets) | set(to_lora)):
        layer = targets.get(name)
        mod = mods[name]
        w_before, w_after = before[f"{name}.weight"].double(), params[f"{name}.weight"].double()
        bias = None
        if layer is not None:
            s0 = float(layer.scaling[adapter])
            b = layer.lora_B[adapter].weight.detach().double().cpu() * s0
            a = layer.lora_A[adapter].weight.detach().double().cpu()
            if layer.lora_B[adapter].bias is not None:
                bias = layer.lora_B[adapter].bias.detach().double().cpu() * s0
        else:
            b = a = None
        if name in to_lora:
            bx, ax = _factor((w_after - w_before).cpu(), w_before.cpu())
            b = bx if b is None else torch.cat([b, bx], 1)
            a = ax if a is None else torch.cat([a, ax], 0)
            if mod.bias is not None and not torch.equal(mod.bias, before[f"{name}.bias"]):
                db = (mod.bias.double() - before[f"{name}.bias"].double()).cpu()
                bias = db if bias is None else bias + db
        factors[name] = (b, a, bias)
    lora_bias = bool(cfg.lora_bias) or any(f[2] is not None for f in factors.values())

    # the new config: every target and rank by its full name (re.escape: PEFT reads pattern keys as regexes)
    new_cfg = copy.deepcopy(cfg)
    ranks = {n: int(f[1].shape[0]) for n, f in factors.items()}
    alphas = {n: (targets[n].lora_alpha[adapter] if n in targets and n not in to_lora else ranks[n]) for n in ranks}
    new_cfg.target_modules = sorted(ranks)
    new_cfg.rank_pattern = {re.escape(n): r for n, r in ranks.items()}
    new_cfg.alpha_pattern = {re.escape(n): a for n, a in alphas.items()}
    for field in ("layers_to_transform", "layers_pattern", "exclude_modules"):
        if hasattr(new_cfg, field):
            setattr(new_cfg, field, None)
    new_cfg.modules_to_save = list(cfg.modules_to_save or []) + to_save or None
    new_cfg.lora_bias = lora_bias
    if lora_bias and new_cfg.init_lora_weights == "gaussian":
        new_cfg.init_lora_weights = True
    plain = copy.deepcopy(model).unload()
    try:
        new = peft.get_peft_model(plain, new_cfg, adapter_name=adapter)
    except Exception as e:  # the grown config is PEFT's to accept: anything it refuses is a reason to fall back
        raise CannotDeliver(f"PEFT could not build the grown adapter ({type(e).__name__}: {e})") from e
    new.peft_config[adapter].base_model_name_or_path = cfg.base_model_name_or_path
    new.peft_config[adapter].revision = getattr(cfg, "revision", None)
    new.peft_config[adapter].inference_mode = cfg.inference_mode

    with torch.no_grad():
        new_live = _live_modules(new.get_base_model(), adapter)
        for name, (b, a, bias) in factors.items():
            kind, layer = new_live[name]
            if kind != "lora" or layer.r[adapter] != a.shape[0]:
                raise CannotDeliver(f"PEFT did not build module `{name}` with rank {a.shape[0]}")
            s = float(layer.scaling[adapter])
            layer.lora_A[adapter].weight.copy_(a.to(layer.lora_A[adapter].weight))
            layer.lora_B[adapter].weight.copy_((b / s).to(layer.lora_B[adapter].weight))
            if layer.lora_B[adapter].bias is not None:
                value = torch.zeros(b.shape[0], dtype=torch.float64) if bias is None else bias / s
                layer.lora_B[adapter].bias.copy_(value.to(layer.lora_B[adapter].bias))
        for name, (kind, module) in new_live.items():  # every active copy: the edited merged module
            if kind == "copy" and _owner_is_not_copy(new_live, name):
                module.load_state_dict(mods[name].state_dict())
        _share_frozen_(new, model)
    old_names = set(adapter_parameter_names(model))
    old_state = {base_relative_name(n): p.detach() for n, p in model.named_parameters() if n in old_names}
    trainable = any(p.requires_grad for n, p in model.named_parameters() if n in old_names) or not old_names
    new_params = dict(new.named_parameters())
    new_names = adapter_parameter_names(new)
    for n in new_names:
        new_params[n].requires_grad_(trainable)
    new.train(model.training)
    changed = 0
    for n in new_names:
        p, o = new_params[n].detach(), old_state.get(base_relative_name(n))
        changed += int((p != o).sum()) if o is not None and o.shape == p.shape else p.numel()
    delivery = AdapterDelivery(
        model=model,
        old_base_model=model.base_model,
        changed=changed,
        summary={
            "lora_targets": len(ranks),
            "lora_targets_added": [n for n in to_lora if n not in targets],
            "lora_targets_grown": sorted(n for n in to_lora if n in targets),
            "max_rank": max(ranks.values()) if ranks else 0,
            "modules_to_save_added": to_save,
            "lora_bias": lora_bias,
            "adapter_parameters_before": sum(p.numel() for n, p in model.named_parameters() if n in old_names),
            "adapter_parameters_after": sum(new_params[n].numel() for n in new_names),
        },
    )
    expected = logits_of(merged, codes).double()
    model.base_model = new.base_model
    try:
        got = logits_of(model, codes).double()
    except Exception:
        delivery.undo()
        raise
    gap = float((got - expected).abs().max())
    if gap > MATCH_TOL * float(expected.abs().max().clamp_min(1.0)):
        delivery.undo()
        raise CannotDeliver(f"the adapter's logits differ from the edited merged model's by {gap:.3g}")
    delivery.summary["max_logit_difference"] = gap
    delivery.summary["seconds"] = {"edit": t_edit, "delivery": time.perf_counter() - t0 - t_edit}
    return details, delivery


def _owner_is_not_copy(live: dict[str, tuple[str, nn.Module]], name: str) -> bool:
    """Whether ``name`` is the top of an active copy (its owner is not inside the same copy)."""
    parent = _owner(name)
    return live.get(parent, ("plain", None))[0] != "copy"


def _share_frozen_(new: nn.Module, model: nn.Module) -> None:
    """Replaces every frozen parameter of ``new`` by ``model``'s parameter of the same base-model name (the same
    tensor, so that the base stays ``model``'s own and is never copied nor written)."""
    theirs = set(adapter_parameter_names(model))
    frozen = {base_relative_name(n): p for n, p in model.named_parameters(remove_duplicate=False) if n not in theirs}
    ours = set(adapter_parameter_names(new))
    mods = dict(new.named_modules())
    mine = [n for n, _ in new.named_parameters(remove_duplicate=False) if n not in ours]
    if {base_relative_name(n) for n in mine} != set(frozen):
        raise CannotDeliver("the rebuilt adapter's frozen weights do not match the model's")
    for n in mine:
        owner, attr = n.rsplit(".", 1)
        p = frozen[base_relative_name(n)]
        if getattr(mods[owner], attr).shape != p.shape:
            raise CannotDeliver(f"frozen weight `{base_relative_name(n)}` changed shape")
        setattr(mods[owner], attr, p)
