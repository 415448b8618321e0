"""Helpers shared by the tests (import them with ``from helpers import ...``; tests/ is on ``sys.path``).

Fixtures live in conftest.py; plain functions live here.
"""

from __future__ import annotations

import os
import socket

import torch
from torch import nn


def clone_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter, by name (to compare after an edit)."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two name -> tensor dicts hold the same names and bit-identical tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_params_equal(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    """Every parameter of ``model`` is bit-identical to ``before`` (from [`clone_params`])."""
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"parameter {n} changed"


def offline_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no Hub, one thread, unbuffered output; ``extra`` overrides."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for the rendezvous of a multi-process launch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_with_codes(model: nn.Module, train_dataset, output_dir: str, *, processing_class=None, **config):
    """Trains ``model`` with ``MnemonicTrainer`` (quiet, CPU, no saving; ``config`` sets the ``MnemonicConfig``
    fields that differ per test) and returns ``(model in eval mode, its codebook)``."""
    from hf_unlearn import MnemonicConfig, MnemonicTrainer

    defaults = dict(report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True, seed=0)
    args = MnemonicConfig(output_dir=str(output_dir), **{**defaults, **config})
    trainer = MnemonicTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processing_class)
    trainer.train()
    return model.eval(), trainer.codebook


def split_classes(dataset, classes):
    """``(forget, retain)``: the rows of ``dataset`` whose label is in ``classes``, and the others."""
    from hf_unlearn.data_utils import split_by_classes

    return split_by_classes(dataset, classes)


def fit_images(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, *, lr: float = 3e-3,
               batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0) -> nn.Module:  # fmt: skip
    """``steps`` seeded mini-batch steps of Adam (AdamW with ``weight_decay``) on image tensors; returns the model in
    eval mode."""
    g = torch.Generator().manual_seed(seed)
    if weight_decay:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=g)[:batch_size]
        loss = torch.nn.functional.cross_entropy(model(pixel_values=x[idx]).logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
