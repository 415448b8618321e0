"""Fisher forgetting (Golatkar et al., CVPR 2020), a peer baseline.

As in the authors' code: variance ``alpha * min(1 / (F_r + 1e-8), 1e3)`` (1e2 for the output layer), averaged over
each output unit, times 10 for the output layer and for 1-D tensors (norms, biases); ``F_r`` is the true Fisher on
the remaining data; the forgotten classes' rows of the output layer get mean 0 and variance 1e-4. The noise comes
from a seeded generator on the CPU, so every process draws the same.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..utils import unwrap_model


@torch.no_grad()
def fisher_noise_(
    model: nn.Module,
    f_retain: dict[str, torch.Tensor],
    *,
    alpha: float = 1e-6,
    forget: list[int],
    head: list[str],
    seed: int = 0,
) -> dict[str, Any]:
    model = unwrap_model(model)
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(int(seed))
    max_std = 0.0
    for n, f in f_retain.items():
        p = params[n]
        is_head = n in head
        var = (1.0 / (f.float().cpu() + 1e-8)).clamp(max=1e2 if is_head else 1e3) * alpha
        if var.dim() > 1:
            var = var.flatten(1).mean(1).view(-1, *([1] * (var.dim() - 1))).expand_as(var).clone()  # per output unit
        mu = p.detach().float().cpu().clone()
        if is_head or var.dim() == 1:
            var = var * 10
        if is_head:
            mu[forget] = 0.0
            var[forget] = 1e-4
        std = var.sqrt()
        max_std = max(max_std, float(std.max()))
        p.copy_((mu + std * torch.randn(mu.shape, generator=gen)).to(p.device, p.dtype))
    return {"max_noise_std": max_std}
