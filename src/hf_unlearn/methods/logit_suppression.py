"""Logit suppression: the trivial baseline every forgetting method must beat.

Each forgotten class's output bias is lowered just enough that none of its codes (a codebook given) and none of its
forget samples (a ``forget_dataset`` given) is classified as that class any more: the bias moves by the smallest
gap between the class's logit and the best retained class's logit on that evidence, plus ``LOGIT_MARGIN``. Nothing
else changes, so whatever the model knows about the class is still there: the output only hides it. Measures that
look past the output (a linear probe on the features, relearning) tell the difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..utils import unwrap_model
from . import register_method
from .base import ForgetRequest, MethodResult, UnlearningMethod
from .common import classification_head, logits_of
from .configs import LOGIT_MARGIN, LogitSuppressionConfig  # noqa: F401  (LOGIT_MARGIN: its default)

if TYPE_CHECKING:
    from ..mnemonic.codebook import MnemonicCodebook
    from ..report import UnlearningReport

MAX_ROUNDS = 5  # models that post-process the head's output may need a second look


def head_bias(model: nn.Module) -> str:
    """Name of the output layer's bias (see [`classification_head`]); raises when the layer has none."""
    names = [n for n in classification_head(model) if n.rsplit(".", 1)[-1] == "bias"]
    if not names:
        raise ValueError("`model`'s output layer has no bias; logit_suppression edits only that bias.")
    return names[0]


def _forget_logits(
    model: nn.Module,
    forget: list[int],
    codebook: MnemonicCodebook | None,
    forget_dataset: Any,
    data_collator: Any,
    accelerator: Any,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """Logits ``(N, C)`` and labels ``(N,)`` of the forget classes' codes and forget samples, and the counts."""
    logits, labels, counts = [], [], {}
    if codebook is not None:
        inputs = codebook.as_inputs(forget, with_labels=True)
        logits.append(logits_of(model, inputs))
        labels.append(inputs["labels"])
        counts["codes"] = int(inputs["labels"].numel())
    if forget_dataset is not None:
        from ..evaluation import predict

        try:
            z, y = predict(model, forget_dataset, data_collator=data_collator, accelerator=accelerator)
        except ValueError as e:
            raise ValueError(str(e).replace("`dataset`", "`forget_dataset`")) from e
        keep = torch.isin(torch.as_tensor(y), torch.tensor(forget))
        logits.append(torch.as_tensor(z)[keep].float())
        labels.append(torch.as_tensor(y)[keep].long())
        counts["forget"] = int(keep.sum())
    return torch.cat(logits), torch.cat(labels), counts


class LogitSuppression(UnlearningMethod):
    """Lowers each forgotten class's output bias until none of its codes or forget samples wins (a baseline)."""

    name = "logit_suppression"
    uses_codebook = True
    uses_forget_data = True

    def target_parameters(self, model: nn.Module) -> list[str]:
        return [head_bias(model)]

    def validate(self, model: nn.Module, *, codebook: Any, forget_dataset: Any, retain_dataset: Any) -> None:
        if codebook is None and forget_dataset is None:
            raise ValueError(
                "method 'logit_suppression' needs `codebook` or `forget_dataset`: the codes or samples of the forget "
                "classes whose wins it suppresses."
            )
        head_bias(model)

    @torch.no_grad()
    def run(self, model: nn.Module, request: ForgetRequest) -> MethodResult:
        model = unwrap_model(model)
        bias = dict(model.named_parameters())[request.parameters[0]]
        shift = dict.fromkeys(request.forget_classes, 0.0)
        counts: dict[str, int] = {}
        rounds = 0
        while rounds < MAX_ROUNDS:
            rounds += 1
            logits, labels, counts = _forget_logits(
                model,
                request.forget_classes,
                request.codebook,
                request.forget_dataset,
                request.data_collator,
                self.accelerator,
            )
            if labels.numel() == 0:
                raise ValueError(
                    "`forget_dataset` holds no sample of the forget classes and no `codebook` was given: nothing "
                    "shows what to suppress."
                )
            best_retained = logits[:, request.retain_classes].max(1).values  # (N,)
            gap = logits.gather(1, labels[:, None])[:, 0] - best_retained  # (N,) > -margin: the class may still win
            moved = False
            for c in request.forget_classes:
                rows = labels == c
                if not rows.any():
                    continue
                needed = float(gap[rows].max()) + self.method_config.logit_margin
                if needed > 0:
                    bias[c] -= needed
                    shift[c] -= needed
                    moved = True
            if not moved:
                break
        if self.accelerator is not None and getattr(self.accelerator, "num_processes", 1) > 1:
            from accelerate.utils import broadcast

            bias.copy_(broadcast(bias.detach().clone(), from_process=0))  # bit-identical on every rank
        return MethodResult(
            details={"bias_shift": {str(c): s for c, s in shift.items()}, "rounds": rounds},
            hyperparameters={
                "margin": self.method_config.logit_margin,
                "evidence": sorted(counts),
                "target_parameters": request.parameters,
            },
            samples=counts,
            timings={},
        )

    @classmethod
    def describe(cls, report: UnlearningReport) -> str:
        targets = report.hyperparameters.get("target_parameters") or ["the output bias"]
        return (
            f"Only the output bias (`{targets[0]}`) changed: each forgotten class's bias was lowered just enough that "
            "none of its codes or forget samples is classified as that class. This is a baseline that hides the "
            "class in the output; the rest of the network still holds what it learned about the class."
        )


register_method("logit_suppression", LogitSuppressionConfig, LogitSuppression)
