"""The deep mnemonic edit in each of two CPU processes (run by tests/test_deep_forgetting.py under
``torchrun --nproc_per_node 2 deep_two_processes.py OUTDIR METHOD``); each rank writes ``OUTDIR/rank{r}.json`` with
hashes of its weights before and after the edit."""

from __future__ import annotations

import hashlib
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)

from hf_unlearn import FisherUnlearner, MnemonicCodebook, UnlearningConfig  # noqa: E402
from hf_unlearn.data import tiny_vit  # noqa: E402


def model_and_codes():
    """A tiny ViT whose head is set so that every code is classified as its class (no training needed)."""
    model = tiny_vit(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, seed=0).eval()
    book = MnemonicCodebook.for_model(model, seed=3)
    feats = []
    hook = model.classifier.register_forward_pre_hook(lambda m, a: feats.append(a[0].detach()))
    with torch.no_grad():
        model(pixel_values=book.inputs["pixel_values"])
        hook.remove()
        f = feats[0] - feats[0].mean(0)
        model.classifier.weight.copy_(5 * f / f.norm(dim=1, keepdim=True))
        model.classifier.bias.zero_()
    return model, book


def _digest(model) -> str:
    return hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()


def edited_weights(method: str, accelerator=None) -> dict[str, torch.Tensor]:
    model, book = model_and_codes()
    cfg = UnlearningConfig(method=method, forget_classes=[3], allow_incomplete=True)  # weights compared, not depth
    FisherUnlearner(cfg, accelerator).unlearn(model, codebook=book)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def main(outdir: str, method: str) -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    if acc.num_processes != 2:
        raise SystemExit(f"expected 2 processes, got {acc.num_processes}")
    model, _ = model_and_codes()
    before = _digest(model)
    after = hashlib.sha256(b"".join(t.numpy().tobytes() for t in edited_weights(method, acc).values())).hexdigest()
    with open(os.path.join(outdir, f"rank{acc.process_index}.json"), "w") as f:
        json.dump({"world_size": acc.num_processes, "before": before, "after": after}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
