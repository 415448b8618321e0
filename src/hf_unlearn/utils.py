"""Small helpers shared across hf_unlearn: input modality, class ids, logging."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Sequence

import torch
from torch import nn

logger = logging.getLogger("hf_unlearn")

IMAGE = "image"
TEXT = "text"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strips DDP / torch.compile wrappers so names and parameters are the model's own."""
    while True:
        if isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _forward_params(model: nn.Module) -> set[str]:
    return set(inspect.signature(unwrap_model(model).forward).parameters)


def detect_modality(model: nn.Module) -> str:
    """Returns ``"image"`` for models whose main input is ``pixel_values`` and ``"text"`` for ``input_ids``.

    Raises:
        ValueError: if the model takes neither (named ``model`` in the message).
    """
    main = getattr(unwrap_model(model), "main_input_name", None)
    params = _forward_params(model)
    if main == "pixel_values" or (main is None and "pixel_values" in params):
        return IMAGE
    if main == "input_ids" or (main is None and "input_ids" in params):
        return TEXT
    raise ValueError(
        f"`model` ({type(model).__name__}) has no known input modality: hf_unlearn supports models whose main input "
        f"is `pixel_values` (images, e.g. ViT) or `input_ids` (text, e.g. BERT); got main_input_name={main!r}."
    )


def num_labels_of(model: nn.Module) -> int:
    config = getattr(unwrap_model(model), "config", None)
    n = getattr(config, "num_labels", None)
    if not n or n < 2:
        raise ValueError("`model` must be a classifier whose `config.num_labels` is at least 2.")
    return int(n)


def id2label_of(model: nn.Module) -> dict[int, str]:
    config = unwrap_model(model).config
    id2label = getattr(config, "id2label", None) or {}
    n = num_labels_of(model)
    return {i: str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)}


def resolve_classes(
    classes: int | str | Iterable[int | str], id2label: dict[int, str], argument: str = "forget_classes"
) -> list[int]:
    """Maps class ids or label names to sorted unique ids, rejecting unknown ones with an error naming ``argument``."""
    if isinstance(classes, (int, str)):
        classes = [classes]
    label2id = {v: k for k, v in id2label.items()}
    out: list[int] = []
    for c in classes:
        if isinstance(c, bool):
            raise ValueError(f"`{argument}` holds a boolean ({c!r}); give class ids or label names.")
        if isinstance(c, str) and c in label2id:
            cid = label2id[c]
        elif isinstance(c, str) and c.lstrip("-").isdigit():
            cid = int(c)
        elif isinstance(c, (int,)) or (hasattr(c, "__index__") and not isinstance(c, str)):
            cid = int(c)
        else:
            raise ValueError(f"`{argument}` names an unknown class {c!r}; known labels: {sorted(label2id)}.")
        if cid not in id2label:
            raise ValueError(f"`{argument}` holds class id {cid}, outside the model's classes 0..{len(id2label) - 1}.")
        out.append(cid)
    out = sorted(set(out))
    if not out:
        raise ValueError(f"`{argument}` is empty; name at least one class to forget.")
    return out


def check_labels(labels: torch.Tensor, num_labels: int, argument: str = "labels") -> None:
    if labels.numel() == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_labels:
        raise ValueError(
            f"`{argument}` holds class ids in [{lo}, {hi}] but the model has `num_labels`={num_labels} (ids 0.."
            f"{num_labels - 1})."
        )


def as_list(x: Sequence | None) -> list:
    return [] if x is None else list(x)
