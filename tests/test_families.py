"""Every architecture family of ``testing_utils.tiny_classifier``: the Fisher and the Fisher-based methods.

- the per-layer Fisher (and the vmap path) equal the per-sample loop reference on each of the 16 families, for the
  empirical and the true Fisher (DeBERTa-v2 reads a 4D attention mask as 0/1: the vmap path must not hand it the
  additive one; CNNs and MobileViT have no input embeddings);
- ``kind="true"`` over many chunks holds no more tensors after the last chunk than after the first (the per-layer
  pass once chained every chunk's autograd graph into the sums);
- ``fisher_mask``, ``ssd``, ``fisher_noise`` and ``logit_suppression`` either run on each family or refuse with a
  one-line ``ValueError`` before any weight changes.

Tiny models (hidden 32, two layers), a handful of random samples: the whole file runs in well under a minute.
"""

from __future__ import annotations

import gc

import pytest
import torch

from hf_unlearn import FisherUnlearner, UnlearningConfig
from hf_unlearn.fisher import compute_fisher
from hf_unlearn.testing_utils import FAMILIES, VISION_FAMILIES, tiny_classifier

NUM_LABELS = 3
METHODS = ("fisher_mask", "ssd", "fisher_noise", "logit_suppression")


def _inputs(family: str, labels: list[int], seed: int, pad_from: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of ``family`` with ``labels``; text rows from ``pad_from`` on end in padding of varied length."""
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    y = torch.tensor(labels)
    if family in VISION_FAMILIES:
        return {"pixel_values": torch.randn(n, 1, 8, 8, generator=g), "labels": y}
    length = 7
    ids = torch.randint(5, 128, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.long)
    for i in range(pad_from, n):
        k = 1 + (i % 3)
        ids[i, -k:] = 0
        mask[i, -k:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": y}


def _max_rel_err(f: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> tuple[float, str]:
    """Largest per-tensor relative error; a tensor whose reference is float noise (a key bias, whose gradient is
    zero in exact arithmetic) is measured against 1e-6 of the largest reference entry instead."""
    top = max(r.abs().max().item() for r in ref.values())
    errs = {n: ((f[n] - r).abs().max() / max(r.abs().max().item(), 1e-6 * top)).item() for n, r in ref.items()}
    worst = max(errs, key=errs.get)
    return errs[worst], worst


@pytest.mark.parametrize("family", FAMILIES)
def test_fisher_matches_loop_reference(family):
    model = tiny_classifier(family, num_labels=NUM_LABELS)
    # the first chunk of text has no padding: a model that misreads a ready 4D mask shows it even there
    data = _inputs(family, [0, 1, 2, 0, 1], seed=1, pad_from=3)
    for kind in ("empirical", "true"):
        ref = compute_fisher(model, data, kind=kind, implementation="loop", batch_size=3)
        assert max(r.max().item() for r in ref.values()) > 0
        for implementation in ("layers", "vmap"):
            f = compute_fisher(model, data, kind=kind, implementation=implementation, batch_size=3)
            assert set(f) == set(ref)
            err, worst = _max_rel_err(f, ref)
            assert err < 1e-4, f"{family} {kind} {implementation}: {worst} off by {err:.2e} relative"


@pytest.mark.parametrize("family", ["mobilevit", "resnet", "beit"])
def test_true_fisher_memory_flat_across_chunks(family, monkeypatch):
    """Live tensors after each chunk of the per-layer pass stay the same, and the sums carry no autograd graph."""
    from hf_unlearn import fisher_layers

    counts, graphs = [], []
    original = fisher_layers.LayerFisher.add_sq_sums_

    def counted(self, batch, kind, num_labels, sums):
        original(self, batch, kind, num_labels, sums)
        graphs.append(any(s.requires_grad for s in sums.values()))
        gc.collect()
        counts.append(sum(1 for o in gc.get_objects() if torch.is_tensor(o)))

    monkeypatch.setattr(fisher_layers.LayerFisher, "add_sq_sums_", counted)
    model = tiny_classifier(family, num_labels=NUM_LABELS)
    data = _inputs(family, [0, 1, 2, 1] * 5, seed=2)
    f = compute_fisher(model, data, kind="true", batch_size=4)
    assert len(counts) == 5
    assert not any(graphs), "the Fisher sums hold an autograd graph (each chunk's graph chained to the next)"
    assert counts[-1] <= counts[1], f"live tensors grow with every chunk: {counts}"
    assert not any(t.requires_grad for t in f.values())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", FAMILIES)
def test_method_runs_or_refuses_before_editing(family, method):
    model = tiny_classifier(family, num_labels=NUM_LABELS)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    forget = _inputs(family, [0] * 4, seed=3, pad_from=2)
    retain = _inputs(family, [1, 2] * 4, seed=4, pad_from=5)
    cfg = UnlearningConfig(method=method, forget_classes=[0], allow_incomplete=True, fisher_batch_size=4)
    try:
        report = FisherUnlearner(cfg).unlearn(model, forget_dataset=forget, retain_dataset=retain)
    except ValueError as e:  # a refusal: one line, and the model as it was
        assert "\n" not in str(e)
        assert all(torch.equal(before[n], p) for n, p in model.named_parameters()), "refused after editing"
        return
    after = dict(model.named_parameters())
    assert all(torch.isfinite(p).all() for p in after.values())
    changed = sum(int((after[n].detach() != v).sum()) for n, v in before.items())
    assert changed == report.num_parameters_changed
    if method != "ssd":  # ssd may select nothing on a random model; the others always edit something
        assert changed > 0 or report.details.get("verification") != "verified"


@pytest.mark.parametrize("rows", ["random", "relabelled"])
@pytest.mark.parametrize("family", FAMILIES)
def test_rows_recipe_runs_on_every_family(family, rows):
    """The rows recipe (``neggrad_plus``, the default in samples scope) on each family: random rows (the probe's
    targets, the held-out check before and after) and rows relabelled to one class (a backdoor's signature: the
    search for unnamed poison among the retained rows of that class, then chance targets, or the probe's when the
    model represents the rows like the class's others)."""
    if rows == "random":
        labels, forget = [0, 1, 2] * 8, [1, 5, 9, 14]
    else:  # ten rows relabelled to class 0 among 30: far beyond the class's share of the retained rows
        labels, forget = [0] * 10 + [0, 1, 2] * 7, list(range(10))
    model = tiny_classifier(family, num_labels=NUM_LABELS)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train = _inputs(family, labels, seed=5, pad_from=len(labels) // 2)
    held_out = _inputs(family, [0, 1, 2] * 3, seed=6, pad_from=4)
    cfg = UnlearningConfig(forget_scope="samples", allow_incomplete=True, method_config={"finetune_max_steps": 2})
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=train, forget_rows=forget, eval_dataset=held_out)
    assert report.details["steps"] == 2 and report.details["ascent_steps"] == 1
    if rows == "random":
        assert report.details["ascent_target"] == "probe" and report.details["poison_target"] is None
    else:  # the labels say poison; the features of an untrained model may say the rows are merely of class 0
        assert (report.details["poison_target"], report.details["poison_rejected"]) in ((0, None), (None, 0))
        assert report.details["ascent_target"] == ("chance" if report.details["poison_target"] == 0 else "probe")
    after = dict(model.named_parameters())
    assert all(torch.isfinite(p).all() for p in after.values())
    assert sum(int((after[n].detach() != v).sum()) for n, v in before.items()) > 0
    assert "heldout_accuracy" in report.metrics["after"]


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_check_keeps_the_output_layers_input_on_every_family(family, lora):
    """The samples check before an edit keeps each row's input to the output layer for the rows recipe's probe (so
    that it runs no pass of its own): on every family, and on a LoRA model, the same features as a separate pass."""
    from hf_unlearn.data_utils import DatasetReader
    from hf_unlearn.methods.retain_finetune import head_features
    from hf_unlearn.samples import samples_check

    model = tiny_classifier(family, num_labels=NUM_LABELS)
    if lora:
        peft = pytest.importorskip("peft")
        model = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules="all-linear"))
    forget, held_out = _inputs(family, [0, 1, 2] * 2, seed=5, pad_from=3), _inputs(family, [2, 1, 0] * 3, seed=6)
    features: dict = {}
    samples_check(model, forget, held_out, features=features)
    expected = head_features(
        model, [(DatasetReader(forget, model), list(range(6))), (DatasetReader(held_out, model), list(range(9)))], None
    )
    for key, (x, y) in zip(("forget", "heldout"), expected):
        assert torch.allclose(features[key][0], x, atol=1e-5), key
        assert torch.equal(features[key][1], y) and len(x) == len(y)


@pytest.mark.parametrize("family", ["vit", "convnext", "bert", "distilbert"])
def test_rows_recipe_trains_only_a_lora_adapter(family):
    """On a PEFT model the rows recipe trains the adapter's own weights; the base weights stay as they were."""
    peft = pytest.importorskip("peft")
    from hf_unlearn.peft_utils import adapter_parameter_names

    model = peft.get_peft_model(
        tiny_classifier(family, num_labels=NUM_LABELS), peft.LoraConfig(r=4, target_modules="all-linear")
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train = _inputs(family, [0, 1, 2] * 8, seed=5, pad_from=12)
    cfg = UnlearningConfig(forget_scope="samples", allow_incomplete=True, method_config={"finetune_max_steps": 2})
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=train, forget_rows=[1, 5, 9, 14])
    assert report.details["steps"] == 2
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and changed <= set(adapter_parameter_names(model))
