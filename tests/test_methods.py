"""The method registry: every built-in method gives the same weights as the edit functions called directly, a new
method plugs in with one class and one registry line, and logit_suppression edits nothing but the output bias."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import clone_params, split_classes, train_with_codes

from hf_unlearn import FisherUnlearner, UnlearningConfig, UnlearningReport
from hf_unlearn.fisher import compute_fisher
from hf_unlearn.methods import METHODS, MethodResult, UnlearningMethod, register_method
from hf_unlearn.methods.common import classification_head, logits_of
from hf_unlearn.methods.fisher_mask import fisher_mask_, scored_parameters
from hf_unlearn.methods.fisher_noise import fisher_noise_
from hf_unlearn.methods.mnemonic import mnemonic_paper_, mnemonic_search_
from hf_unlearn.methods.ssd import ShuffledUnion, ssd_


@pytest.fixture(scope="module")
def learned(digits, tmp_path_factory):
    """A tiny ViT trained briefly on digits with its codes (codes learned), its codebook, and the data."""
    from hf_unlearn.data import tiny_vit

    train, test = digits
    model, codebook = train_with_codes(
        tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0),
        train,
        tmp_path_factory.mktemp("methods"),
        num_train_epochs=10,
        learning_rate=5e-3,
        warmup_steps=0.1,
        per_device_train_batch_size=32,
        mnemonic_mix_ratio=0.2,
        logging_strategy="no",
    )
    return model, codebook, train, test


def _assert_same_weights(a, b):
    pa, pb = clone_params(a), clone_params(b)
    assert pa.keys() == pb.keys()
    for n in pa:
        assert torch.equal(pa[n], pb[n]), n


# ---------------------------------------------------------------- the registry


def test_registry_holds_the_built_in_methods():
    assert {"mnemonic", "fisher_mask", "ssd", "fisher_noise", "logit_suppression"} <= set(METHODS)
    report = UnlearningReport(
        method="x", forget_classes=[1], forget_labels=["1"], retain_classes=[0], retain_labels=["0"]
    )
    for name, cls in METHODS.items():
        assert issubclass(cls, UnlearningMethod) and cls.name == name
        assert isinstance(cls.describe(report), str) and cls.describe(report)  # card text, even from a bare report


def test_register_method_rejects_duplicates_and_non_methods():
    with pytest.raises(ValueError, match="already registered"):
        register_method(type("Again", (UnlearningMethod,), {"name": "ssd"}))
    with pytest.raises(TypeError, match="UnlearningMethod"):
        register_method(type("NotAMethod", (), {"name": "nope"}))
    with pytest.raises(ValueError, match="name"):
        register_method(type("Nameless", (UnlearningMethod,), {}))
    assert "nope" not in METHODS


# ---------------------------------------------------------------- same numbers as the edit functions


CASES = [
    ("mnemonic_head", dict(forget_classes=[3])),
    ("mnemonic_head", dict(forget_classes=[2, 5], mnemonic_direction="weight")),
    ("mnemonic", dict(forget_classes=[7], mnemonic_variant="paper")),
    ("fisher_mask", dict(forget_classes=[3], mask_ratio=0.04)),
    ("ssd", dict(forget_classes=[3], ssd_alpha=1.0, max_forget_samples=30, max_retain_samples=90, seed=2)),
    ("fisher_noise", dict(forget_classes=[1], seed=4)),
]


def _direct(method, model, cfg, book, forget_ds, retain_ds):
    """The edit as the functions in ``hf_unlearn.methods`` do it when called by hand, without the registry."""
    forget = [int(c) for c in cfg.forget_classes]
    fkw = dict(batch_size=cfg.fisher_batch_size, return_count=True)
    if method.startswith("mnemonic"):
        if cfg.mnemonic_variant != "paper":
            mnemonic_search_(
                model,
                book,
                forget,
                classification_head(model),
                margin=cfg.mnemonic_margin,
                retain_margin=cfg.mnemonic_retain_margin,
                direction=cfg.mnemonic_direction,
            )
        else:
            names = [n for n, _ in model.named_parameters()]
            mnemonic_paper_(model, book, forget, names, lambda1=cfg.lambda1, lambda2=cfg.lambda2)
    elif method == "fisher_mask":
        names = list(scored_parameters(model))
        f_forget, _ = compute_fisher(model, forget_ds, kind="batch_true", parameters=names, **fkw)
        f_retain, _ = compute_fisher(model, retain_ds, kind="batch_true", parameters=names, **fkw)
        fisher_mask_(model, f_forget, f_retain, ratio=cfg.mask_ratio)
    elif method == "ssd":
        i_forget, _ = compute_fisher(model, forget_ds, kind="batch", max_samples=cfg.max_forget_samples, **fkw)
        full = ShuffledUnion(forget_ds, retain_ds, seed=cfg.seed)
        cap = cfg.max_forget_samples + cfg.max_retain_samples
        i_full, _ = compute_fisher(model, full, kind="batch", max_samples=cap, **fkw)
        ssd_(model, i_full, i_forget, alpha=cfg.ssd_alpha, lam=cfg.ssd_lambda)
    else:
        f_retain, _ = compute_fisher(model, retain_ds, kind="true", **fkw)
        fisher_noise_(
            model, f_retain, alpha=cfg.noise_alpha, forget=forget, head=classification_head(model), seed=cfg.seed
        )


@pytest.mark.parametrize(("method", "kwargs"), CASES)
def test_registered_method_matches_the_edit_functions_bit_for_bit(learned, method, kwargs):
    base, book, train, _ = learned
    cfg = UnlearningConfig(method=method, allow_incomplete=True, **kwargs)
    forget_ds, retain_ds = split_classes(train.select(range(240)), [int(c) for c in cfg.forget_classes])
    via_registry, by_hand = copy.deepcopy(base), copy.deepcopy(base)
    data = {} if method.startswith("mnemonic") else dict(forget_dataset=forget_ds, retain_dataset=retain_ds)
    book_or_none = book if method.startswith("mnemonic") else None
    report = FisherUnlearner(cfg).unlearn(via_registry, codebook=book_or_none, **data)
    _direct(method, by_hand, cfg, book, forget_ds, retain_ds)
    _assert_same_weights(via_registry, by_hand)
    assert report.num_parameters_changed > 0 and report.method == method


# ---------------------------------------------------------------- adding a method


class ZeroForgetRows(UnlearningMethod):
    """A toy method: the forgotten classes' output rows become zero and their bias very negative."""

    name = "toy_zero_rows"
    requires_forget_data = True

    def target_parameters(self, model):
        return classification_head(model)

    def run(self, model, request):
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n in request.parameters:
                params[n][request.forget_classes] = 0.0 if n.endswith("weight") else -1e4
        return MethodResult(
            details={"rows": request.forget_classes}, hyperparameters={"bias": -1e4}, samples={}, timings={}
        )


def test_a_new_method_plugs_in_with_one_registry_line(learned):
    base, _, train, test = learned
    model = copy.deepcopy(base)
    before = clone_params(model)
    forget_ds, _ = split_classes(train.select(range(200)), [4])
    register_method(ZeroForgetRows)
    try:
        assert UnlearningConfig(method="toy_zero_rows").method == "toy_zero_rows"
        unlearner = FisherUnlearner(UnlearningConfig(method="toy_zero_rows", forget_classes=[4]))
        with pytest.raises(ValueError, match="forget_dataset"):  # its declared needs are enforced, nothing changed
            unlearner.unlearn(model)
        _assert_same_weights(model, base)
        report = unlearner.unlearn(model, forget_dataset=forget_ds, eval_dataset=test)
    finally:
        METHODS.pop("toy_zero_rows")
    assert report.method == "toy_zero_rows" and report.details["rows"] == [4]
    assert report.hyperparameters == {"bias": -1e4}
    assert report.metrics["after"]["forget_accuracy"] == 0.0
    after = clone_params(model)
    assert {n for n in after if not torch.equal(after[n], before[n])} == {"classifier.weight", "classifier.bias"}
    assert report.num_parameters_changed == sum(int((after[n] != before[n]).sum()) for n in after)
    assert ZeroForgetRows.describe(report)  # the base class's card sentence
    with pytest.raises(ValueError, match="method"):
        UnlearningConfig(method="toy_zero_rows")  # unregistered again


# ---------------------------------------------------------------- logit_suppression


def _forget_accuracy(model, inputs):
    return float((logits_of(model, inputs).argmax(-1) == inputs["labels"]).float().mean())


@pytest.mark.parametrize("evidence", ["codebook", "forget_dataset"])
def test_logit_suppression_moves_only_the_forgotten_biases(learned, evidence):
    base, book, train, _ = learned
    model = copy.deepcopy(base)
    before = clone_params(model)
    forget = [2, 6]
    forget_ds, _ = split_classes(train, forget)
    inputs = book.as_inputs(forget, with_labels=True) if evidence == "codebook" else forget_ds[:]
    assert _forget_accuracy(model, inputs) > 0.5
    kwargs = {"codebook": book} if evidence == "codebook" else {"forget_dataset": forget_ds}
    report = FisherUnlearner(UnlearningConfig(method="logit_suppression", forget_classes=forget)).unlearn(
        model, **kwargs
    )
    assert _forget_accuracy(model, inputs) == 0.0  # E_F 1.0 on the evidence it was given
    after = clone_params(model)
    for n in after:
        if n != "classifier.bias":
            assert torch.equal(after[n], before[n]), n
    moved = (after["classifier.bias"] != before["classifier.bias"]).nonzero().flatten().tolist()
    assert moved == forget and bool((after["classifier.bias"][forget] < before["classifier.bias"][forget]).all())
    assert report.num_parameters_changed == 2 and report.details["verification"] == "verified"
    assert report.hyperparameters["target_parameters"] == ["classifier.bias"]
    assert set(report.details["bias_shift"]) == {"2", "6"}
    # just enough: with half the shift, some evidence would win again
    half = copy.deepcopy(model)
    with torch.no_grad():
        for c in forget:
            half.classifier.bias[c] -= report.details["bias_shift"][str(c)] / 2
    assert _forget_accuracy(half, inputs) > 0.0


def test_logit_suppression_needs_codes_or_samples(learned):
    base, *_ = learned
    model = copy.deepcopy(base)
    with pytest.raises(ValueError, match="codebook.*forget_dataset"):
        FisherUnlearner(UnlearningConfig(method="logit_suppression", forget_classes=[1])).unlearn(model)
    _assert_same_weights(model, base)
