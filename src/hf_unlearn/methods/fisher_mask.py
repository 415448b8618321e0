"""Fisher masking (arXiv 2310.05331): zero the weights most important to the forget data relative to the rest.

Score = ``F_f - F_r`` (a difference, not a ratio) from the Fisher on the whole forget set and on the remaining
training set (by default the authors' batched true Fisher). Linear weights get one score per element, convolution
weights one per kernel slice (mean over the k x k window); biases, norms and embeddings are unscored. All scores go
into one global ranking and the top ``ratio`` of the scored weights are set to zero. Fine-tuning on the remaining
data may follow (the callback does that when it runs at the start of training).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..utils import unwrap_model


def scored_parameters(model: nn.Module) -> dict[str, str]:
    """``{parameter name: "linear" | "conv"}`` for the weights Fisher masking scores."""
    out = {}
    for mname, module in unwrap_model(model).named_modules():
        if isinstance(module, nn.Linear):
            out[f"{mname}.weight" if mname else "weight"] = "linear"
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            out[f"{mname}.weight" if mname else "weight"] = "conv"
    return out


def mask_scores(f_forget: dict[str, torch.Tensor], f_retain: dict[str, torch.Tensor], kinds: dict[str, str]):
    """Per-parameter scores ``F_f - F_r``, reduced to kernel slices for convolutions."""
    scores = {}
    for n, kind in kinds.items():
        s = f_forget[n] - f_retain[n]
        if kind == "conv" and s.dim() > 2:
            s = s.flatten(2).mean(-1)  # (out, in): one score per kernel slice
        scores[n] = s
    return scores


@torch.no_grad()
def fisher_mask_(
    model: nn.Module,
    f_forget: dict[str, torch.Tensor],
    f_retain: dict[str, torch.Tensor],
    *,
    ratio: float,
) -> dict[str, Any]:
    """Zeroes the top ``ratio`` of scored weights in place; returns the threshold and counts."""
    model = unwrap_model(model)
    kinds = {n: k for n, k in scored_parameters(model).items() if n in f_forget}
    scores = mask_scores(f_forget, f_retain, kinds)
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = int(round(ratio * flat.numel()))
    params = dict(model.named_parameters())
    if k == 0:
        return {"threshold": None, "masked_scores": 0, "scored": int(flat.numel())}
    # one global ranking; ties at the threshold broken by position so exactly k scores are masked
    top = torch.topk(flat, k, sorted=False).indices
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    chosen[top] = True
    offset = 0
    for n, s in scores.items():
        m = chosen[offset : offset + s.numel()].view_as(s)
        offset += s.numel()
        p = params[n]
        if kinds[n] == "conv" and p.dim() > 2:
            m = m.view(*m.shape, *([1] * (p.dim() - 2))).expand_as(p)
        p.masked_fill_(m.to(p.device), 0.0)
    threshold = float(flat[top].min())
    return {"threshold": threshold, "masked_scores": k, "scored": int(flat.numel())}
