"""Selective Synaptic Dampening (Foster et al., AAAI 2024), a peer baseline.

Importance ``I`` = squared mini-batch gradient averaged over batches, on the full training set ``D`` and on the
forget set ``D_f``. Where ``I_Df > alpha * I_D``: ``w <- min(lambda * I_D / I_Df, 1) * w``. ``I_D`` is computed
over *shuffled* mini-batches of forget and retained samples together. This differs from the authors' code, whose
full-data pass is unshuffled (retained rows first, so its batches are pure): averaging pure-forget and pure-retain
batches caps ``I_Df / I_D`` and can make SSD select nothing on small data. The authors use batch 64 (our default
``fisher_batch_size`` is 16) and alpha 10 (5 for ViT); docs/methods.md lists the differences.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..fisher import dataset_size
from ..utils import unwrap_model
from . import register_method
from .base import ForgetRequest, MethodResult, UnlearningMethod, rows_sentence
from .configs import SSDConfig
from .fisher_mask import batch_counts

if TYPE_CHECKING:
    from ..report import UnlearningReport


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


class ShuffledUnion:
    """Rows of two data sets in one seeded random order (SSD's full-data pass), read lazily."""

    def __init__(self, first: Any, second: Any, seed: int = 0):
        self.parts = (first, second)
        self.n_first = dataset_size(first)
        n = self.n_first + dataset_size(second)
        self.order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = self.order[i]
        part, k = (self.parts[0], j) if j < self.n_first else (self.parts[1], j - self.n_first)
        if isinstance(part, dict):
            return {key: v[k] for key, v in part.items()}
        return part[k]


class SSD(UnlearningMethod):
    """Selective Synaptic Dampening: scale down weights far more important to the forget data than to all data."""

    name = "ssd"
    requires_forget_data = True
    requires_retain_data = True
    scopes = ("classes", "samples")
    fisher_passes = ("batch on forget", "batch on forget + retain, shuffled")

    def run(self, model: nn.Module, request: ForgetRequest) -> MethodResult:
        cfg, settings = self.config, self.method_config
        fkw = dict(kind="batch", parameters=request.parameters, data_collator=request.data_collator)
        t0 = time.perf_counter()
        importance_forget, n_forget = self.fisher(
            model, request.forget_dataset, max_samples=cfg.max_forget_samples, **fkw
        )
        full = ShuffledUnion(request.forget_dataset, request.retain_dataset, seed=cfg.seed)
        cap = None
        if cfg.max_forget_samples is not None or cfg.max_retain_samples is not None:
            cap = (cfg.max_forget_samples or len(full)) + (cfg.max_retain_samples or len(full))
        importance_full, n_full = self.fisher(model, full, max_samples=cap, **fkw)
        t1 = time.perf_counter()
        details = ssd_(model, importance_full, importance_forget, alpha=settings.ssd_alpha, lam=settings.ssd_lambda)
        return MethodResult(
            details=details,
            hyperparameters={"alpha": settings.ssd_alpha, "lambda": settings.ssd_lambda},
            samples=batch_counts({"forget": n_forget, "full": n_full}, "batch"),
            timings={"fisher": t1 - t0, "edit": time.perf_counter() - t1},
        )

    @classmethod
    def describe(cls, report: UnlearningReport) -> str:
        h = report.hyperparameters
        return (
            "Selective Synaptic Dampening: weights whose importance (squared mini-batch gradients) on the forgotten "
            f"data exceeded {h.get('alpha')} times their importance on the whole training data were scaled down "
            f"(by lambda={h.get('lambda')} times the ratio of the two); every other weight is unchanged."
            + rows_sentence(report)
        )


register_method("ssd", SSDConfig, SSD)
