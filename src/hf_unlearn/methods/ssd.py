"""Selective Synaptic Dampening (Foster et al., AAAI 2024), a peer baseline.

Importance ``I`` = squared mini-batch gradient averaged over batches, on the full training set ``D`` and on the
forget set ``D_f``. Where ``I_Df > alpha * I_D``: ``w <- min(lambda * I_D / I_Df, 1) * w``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..utils import unwrap_model


@torch.no_grad()
def ssd_(
    model: nn.Module,
    importance_full: dict[str, torch.Tensor],
    importance_forget: dict[str, torch.Tensor],
    *,
    alpha: float = 10.0,
    lam: float = 1.0,
) -> dict[str, Any]:
    model = unwrap_model(model)
    params = dict(model.named_parameters())
    selected = 0
    for n, i_f in importance_forget.items():
        i_d = importance_full[n]
        sel = i_f > alpha * i_d
        if not sel.any():
            continue
        factor = torch.clamp(lam * i_d / i_f.clamp_min(1e-30), max=1.0)
        p = params[n]
        p.copy_(torch.where(sel.to(p.device), p * factor.to(p.device, p.dtype), p))
        selected += int(sel.sum())
    return {"selected": selected}
