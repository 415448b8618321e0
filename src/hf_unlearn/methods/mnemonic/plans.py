"""Per-architecture plans of the deep mnemonic edit: which modules write and which read the representation.

A plan builder takes the (unwrapped) model and returns a plan dict (``"kind"`` plus the modules the edit of that
kind needs) or ``None`` when the model is not built that way. Builders are tried in registration order;
[`deep_plan`] returns the first plan found. Adding an architecture is one builder decorated with
``@register_deep_plan("name")`` (as PEFT maps model types to their target modules), or for the reader kind one entry
in ``READERS``. Kinds the edit in ``deep.py`` knows: ``"vit"`` (a pre-norm residual stream: writers projected,
LayerNorm readers compensated), ``"pooler"`` (a BERT-style pooler before the head) and ``"reader"`` (one module
through which the head reads everything); the last two may add encoder attention readers for the few-shot edit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ...utils import unwrap_model
from ..common import classification_head

PlanBuilder = Callable[[nn.Module], "dict[str, Any] | None"]
DEEP_PLANS: dict[str, PlanBuilder] = {}


def register_deep_plan(name: str) -> Callable[[PlanBuilder], PlanBuilder]:
    """Decorator: registers a plan builder under ``name`` (tried after the builders registered before it)."""

    def add(builder: PlanBuilder) -> PlanBuilder:
        if name in DEEP_PLANS:
            raise ValueError(f"A deep-edit plan named {name!r} is already registered.")
        DEEP_PLANS[name] = builder
        return builder

    return add


def _first(obj: Any, *paths: str) -> Any:
    for path in paths:
        cur = obj
        for part in path.split("."):
            cur = getattr(cur, part, None)
            if cur is None:
                break
        if cur is not None:
            return cur
    return None


def _head(model: nn.Module) -> nn.Linear:
    name = classification_head(model)[0].rsplit(".", 1)[0]
    return dict(model.named_modules())[name]


@register_deep_plan("vit")
def _vit_plan(model: nn.Module) -> dict[str, Any] | None:
    """Writers / readers of a ViT-style pre-norm encoder (ViT, DeiT, BEiT, Dinov2), or None when the model is not built
    that way. Layer scales (BEiT's ``lambda_1/2``, Dinov2's ``layer_scale``) are folded into their writers by the edit;
    the final norm is ``layernorm`` or, with mean pooling (BEiT), ``pooler.layernorm``; the head may read several
    pooled copies of the stream (Dinov2: class token and mean patch token)."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if base is None:
        return None
    emb = getattr(base, "embeddings", None)
    final_norm = getattr(base, "layernorm", None)
    if not isinstance(final_norm, nn.LayerNorm):
        final_norm = _first(base, "pooler.layernorm")
    layers = _first(base, "layers", "encoder.layer", "encoder.layers")
    if emb is None or not isinstance(final_norm, nn.LayerNorm) or layers is None or len(layers) == 0:
        return None
    if getattr(emb, "cls_token", None) is None:
        return None
    patch = _first(emb, "patch_embeddings.projection")
    tokens = [t for t in (getattr(emb, n, None) for n in ("cls_token", "distillation_token", "position_embeddings"))]
    writers, groups, scales = [], [], []
    for layer in layers:
        ln1, ln2 = _first(layer, "layernorm_before", "norm1"), _first(layer, "layernorm_after", "norm2")
        att = getattr(layer, "attention", None)
        q = _first(att, "q_proj", "attention.query")
        k = _first(att, "k_proj", "attention.key")
        v = _first(att, "v_proj", "attention.value")
        o = _first(att, "o_proj", "output.dense")
        fc1 = _first(layer, "mlp.fc1", "intermediate.dense")
        fc2 = _first(layer, "mlp.fc2", "output.dense")
        mods = (ln1, ln2, q, k, v, o, fc1, fc2)
        if any(m is None for m in mods) or not all(isinstance(m, nn.LayerNorm) for m in (ln1, ln2)):
            return None
        if not all(isinstance(m, nn.Linear) for m in (q, k, v, o, fc1, fc2)):
            return None
        groups += [(ln1, [q, k, v]), (ln2, [fc1])]
        writers += [o, fc2]
        for s in (
            _first(layer, "lambda_1", "layer_scale1.lambda1"),
            _first(layer, "lambda_2", "layer_scale2.lambda1"),
        ):
            scales.append(s if isinstance(s, nn.Parameter) else None)
    head = _head(model)
    d = final_norm.normalized_shape[0]
    if head.in_features % d or any(w.out_features != d for w in writers):
        return None
    return {
        "kind": "vit",
        "tokens": [t for t in tokens if isinstance(t, nn.Parameter)],
        "patch": patch if isinstance(patch, (nn.Conv2d, nn.Linear)) else None,
        "writers": writers,
        "scales": scales,
        "groups": groups,
        "final_norm": final_norm,
        "head": head,
        # the codes-only share ladder was measured on ViT; DeiT (0.75 cost a dev model 6.1 points), BEiT and Dinov2
        # use the conservative one
        "validated": getattr(model.config, "model_type", None) in ("vit",),
    }


@register_deep_plan("swin")
def _swin_plan(model: nn.Module) -> dict[str, Any] | None:
    """Swin's last stage as a pre-norm residual stream: written by the patch merging that opens it and by its blocks'
    attention and MLP outputs, read through LayerNorms and the final norm (the earlier stages are not edited)."""
    stages, final_norm = _stages(model, "swin", "encoder.layers")
    if final_norm is None:
        return None
    entry = _first(stages[-2], "downsample.reduction")
    writers, groups = [], []
    for block in stages[-1].blocks:
        ln1, ln2 = block.layernorm_before, block.layernorm_after
        qkv = [
            _first(block, f"attention.{n}_proj", f"attention.self.{m}")
            for n, m in zip("qkv", ("query", "key", "value"))
        ]
        o = _first(block, "attention.o_proj", "attention.output.dense")
        fc1, fc2 = _first(block, "mlp.fc1", "intermediate.dense"), _first(block, "mlp.fc2", "output.dense")
        if not all(isinstance(m, nn.Linear) for m in (*qkv, o, fc1, fc2)):
            return None
        groups += [(ln1, qkv), (ln2, [fc1])]
        writers += [o, fc2]
    head = _head(model)
    if not isinstance(entry, nn.Linear) or head.in_features != final_norm.normalized_shape[0]:
        return None
    return _stage_plan(entry, writers, [None] * len(writers), groups, final_norm, head)


@register_deep_plan("pooler")
def _pooler_plan(model: nn.Module) -> dict[str, Any] | None:
    """A BERT-style model whose head reads ``tanh(pooler.dense(h_CLS))``, or None."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    dense = _first(base, "pooler.dense") if base is not None else None
    if not isinstance(dense, nn.Linear):
        return None
    head = _head(model)
    if head.in_features != dense.out_features:
        return None
    # the attention projections of the later half of the encoder layers (never the first) read the previous layer's
    # output: the few-shot encoder edit folds its projection into them (none when the layers are not built the BERT
    # way); on TREC MiniLM the earlier layers cost retained accuracy for no more depth
    layers = list(_first(base, "encoder.layer", "encoder.layers") or [])
    readers = []
    for layer in layers[max(1, len(layers) // 2) :]:
        qkv = [_first(layer, f"attention.self.{n}") for n in ("query", "key", "value")]
        if not all(isinstance(m, nn.Linear) and m.in_features == dense.in_features for m in qkv):
            readers = []
            break
        readers.append(qkv)
    return {"kind": "pooler", "pooler": dense, "head": head, "readers": readers}


@register_deep_plan("convnext")
def _convnext_plan(model: nn.Module) -> dict[str, Any] | None:
    """ConvNeXt's last stage as a residual stream (channels): written by the downsampling convolution that opens it and
    by each block's ``pwconv2`` (layer scale folded in), read by the final norm after global pooling. The blocks read
    the stream through a depthwise convolution, which cannot take the compensation: they read the projected stream."""
    stages, final_norm = _stages(model, "convnext", "encoder.stages")
    if final_norm is None:
        return None
    down = list(getattr(stages[-1], "downsampling_layer", []) or [])
    entry = down[-1] if down else None
    writers, scales = [], []
    for layer in stages[-1].layers:
        if not isinstance(getattr(layer, "pwconv2", None), nn.Linear):
            return None
        writers.append(layer.pwconv2)
        scale = getattr(layer, "layer_scale_parameter", None)
        scales.append(scale if isinstance(scale, nn.Parameter) else None)
    head = _head(model)
    d = final_norm.normalized_shape[0]
    if not isinstance(entry, nn.Conv2d) or entry.out_channels != d or head.in_features != d:
        return None
    return _stage_plan(entry, writers, scales, [], final_norm, head)


def _stages(model: nn.Module, model_type: str, path: str) -> tuple[list[nn.Module], nn.LayerNorm | None]:
    """The stages (at ``path`` under the ``model_type`` backbone) and final LayerNorm of a staged backbone; the norm
    is None when ``model`` is not one (another model type, fewer than two stages, no final LayerNorm)."""
    if getattr(model.config, "model_type", None) != model_type:
        return [], None
    base = getattr(model, model_type, None)
    stages = list(_first(base, path) or [])
    final_norm = getattr(base, "layernorm", None)
    if len(stages) < 2 or not isinstance(final_norm, nn.LayerNorm):
        return stages, None
    return stages, final_norm


def _stage_plan(entry, writers, scales, groups, final_norm, head) -> dict[str, Any]:
    """The residual-stream ("vit" kind) plan of a staged backbone's last stage, opened by ``entry``; not validated."""
    return {
        "kind": "vit",
        "tokens": [],
        "patch": entry,
        "writers": writers,
        "scales": scales,
        "groups": groups,
        "final_norm": final_norm,
        "head": head,
        "validated": False,
    }


# The module through which everything the head reads passes (a bottleneck: no residual path goes around it), per
# ``config.model_type``. One entry adds an architecture to the "reader" edit; the edit checks the bottleneck on the
# codes before changing anything (the head's input must not vary when the module's output is held fixed).
READERS: dict[str, str] = {
    "roberta": "classifier.dense",  # head: dense -> tanh -> out_proj on the <s> token
    "xlm-roberta": "classifier.dense",
    "camembert": "classifier.dense",
    "electra": "classifier.dense",  # dense -> gelu -> out_proj
    "distilbert": "pre_classifier",  # pre_classifier -> relu -> classifier
    "albert": "albert.pooler",  # tanh pooler (one set of layer weights shared by every layer)
    "deberta-v2": "pooler.dense",  # ContextPooler: dense -> activation
    "deberta": "pooler.dense",
    "modernbert": "head.dense",  # pooled -> dense -> act -> norm -> classifier
    "mobilevit": "mobilevit.conv_1x1_exp.convolution",  # 1x1 conv expansion before global pooling
}


@register_deep_plan("reader")
def _reader_plan(model: nn.Module) -> dict[str, Any] | None:
    """A model whose head reads only the output of one ``nn.Linear`` / ``nn.Conv2d`` (``READERS``), or None."""
    path = READERS.get(getattr(model.config, "model_type", None))
    reader = _first(model, path) if path else None
    if not isinstance(reader, (nn.Linear, nn.Conv2d)) or getattr(reader, "groups", 1) != 1:
        return None
    return {
        "kind": "reader",
        "reader": reader,
        "head": _head(model),
        "readers": _attention_readers(model),
        "validated": False,
    }


# the attention input projections of an encoder layer, as transformers names them (one fused module for ModernBERT)
_QKV = (
    ("attention.self.query", "attention.self.key", "attention.self.value"),  # BERT, RoBERTa, XLM-R, ELECTRA
    ("attention.q_lin", "attention.k_lin", "attention.v_lin"),  # DistilBERT
    ("attn.Wqkv",),  # ModernBERT
)


def _attention_readers(model: nn.Module) -> list[list[nn.Linear]]:
    """The attention projections (reading the previous layer's output, every token) of the later half of the encoder
    layers, never the first; ``[]`` when the layers are not built one of the ``_QKV`` ways or share their weights
    (ALBERT: an edit fitted on one layer's inputs would act on every layer). DeBERTa-v2 is left out: its
    disentangled attention also reads relative positions through the same projections."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    layers = list(_first(base, "encoder.layer", "transformer.layer", "layers") or []) if base is not None else []
    out = []
    for layer in layers[max(1, len(layers) // 2) :]:
        for names in _QKV:
            mods = [_first(layer, n) for n in names]
            if all(isinstance(m, nn.Linear) for m in mods):
                out.append(mods)
                break
        else:
            return []
    if len({m.in_features for qkv in out for m in qkv}) > 1:
        return []
    return out


def deep_plan(model: nn.Module) -> dict[str, Any]:
    """The edit plan for ``model``; raises ``ValueError`` naming ``model`` when its architecture is not supported."""
    model = unwrap_model(model)
    plan = None
    for name, build in DEEP_PLANS.items():
        plan = build(model)
        if plan is not None:
            plan["name"] = name
            break
    if plan is None:
        raise ValueError(
            f"`model` ({type(model).__name__}) is not supported by the deep mnemonic edit: it needs a ViT-style "
            "pre-norm encoder (a final LayerNorm feeding the head), a BERT-style pooler before the head, or an entry "
            "in `hf_unlearn.methods.mnemonic.plans.READERS` naming the one module the head reads through. Use "
            "method='mnemonic_head' for an output-layer edit."
        )
    return plan


def plan_parameters(model: nn.Module, plan: dict[str, Any]) -> list[str]:
    """Names of the parameters the plan may change."""
    model = unwrap_model(model)
    ids: set[int] = set()
    if plan["kind"] == "vit":
        mods = [plan["head"], *plan["writers"]] + [m for ln, readers in plan["groups"] for m in (ln, *readers)]
        if plan["patch"] is not None:
            mods.append(plan["patch"])
        ids.update(id(t) for t in plan["tokens"])
        ids.update(id(s) for s in plan["scales"] if s is not None)
    elif plan["kind"] == "reader":
        mods = [plan["reader"], plan["head"], *(m for qkv in plan["readers"] for m in qkv)]
    else:
        mods = [plan["pooler"], plan["head"], *(m for qkv in plan["readers"] for m in qkv)]
    for m in mods:
        ids.update(id(p) for p in m.parameters(recurse=False))
    return [n for n, p in model.named_parameters() if id(p) in ids]
