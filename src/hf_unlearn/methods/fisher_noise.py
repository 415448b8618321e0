"""Fisher forgetting (Golatkar et al., CVPR 2020), a peer baseline.

As in the authors' code: variance ``alpha * min(1 / (F_r + 1e-8), 1e3)`` (1e2 for the output layer), averaged over
each output unit, times 10 for the output layer and for 1-D tensors (norms, biases); ``F_r`` is the true Fisher on
the remaining data; the forgotten classes' rows of the output layer get mean 0 and variance 1e-4. The noise comes
from a seeded generator on the CPU, so every process draws the same.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..utils import unwrap_model
from . import register_method
from .base import ForgetRequest, MethodResult, UnlearningMethod, rows_sentence
from .common import classification_head
from .configs import FisherNoiseConfig

if TYPE_CHECKING:
    from ..report import UnlearningReport


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


class FisherNoise(UnlearningMethod):
    """Fisher forgetting: noise scaled by the inverse Fisher of the retained data, forgotten output rows reset."""

    name = "fisher_noise"
    requires_forget_data = True
    requires_retain_data = True
    scopes = ("classes", "samples")
    fisher_passes = ("true on retain",)

    def run(self, model: nn.Module, request: ForgetRequest) -> MethodResult:
        cfg = self.config
        t0 = time.perf_counter()
        f_retain, n_retain = self.fisher(
            model,
            request.retain_dataset,
            kind="true",
            parameters=request.parameters,
            max_samples=cfg.max_retain_samples,
            data_collator=request.data_collator,
        )
        t1 = time.perf_counter()
        details = fisher_noise_(
            model,
            f_retain,
            alpha=self.method_config.noise_alpha,
            forget=request.forget_classes,
            head=classification_head(model),
            seed=cfg.seed,
        )
        return MethodResult(
            details=details,
            hyperparameters={"alpha": self.method_config.noise_alpha, "seed": cfg.seed},
            samples={"retain": n_retain},
            timings={"fisher": t1 - t0, "edit": time.perf_counter() - t1},
        )

    @classmethod
    def describe(cls, report: UnlearningReport) -> str:
        h = report.hyperparameters
        text = (
            "Fisher forgetting: Gaussian noise scaled by the inverse Fisher information of the retained data (alpha="
            f"{h.get('alpha')}, seed {h.get('seed')}) was added to the weights"
        )
        rows = rows_sentence(report)
        if rows:  # samples scope: no class is removed, so no output row is reset
            return text + "." + rows
        return text + ", and the forgotten classes' rows of the output layer were reset to small random values."


register_method("fisher_noise", FisherNoiseConfig, FisherNoise)
