"""The method registry: every built-in method's edit follows its formula (checked on hand values or on the weights it
changed, without re-running the method's own code), a new method plugs in with one class and one registry line, and
logit_suppression edits nothing but the output bias."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import clone_params, split_classes, train_with_codes

from hf_unlearn import FisherUnlearner, UnlearningConfig, UnlearningReport
from hf_unlearn.fisher import compute_fisher
from hf_unlearn.methods import METHODS, MethodResult, UnlearningMethod, register_method
from hf_unlearn.methods.common import classification_head, logits_of
from hf_unlearn.methods.fisher_noise import fisher_noise_
from hf_unlearn.methods.ssd import ssd_


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


# ---------------------------------------------------------------- each method's formula
# Each test states the method's defining formula (from its paper / docstring) and checks the edit against it, on hand
# values or on what the registered method did to the trained ViT; none calls the method's own helpers to compare.


def _unlearn(learned, **kwargs):
    """``(before, after, report, forget_ds, retain_ds)`` of the registered method on a copy of the trained ViT."""
    base, book, train, _ = learned
    cfg = UnlearningConfig(allow_incomplete=True, **kwargs)
    forget_ds, retain_ds = split_classes(train.select(range(240)), [int(c) for c in cfg.forget_classes])
    model = copy.deepcopy(base)
    report = FisherUnlearner(cfg).unlearn(model, codebook=book, forget_dataset=forget_ds, retain_dataset=retain_ds)
    assert report.method == kwargs["method"] and report.num_parameters_changed > 0
    return base, model, report, forget_ds, retain_ds


def test_fisher_mask_zeroes_exactly_the_top_ratio_of_forget_minus_retain_fisher(learned):
    base, model, report, forget_ds, retain_ds = _unlearn(
        learned, method="fisher_mask", forget_classes=[3], method_config={"mask_ratio": 0.04,
        "mask_fisher_kind": "batch_true"}, fisher_batch_size=16,
    )  # fmt: skip
    # the paper's score: F_forget - F_retain per linear weight, per kernel slice (mean over the window) of a conv
    weights = {
        f"{name}.weight": module
        for name, module in base.named_modules()
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))
    }
    fisher = dict(kind="batch_true", parameters=list(weights), batch_size=16)
    f_forget, f_retain = compute_fisher(base, forget_ds, **fisher), compute_fisher(base, retain_ds, **fisher)
    before, after = clone_params(base), clone_params(model)
    scores, zeroed = [], []
    for n, module in weights.items():
        score = f_forget[n] - f_retain[n]
        is_zero = (after[n] == 0) & (before[n] != 0)
        if isinstance(module, torch.nn.Conv2d):
            score, is_zero = score.flatten(2).mean(-1), is_zero.flatten(2).all(-1)  # (out, in)
        scores.append(score.flatten())
        zeroed.append(is_zero.flatten())
    scores, zeroed = torch.cat(scores), torch.cat(zeroed)
    k = round(0.04 * scores.numel())
    assert int(zeroed.sum()) == k == report.details["masked_scores"]
    assert scores[zeroed].min() >= scores[~zeroed].max()  # the k highest scores, one global ranking
    for n in before:  # nothing else moved: unscored parameters and unmasked weights are bit-identical
        kept = torch.ones_like(before[n], dtype=torch.bool) if n not in weights else after[n] != 0
        assert torch.equal(before[n][kept], after[n][kept]), n


def test_ssd_dampens_exactly_the_selected_weights_by_lambda_times_the_importance_ratio():
    # SSD: a weight is selected when its forget importance exceeds alpha x its full-data importance, and then
    # multiplied by min(lambda x I_full / I_forget, 1); the others stay as they are
    toy = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        toy.weight.copy_(torch.tensor([[2.0, -3.0]]))
    i_full, i_forget = {"weight": torch.tensor([[1.0, 1.0]])}, {"weight": torch.tensor([[20.0, 5.0]])}
    done = ssd_(toy, i_full, i_forget, alpha=10.0, lam=1.0)
    assert done["selected"] == 1
    assert torch.equal(toy.weight.detach(), torch.tensor([[2.0 * 1.0 / 20.0, -3.0]]))
    ssd_(toy, i_full, i_forget, alpha=10.0, lam=40.0)  # lambda x ratio above 1: selected but not amplified
    assert torch.equal(toy.weight.detach(), torch.tensor([[0.1, -3.0]]))


def test_ssd_through_the_registry_only_shrinks_weights_it_selected(learned):
    base, model, report, _, _ = _unlearn(
        learned,
        method="ssd",
        forget_classes=[3],
        method_config={"ssd_alpha": 1.0},
        max_forget_samples=30,
        max_retain_samples=90,
    )
    before, after = clone_params(base), clone_params(model)
    changed = 0
    for n in before:
        moved = after[n] != before[n]
        changed += int(moved.sum())
        factor = after[n][moved] / before[n][moved]
        assert ((factor >= 0) & (factor < 1)).all(), n  # dampened: same sign, smaller magnitude, never amplified
    assert changed == report.details["selected"] > 0


def test_fisher_noise_variance_is_inversely_proportional_to_the_retain_fisher():
    # Fisher forgetting: w <- w + N(0, alpha / F_retain), one variance per output unit; the forgotten classes' output
    # rows are reset to N(0, 1e-4)
    toy = torch.nn.ModuleDict({"body": torch.nn.Linear(4000, 2), "head": torch.nn.Linear(2, 3)})
    before = clone_params(toy)
    fisher = {
        "body.weight": torch.tensor([[1.0], [4.0]]).expand(2, 4000),  # unit 0: F = 1, unit 1: F = 4
        "head.weight": torch.ones(3, 2),
    }
    fisher_noise_(toy, fisher, alpha=1e-2, forget=[1], head=["head.weight"], seed=0)
    noise = toy["body"].weight.detach() - before["body.weight"]  # (2, 4000)
    std = noise.std(dim=1)
    assert std[0] == pytest.approx(0.1, rel=0.05) and std[1] == pytest.approx(0.05, rel=0.05)  # sqrt(alpha / F)
    assert noise.mean(dim=1).abs().max() < 4 * 0.1 / 4000**0.5  # zero-mean
    assert toy["head"].weight[1].abs().max() < 0.05  # the forgotten row: mean 0, std 0.01
    assert torch.equal(toy["body"].bias.detach(), before["body.bias"])  # parameters without a Fisher stay


def test_mnemonic_paper_moves_every_weight_one_way_by_at_most_lambda2(learned):
    # the paper's perturbation: w <- w + s * alpha * F_f / F_r with alpha = min(lambda1, lambda2 / max(F_f / F_r)),
    # one sign s for the whole edit; so every change has the sign s and no tensor moves by more than lambda2
    base, model, report, _, _ = _unlearn(
        learned,
        method="mnemonic",
        forget_classes=[7],
        method_config={"mnemonic_variant": "paper", "lambda1": 1e-3, "lambda2": 10.0},
    )
    sign = 1.0 if report.details["sign"].endswith("(+)") else -1.0
    before, after = clone_params(base), clone_params(model)
    for n in before:
        delta = after[n] - before[n]
        assert (delta * sign >= 0).all(), n
        assert delta.abs().max() <= 10.0 * (1 + 1e-6), n


@pytest.mark.parametrize(
    "kwargs", [dict(forget_classes=[3]), dict(forget_classes=[2, 5], method_config={"mnemonic_direction": "weight"})]
)
def test_mnemonic_head_stops_predicting_the_forgotten_codes_and_edits_only_the_head(learned, kwargs):
    base, model, report, _, _ = _unlearn(learned, method="mnemonic_head", **kwargs)
    book = learned[1]
    forget = torch.isin(book.class_ids, torch.tensor(kwargs["forget_classes"]))
    with torch.no_grad():
        pred_before = logits_of(base.eval(), book.inputs).argmax(-1)
        pred_after = logits_of(model.eval(), book.inputs).argmax(-1)
    assert not (pred_after[forget] == book.class_ids[forget]).any()  # no forgotten code keeps its class
    kept = ~forget & (pred_before == book.class_ids)
    assert (pred_after[kept] == book.class_ids[kept]).all()  # retained codes the model knew are still known
    before, after = clone_params(base), clone_params(model)
    head = set(classification_head(base))
    assert {n for n in before if not torch.equal(before[n], after[n])} <= head


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
