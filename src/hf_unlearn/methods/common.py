"""Helpers shared by the unlearning methods: the classification head, code margins, counting changes."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import torch
from accelerate.utils import send_to_device
from torch import nn

from ..data_utils import logits_from_outputs
from ..peft_utils import adapter_internal_modules, base_relative_name, is_peft_model
from ..utils import unwrap_model


def output_layer_name(model: nn.Module) -> str | None:
    """Name of the output layer: the last ``nn.Linear`` with ``config.num_labels`` outputs, never one inside a PEFT
    adapter (``lora_B`` has ``num_labels`` outputs too, and so has a head's frozen original); ``None`` when there is
    none. The one head finder of the library (the methods and the audit use it)."""
    model = unwrap_model(model)
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    inside_adapters = adapter_internal_modules(model)  # lora_B, frozen originals (none on a plain model)
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == num_labels and name not in inside_adapters:
            last = name
    return last


def classification_head(model: nn.Module) -> list[str]:
    """Names of the parameters of the output layer (see [`output_layer_name`])."""
    model = unwrap_model(model)
    last = output_layer_name(model)
    if last is None:
        raise ValueError("`model` has no output layer with `num_labels` outputs; set `target_modules` explicitly.")
    return [f"{last}.{n}" for n, _ in dict(model.named_modules())[last].named_parameters()]


def match_parameters(model: nn.Module, patterns: Iterable[str] | None) -> list[str]:
    """Parameter names matching any of ``patterns`` (module or parameter names, ``fnmatch`` wildcards allowed).

    On a PEFT model a pattern also matches the names the base model uses (``classifier`` matches the head's
    trainable copy ``base_model.model.classifier.modules_to_save.default.weight``)."""
    model = unwrap_model(model)
    names = [n for n, _ in model.named_parameters()]
    if patterns is None:
        return names
    patterns = list(patterns)
    peft = is_peft_model(model)

    def hit(n: str) -> bool:
        return any(
            n == p or n.startswith(p + ".") or fnmatch.fnmatch(n, p) or fnmatch.fnmatch(n, p + ".*") for p in patterns
        )

    out = [n for n in names if hit(n) or (peft and hit(base_relative_name(n)))]
    if not out:
        raise ValueError(f"`target_modules` {patterns} match no parameter of the model.")
    return out


@torch.no_grad()
def logits_of(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    was = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        out = model(**send_to_device({k: v for k, v in inputs.items() if k != "labels"}, device))
        return logits_from_outputs(out).float().cpu()
    finally:
        model.train(was)


def margins(logits: torch.Tensor, labels: torch.Tensor, rivals: list[int] | None = None) -> torch.Tensor:
    """Logit of the true class minus the largest rival logit, per row (> 0: classified correctly among rivals).

    ``rivals`` restricts the competing classes (default: every other class).
    """
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.clone()
    if rivals is not None:
        keep = torch.zeros(logits.shape[1], dtype=torch.bool)
        keep[rivals] = True
        other[:, ~keep] = float("-inf")
    other.scatter_(1, labels[:, None], float("-inf"))
    return true - other.max(1).values


def snapshot(model: nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    params = dict(unwrap_model(model).named_parameters())
    return {n: params[n].detach().clone() for n in names}


@torch.no_grad()
def restore_(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    params = dict(unwrap_model(model).named_parameters())
    for n, v in saved.items():
        params[n].copy_(v)


def count_changed(model: nn.Module, saved: dict[str, torch.Tensor]) -> int:
    params = dict(unwrap_model(model).named_parameters())
    return int(sum((params[n].detach() != v).sum().item() for n, v in saved.items()))
