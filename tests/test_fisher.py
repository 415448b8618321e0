"""compute_fisher: the per-layer path equals vmap and the per-sample loop (ViT, BERT with padding, every kind,
with and without gradient checkpointing, half precision, layers it does not know), kinds, restoration, errors,
2 processes."""

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


def _text(train, n=10):
    return train.select(range(n)).remove_columns([c for c in train.column_names if c == "text"])


def _checkpointing(model, on, reentrant=False):
    if on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    return model


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_layers_match_vmap_and_loop_vit(tiny_vit_model, digits, kind, checkpointing):
    data = _small(digits, 12)
    model = _checkpointing(tiny_vit_model, checkpointing)
    layers = compute_fisher(model, data, kind=kind, batch_size=5)  # the default path
    vmap_f = compute_fisher(model, data, kind=kind, batch_size=5, implementation="vmap")
    loop = compute_fisher(model, data, kind=kind, batch_size=5, implementation="loop")
    assert set(layers) == {n for n, _ in tiny_vit_model.named_parameters()}
    _close(layers, vmap_f, rtol=1e-5)
    _close(layers, loop, rtol=1e-5)
    assert all(v.dtype == torch.float32 and (v >= 0).all() for v in layers.values())
    # every tensor gets signal, including cls_token / position_embeddings (replaced per sample) and the patch conv
    assert all(v.sum() > 0 for v in layers.values())


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_layers_match_vmap_and_loop_bert_with_padding(keyword_text, tiny_tokenizer, kind, checkpointing):
    from conftest import make_tiny_bert
    from transformers import DataCollatorWithPadding

    data = _text(keyword_text[0])
    collator = DataCollatorWithPadding(tiny_tokenizer)
    lengths = {len(x) for x in data["input_ids"]}
    assert len(lengths) > 2  # chunks hold padded samples
    model = _checkpointing(make_tiny_bert(), checkpointing)
    kw = dict(data_collator=collator, kind=kind, batch_size=4)
    layers = compute_fisher(model, data, **kw)
    _close(layers, compute_fisher(model, data, implementation="vmap", **kw), rtol=1e-5)
    _close(layers, compute_fisher(model, data, implementation="loop", **kw), rtol=1e-5)
    emb = layers["bert.embeddings.word_embeddings.weight"]
    assert emb[0].abs().max() == 0  # the padding row gets nothing
    used = set(torch.cat([torch.as_tensor(x) for x in data["input_ids"]]).tolist())
    assert (emb.abs().sum(1) > 0).nonzero().flatten().tolist() == sorted(used - {0})  # exactly the touched rows


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointing_active_and_counted_once(keyword_text, tiny_tokenizer, reentrant):
    """With gradient checkpointing the layers recompute during the backward; hooks still count each sample once."""
    from conftest import make_tiny_bert
    from transformers import DataCollatorWithPadding

    data = _text(keyword_text[0], 8)
    collator = DataCollatorWithPadding(tiny_tokenizer)
    plain = make_tiny_bert()
    ckpt = _checkpointing(make_tiny_bert(), True, reentrant)
    ckpt.eval()
    modes = [m.training for m in ckpt.modules()]
    calls = {}
    for name, m in (("plain", plain), ("ckpt", ckpt)):
        dense = m.bert.encoder.layer[0].intermediate.dense
        handle = dense.register_forward_hook(lambda *a, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
        for kind in ("empirical", "true"):
            calls[name, kind] = compute_fisher(m, data, data_collator=collator, batch_size=4, kind=kind)
        handle.remove()
    assert calls["ckpt"] > calls["plain"]  # the recompute ran: checkpointing was active during the Fisher
    for kind in ("empirical", "true"):
        _close(calls["plain", kind], calls["ckpt", kind], rtol=1e-6)
    assert ckpt.is_gradient_checkpointing and modes == [m.training for m in ckpt.modules()]  # modes restored


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_model_accumulates_in_fp32(digits, dtype):
    from hf_unlearn.data import tiny_vit

    data = _small(digits, 10)
    ref = compute_fisher(tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0), data)
    half = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0).to(dtype)
    batch = data[:]
    half_data = {"pixel_values": batch["pixel_values"].to(dtype), "labels": batch["labels"]}
    f = compute_fisher(half, half_data, batch_size=4)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in f.values())
    assert all(p.dtype == dtype for p in half.parameters())  # the model itself is left in its dtype
    _close(f, ref, rtol=0.1)  # half-precision activations, fp32 sums: within 10% of the tensor's scale


class _OddModel(torch.nn.Module):
    """Layers the per-layer rules cannot take as they are: a Linear called twice, an elementwise scale, a
    broadcast token, nn.MultiheadAttention (whose out_proj weight is used outside its module)."""

    def __init__(self):
        super().__init__()
        from types import SimpleNamespace

        torch.manual_seed(0)
        self.config = SimpleNamespace(num_labels=3)
        self.inp = torch.nn.Linear(4, 8)
        self.shared = torch.nn.Linear(8, 8)
        self.scale = torch.nn.Parameter(torch.randn(8))
        self.tok = torch.nn.Parameter(torch.randn(1, 1, 8))
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):  # x (B, T, 4)
        h = self.inp(x) + self.tok
        h = torch.tanh(self.shared(torch.tanh(self.shared(h)))) * self.scale
        h = self.norm(h + self.attn(h, h, h, need_weights=False)[0])
        return self.head(h.mean(1))  # (B, 3)


@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_layers_fallback_for_layers_it_does_not_know(kind):
    from hf_unlearn.fisher import _per_sample_sq_sums
    from hf_unlearn.fisher_layers import LayerFisher

    model = _OddModel()
    g = torch.Generator().manual_seed(1)
    data = {"x": torch.randn(9, 5, 4, generator=g), "labels": torch.randint(0, 3, (9,), generator=g)}
    layers = compute_fisher(model, data, kind=kind, batch_size=4, layer_memory_mb=1e-4)  # one sample per slice
    loop = compute_fisher(model, data, kind=kind, batch_size=4, implementation="loop")
    _close(layers, loop, rtol=1e-5)
    # which path took what
    lf = LayerFisher(model, dict(model.named_parameters()), fallback=_per_sample_sq_sums)
    sums = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    lf.add_sq_sums_({k: v[:4] for k, v in data.items()}, kind, 3, sums)
    assert lf.broadcast == ["tok"]
    assert {"shared.weight", "scale", "attn.in_proj_weight", "attn.out_proj.weight"} <= set(lf.leftover)
    assert {"inp", "norm", "head"} <= set(lf.targets) and "shared" not in lf.targets


@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_layers_on_a_lora_vit(tiny_vit_model, digits, kind):
    """PEFT LoRA: the adapters' Linears and the head copy in modules_to_save are hooked like any Linear."""
    peft = pytest.importorskip("peft")
    config = peft.LoraConfig(
        r=4, target_modules=["q_proj", "v_proj", "fc1", "fc2"], modules_to_save=["classifier"], init_lora_weights=False
    )
    model = peft.get_peft_model(tiny_vit_model, config)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    data = _small(digits, 10)
    layers = compute_fisher(model, data, parameters=names, kind=kind, batch_size=4)
    _close(layers, compute_fisher(model, data, parameters=names, kind=kind, batch_size=4, implementation="loop"), 1e-5)
    assert set(layers) == set(names) and all(v.sum() > 0 for v in layers.values())


def test_squared_per_sample_products_both_paths():
    """Large layers (one sample at a time through a buffer) and small ones (slices under the budget) agree."""
    from hf_unlearn.fisher_layers import _add_sq_products_

    g = torch.Generator().manual_seed(0)
    for out_f, in_f, budget in ((300, 260, 2**28), (20, 30, 20 * 30 * 4 * 2)):  # 78000 >= 2**16 elements; 2 per slice
        a, b = torch.randn(5, out_f, 7, generator=g), torch.randn(5, 7, in_f, generator=g)
        acc = torch.ones(out_f, in_f)
        _add_sq_products_(acc, a, b, budget)
        expected = 1 + sum((a[n] @ b[n]) ** 2 for n in range(5))
        torch.testing.assert_close(acc, expected, rtol=1e-5, atol=1e-5)


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
    # the authors' batched true Fisher: per batch and class y, mean p(y) x squared gradient of the batch-mean loss at y
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for s in (0, 8):
        rows = data[s : s + 8]
        logp = torch.log_softmax(tiny_vit_model(pixel_values=rows["pixel_values"]).logits, -1)
        for y in range(10):
            gs = torch.autograd.grad(-logp[:, y].mean(), list(params.values()), retain_graph=True, allow_unused=True)
            for (n, _), g in zip(params.items(), gs):
                if g is not None:
                    expected[n] += logp[:, y].exp().mean().detach() * g**2 / 2
    _close(bt, expected)
    assert all(p.grad is None for p in tiny_vit_model.parameters())  # gradients squared and freed as they came


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
    with pytest.raises(ValueError, match="implementation"):
        compute_fisher(tiny_vit_model, data, implementation="nope")
    with pytest.raises(ValueError, match="layer_memory_mb"):
        compute_fisher(tiny_vit_model, data, layer_memory_mb=0)
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
    # the per-layer path (default) and the vmap path agree across processes, for both per-sample kinds
    for impl, kind in (("vmap", "empirical"), ("layers", "true")):
        one_f = load_file(str(tmp_path / "one" / f"fisher_{impl}_{kind}_rank0.safetensors"))
        for r in (0, 1):
            _close(one_f, load_file(str(tmp_path / "two" / f"fisher_{impl}_{kind}_rank{r}.safetensors")), rtol=1e-4)
    _close(f1, load_file(str(tmp_path / "two" / "fisher_vmap_empirical_rank1.safetensors")), rtol=1e-4)
    w0 = load_file(str(tmp_path / "two" / "weights_rank0.safetensors"))
    w1 = load_file(str(tmp_path / "two" / "weights_rank1.safetensors"))
    wone = load_file(str(tmp_path / "one" / "weights_rank0.safetensors"))
    for n in w0:
        assert torch.equal(w0[n], w1[n]), n
        assert torch.allclose(w0[n], wone[n], atol=1e-5), n
    assert info[0]["changed"] > 0
