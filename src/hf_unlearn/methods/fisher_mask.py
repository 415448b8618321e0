"""Fisher masking (arXiv 2310.05331): zero the weights most important to the forget data relative to the rest.

Score = ``F_f - F_r`` (a difference, not a ratio) from the Fisher on the whole forget set and on the remaining
training set (by default the authors' batched true Fisher). Linear weights get one score per element, convolution
weights one per kernel slice (mean over the k x k window); biases, norms and embeddings are unscored. All scores go
into one global ranking and the top ``ratio`` of the scored weights are set to zero. Fine-tuning on the remaining
data may follow (the callback does that when it runs at the start of training).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..utils import unwrap_model
from . import register_method
from .base import ForgetRequest, MethodResult, UnlearningMethod, rows_sentence
from .common import match_parameters
from .configs import FisherMaskConfig

if TYPE_CHECKING:
    from ..report import UnlearningReport


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


def batch_counts(samples: dict[str, int], kind: str) -> dict[str, int]:
    """Names the counts of a Fisher pass for what they count: batches for the batch kinds, samples otherwise."""
    return {f"{k}_batches": v for k, v in samples.items()} if kind in ("batch", "batch_true") else samples


class FisherMask(UnlearningMethod):
    """Fisher masking: zero the scored weights most important to the forget data relative to the retained data."""

    name = "fisher_mask"
    requires_forget_data = True
    requires_retain_data = True
    scopes = ("classes", "samples")
    fisher_passes = ("mask_fisher_kind on forget", "mask_fisher_kind on retain")

    def target_parameters(self, model: nn.Module) -> list[str]:
        scored = scored_parameters(model)
        return [n for n in match_parameters(model, self.config.target_modules) if n in scored]

    def run(self, model: nn.Module, request: ForgetRequest) -> MethodResult:
        cfg, settings = self.config, self.method_config
        kind = settings.mask_fisher_kind
        fkw = dict(kind=kind, parameters=request.parameters, data_collator=request.data_collator)
        t0 = time.perf_counter()
        f_forget, n_forget = self.fisher(model, request.forget_dataset, max_samples=cfg.max_forget_samples, **fkw)
        f_retain, n_retain = self.fisher(model, request.retain_dataset, max_samples=cfg.max_retain_samples, **fkw)
        t1 = time.perf_counter()
        details = fisher_mask_(model, f_forget, f_retain, ratio=settings.mask_ratio)
        return MethodResult(
            details=details,
            hyperparameters={"ratio": settings.mask_ratio, "fisher_kind": kind},
            samples=batch_counts({"forget": n_forget, "retain": n_retain}, kind),
            timings={"fisher": t1 - t0, "edit": time.perf_counter() - t1},
        )

    @classmethod
    def describe(cls, report: UnlearningReport) -> str:
        h = report.hyperparameters
        ratio = h.get("ratio")
        share = f"{100 * ratio:g}%" if isinstance(ratio, (int, float)) else "a fraction"
        return (
            f"The {share} of linear and convolution weights scoring highest on forget-minus-retain Fisher information "
            f"({h.get('fisher_kind', 'batch_true')} Fisher) were set to zero; biases, norms and embeddings were not "
            "changed." + rows_sentence(report)
        )


register_method("fisher_mask", FisherMaskConfig, FisherMask)
