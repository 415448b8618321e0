"""compute_fisher: batched per-sample gradients equal the per-sample loop, kinds, restoration, errors, 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from hf_unlearn import compute_fisher
from hf_unlearn.fisher import KINDS


def _small(digits, n=24):
    train, _ = digits
    return train.select(range(n))


def _close(a, b, rtol=1e-4):
    # tensors whose true gradient is zero (e.g. attention key biases) hold ~1e-17 noise: absolute per-tensor scale
    for n in a:
        scale = max(a[n].abs().max().item(), b[n].abs().max().item(), 1e-12)
        assert (a[n] - b[n]).abs().max().item() <= rtol * scale + 1e-10, n


@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_vmap_matches_loop_vit(tiny_vit_model, digits, kind):
    data = _small(digits, 12)
    fast = compute_fisher(tiny_vit_model, data, kind=kind, batch_size=5)
    slow = compute_fisher(tiny_vit_model, data, kind=kind, batch_size=5, implementation="loop")
    assert set(fast) == {n for n, _ in tiny_vit_model.named_parameters()}
    _close(fast, slow)
    assert all((v >= 0).all() for v in fast.values())
    assert any(v.sum() > 0 for v in fast.values())


def test_vmap_matches_loop_bert_with_padding(tiny_bert, keyword_text, tiny_tokenizer):
    from transformers import DataCollatorWithPadding

    train, _ = keyword_text
    data = train.select(range(10)).remove_columns([c for c in train.column_names if c == "text"])
    collator = DataCollatorWithPadding(tiny_tokenizer)
    fast = compute_fisher(tiny_bert, data, data_collator=collator, batch_size=4)
    slow = compute_fisher(tiny_bert, data, data_collator=collator, batch_size=4, implementation="loop")
    _close(fast, slow)


def test_batch_kinds_and_codebook_inputs(tiny_vit_model, digits):
    from hf_unlearn import MnemonicCodebook

    book = MnemonicCodebook.for_model(tiny_vit_model)
    f = compute_fisher(tiny_vit_model, book.as_inputs(with_labels=True), kind="empirical")
    assert all(torch.isfinite(v).all() for v in f.values())
    data = _small(digits, 16)
    b = compute_fisher(tiny_vit_model, data, kind="batch", batch_size=8)
    # SSD importance: mean over batches of the squared batch-mean gradient, checked by hand
    params = dict(tiny_vit_model.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for s in (0, 8):
        rows = data[s : s + 8]
        tiny_vit_model.zero_grad()
        tiny_vit_model.eval()
        out = tiny_vit_model(pixel_values=rows["pixel_values"], labels=rows["labels"])
        out.loss.backward()
        for n, p in params.items():
            expected[n] += p.grad**2 / 2
    tiny_vit_model.zero_grad()
    _close(b, expected)
    bt = compute_fisher(tiny_vit_model, data, kind="batch_true", batch_size=8)
    assert all(torch.isfinite(v).all() for v in bt.values())


def test_parameters_subset_and_state_restored(tiny_vit_model, digits):
    data = _small(digits, 6)
    tiny_vit_model.train()
    tiny_vit_model.vit.embeddings.patch_embeddings.projection.weight.requires_grad_(False)
    flags = {n: p.requires_grad for n, p in tiny_vit_model.named_parameters()}
    f = compute_fisher(tiny_vit_model, data, parameters=["classifier.weight", "classifier.bias"])
    assert set(f) == {"classifier.weight", "classifier.bias"}
    assert tiny_vit_model.training
    assert flags == {n: p.requires_grad for n, p in tiny_vit_model.named_parameters()}
    assert all(p.grad is None for p in tiny_vit_model.parameters())
    # restored on error too
    bad = {"pixel_values": data[:]["pixel_values"], "labels": torch.full((6,), 99)}
    with pytest.raises(ValueError, match="dataset"):
        compute_fisher(tiny_vit_model, bad)
    assert tiny_vit_model.training
    assert flags == {n: p.requires_grad for n, p in tiny_vit_model.named_parameters()}


def test_bad_input(tiny_vit_model, digits):
    data = _small(digits, 4)
    with pytest.raises(ValueError, match="kind"):
        compute_fisher(tiny_vit_model, data, kind="nope")
    with pytest.raises(ValueError, match="dataset"):
        compute_fisher(tiny_vit_model, data.select([]))
    with pytest.raises(ValueError, match="parameters"):
        compute_fisher(tiny_vit_model, data, parameters=["no.such.weight"])
    x = data[:]
    x["pixel_values"][0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN"):
        compute_fisher(tiny_vit_model, {"pixel_values": x["pixel_values"], "labels": x["labels"]})
    assert set(KINDS) == {"empirical", "true", "batch_true", "batch"}


@pytest.mark.multiprocess
def test_two_processes_match_one(tmp_path):
    """torchrun with 2 gloo processes: same Fisher as one process, identical edited weights on both ranks."""
    script = os.path.join(os.path.dirname(__file__), "scripts", "fisher_two_processes.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    one = subprocess.run([sys.executable, script, str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(cmd + [script, str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    from safetensors.torch import load_file

    info = [json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world_size"] for i in info] == [2, 2]
    f1 = load_file(str(tmp_path / "one" / "fisher_rank0.safetensors"))
    for r in (0, 1):
        f2 = load_file(str(tmp_path / "two" / f"fisher_rank{r}.safetensors"))
        _close(f1, f2, rtol=1e-4)
    w0 = load_file(str(tmp_path / "two" / "weights_rank0.safetensors"))
    w1 = load_file(str(tmp_path / "two" / "weights_rank1.safetensors"))
    wone = load_file(str(tmp_path / "one" / "weights_rank0.safetensors"))
    for n in w0:
        assert torch.equal(w0[n], w1[n]), n
        assert torch.allclose(w0[n], wone[n], atol=1e-5), n
    assert info[0]["changed"] > 0
