"""The deep mnemonic edit (methods/mnemonic/deep.py): forgetting reaches the features, not only the output layer.

Tiny ViT (digits) and tiny BERT (keyword task) trained with their codes; depth read with ``audit_forgetting``
(linear probe and prototype head-rewrite attack on the head's input features).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import clone_params, same_tensors, train_with_codes

from hf_unlearn import FisherUnlearner, UnlearningConfig
from hf_unlearn.audit import audit_forgetting
from hf_unlearn.methods import METHODS
from hf_unlearn.methods.mnemonic import MAX_FORGET_PER_CLASS, deep_plan

REPO = Path(__file__).resolve().parents[1]
DEEP = "mnemonic_deep" if "mnemonic_head" not in METHODS else "mnemonic"
HEAD = "mnemonic_head" if "mnemonic_head" in METHODS else "mnemonic"


def _subset(ds, keep):
    return ds.select([i for i, y in enumerate(ds.with_format(None)["labels"]) if keep(int(y))])


@pytest.fixture(scope="module")
def vit_task(digits, tmp_path_factory):
    from hf_unlearn.data import tiny_vit

    torch.set_num_threads(1)
    train, test = digits
    model, codebook = train_with_codes(
        tiny_vit(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, seed=0),
        train,
        tmp_path_factory.mktemp("deep_vit"),
        num_train_epochs=10,
        learning_rate=3e-3,
        warmup_steps=0.1,
        per_device_train_batch_size=32,
        mnemonic_mix_ratio=0.2,
        logging_strategy="no",
    )
    return model, codebook, train, test


BERT_RECIPE = dict(
    num_train_epochs=15,
    learning_rate=3e-3,
    warmup_steps=0.1,
    per_device_train_batch_size=32,
    mnemonic_mix_ratio=0.2,
    mnemonic_text_length=12,
    logging_strategy="no",
)


def _bert_task(model, keyword_text, tiny_tokenizer, output_dir):
    from transformers import DataCollatorWithPadding

    torch.set_num_threads(1)
    train, test = keyword_text
    train, test = train.remove_columns(["text"]), test.remove_columns(["text"])
    model, codebook = train_with_codes(model, train, output_dir, processing_class=tiny_tokenizer, **BERT_RECIPE)
    return model, codebook, train, test, DataCollatorWithPadding(tiny_tokenizer)


@pytest.fixture(scope="module")
def bert_task(keyword_text, tiny_tokenizer, tmp_path_factory):
    from conftest import make_tiny_bert

    return _bert_task(make_tiny_bert(), keyword_text, tiny_tokenizer, tmp_path_factory.mktemp("deep_bert"))


@pytest.fixture(scope="module")
def bert2_task(keyword_text, tiny_tokenizer, tmp_path_factory):
    """The tiny BERT of ``bert_task`` with two encoder layers (the encoder edit needs a layer after the first)."""
    from conftest import make_tiny_bert
    from transformers import BertForSequenceClassification

    config = make_tiny_bert().config
    config.num_hidden_layers = 2
    torch.manual_seed(0)
    return _bert_task(
        BertForSequenceClassification(config), keyword_text, tiny_tokenizer, tmp_path_factory.mktemp("deep_bert2")
    )


def _audit(model, forget, train, test, collator=None):
    return audit_forgetting(
        model,
        forget_classes=forget,
        train_dataset=train,
        eval_dataset=test,
        data_collator=collator,
        relearn_steps=(),
        show_progress=False,
    ).metrics


def _forget(model, codebook, method, forget, **data):
    edited = copy.deepcopy(model)
    report = FisherUnlearner(UnlearningConfig(method=method, forget_classes=forget)).unlearn(
        edited, codebook=codebook, **data
    )
    return edited, report


def test_deep_edit_reaches_the_features_of_a_vit(vit_task):
    model, book, train, test = vit_task
    forget = [3]
    before = _audit(model, forget, train, test)
    deep, report = _forget(model, book, DEEP, forget)
    after = _audit(deep, forget, train, test)
    head, _ = _forget(model, book, HEAD, forget)
    head_only = _audit(head, forget, train, test)
    assert report.details["verification"] == "verified" and report.details["architecture"] == "vit"
    assert after["forget_error"] == 1.0
    assert after["retain_accuracy"] >= before["retain_accuracy"] - 0.03
    # the class leaves the features: prototype attack and probe read far less than on the original
    assert before["prototype_forget_accuracy"] >= 0.8
    assert after["prototype_forget_accuracy"] <= before["prototype_forget_accuracy"] - 0.4
    assert after["probe_forget_accuracy"] < before["probe_forget_accuracy"]
    # the output-only edit leaves the features as they were: same probe; the prototype attack (which rewrites the
    # forget row and reuses the others) reads about what it read on the original
    assert head_only["forget_error"] >= 0.95
    assert head_only["probe_forget_accuracy"] == before["probe_forget_accuracy"]
    assert head_only["prototype_forget_accuracy"] >= before["prototype_forget_accuracy"] - 0.15
    assert after["prototype_forget_accuracy"] <= head_only["prototype_forget_accuracy"] - 0.3


def test_deep_edit_on_bert_with_a_pooler(bert_task):
    model, book, train, test, collator = bert_task
    forget = [1]
    before = _audit(model, forget, train, test, collator)
    deep, report = _forget(model, book, DEEP, forget)
    after = _audit(deep, forget, train, test, collator)
    head, _ = _forget(model, book, HEAD, forget)
    head_only = _audit(head, forget, train, test, collator)
    assert report.details["verification"] == "verified" and report.details["architecture"] == "pooler"
    assert after["forget_error"] == 1.0
    assert after["retain_accuracy"] >= before["retain_accuracy"] - 0.03
    assert before["prototype_forget_accuracy"] >= 0.8
    assert after["prototype_forget_accuracy"] <= before["prototype_forget_accuracy"] - 0.4
    # the keyword task is linearly separable from almost any features (the class is one word of the input), so
    # the probe stays at 1.0 here; it must not rise
    assert after["probe_forget_accuracy"] <= before["probe_forget_accuracy"]
    assert head_only["probe_forget_accuracy"] == before["probe_forget_accuracy"]
    assert head_only["prototype_forget_accuracy"] >= before["prototype_forget_accuracy"] - 0.15


def test_few_shot_edit_reaches_the_bert_encoder(bert2_task):
    """With forget samples the BERT edit goes below the pooler: the attention of every layer after the first stops
    reading the shift from the retained inputs to the forgotten class; from the codes alone the encoder is untouched."""
    model, book, train, test, collator = bert2_task
    forget = [1]
    few = _subset(train, lambda y: y == 1).select(range(MAX_FORGET_PER_CLASS))
    before = _audit(model, forget, train, test, collator)
    deep, report = _forget(model, book, DEEP, forget, forget_dataset=few, data_collator=collator)
    after = _audit(deep, forget, train, test, collator)
    codes_only, codes_report = _forget(model, book, DEEP, forget)
    assert report.details["verification"] == "verified" and report.details["architecture"] == "pooler"
    assert report.details["encoder_layers_edited"] == 1 and codes_report.details["encoder_layers_edited"] == 0
    assert after["forget_error"] == 1.0
    assert after["retain_accuracy"] >= before["retain_accuracy"] - 0.03
    orig, new, codes = clone_params(model), clone_params(deep), clone_params(codes_only)

    def qkv(i):
        return [f"bert.encoder.layer.{i}.attention.self.{n}.weight" for n in ("query", "key", "value")]

    assert all(not torch.equal(new[n], orig[n]) for n in qkv(1))
    assert all(torch.equal(new[n], orig[n]) for n in qkv(0))
    assert all(torch.equal(codes[n], orig[n]) for n in orig if n.startswith("bert.encoder."))
    # the shift from the retained codes' mean token to the forget samples' mean token at the first layer's output
    # (the second layer's input) is no longer read by the second layer's query, key and value
    inputs = book.as_inputs(with_labels=True)
    batch = collator(
        [{k: few[i][k] for k in ("input_ids", "token_type_ids", "attention_mask")} for i in range(len(few))]
    )
    with torch.no_grad():
        h_codes = model(**{k: v for k, v in inputs.items() if k != "labels"}, output_hidden_states=True).hidden_states[
            1
        ]
        h_few = model(**batch, output_hidden_states=True).hidden_states[1]
    kept = inputs["labels"] != 1
    shift = h_few[batch["attention_mask"].bool()].double().mean(0)
    shift = shift - h_codes[kept][inputs["attention_mask"][kept].bool()].double().mean(0)
    shift = shift - shift.mean()
    for n in qkv(1):
        assert (new[n].double() @ shift).norm() <= 1e-4 * (orig[n].double() @ shift).norm()
    assert "encoder layer" in METHODS[DEEP].describe(report)
    assert "encoder layer" not in METHODS[DEEP].describe(codes_report)


def test_forgotten_classes_can_never_win(vit_task):
    """After the edit the gap between a forgotten class's logit and the mean retained logit is one negative
    constant on every input, even inputs far from the data."""
    model, book, _, _ = vit_task
    forget = [2, 5]
    deep, _ = _forget(model, book, DEEP, forget)
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.rand(64, 1, 8, 8, generator=gen) * 2 - 1, 3 * torch.randn(64, 1, 8, 8, generator=gen)])
    with torch.no_grad():
        logits = deep(pixel_values=x).logits.double()
    retain = [c for c in range(10) if c not in forget]
    gap = logits[:, forget] - logits[:, retain].mean(1, keepdim=True)
    assert float(gap.max()) < 0
    assert float((gap - gap.mean(0)).abs().max()) < 1e-3
    assert not torch.isin(logits.argmax(-1), torch.tensor(forget)).any()


def test_few_shot_mode_and_its_limits(vit_task):
    model, book, train, _ = vit_task
    forget = [7]
    few = _subset(train, lambda y: y == 7).select(range(MAX_FORGET_PER_CLASS))
    retain = _subset(train, lambda y: y != 7).select(range(100))
    deep, report = _forget(model, book, DEEP, forget, forget_dataset=few, retain_dataset=retain)
    assert report.details["verification"] == "verified"
    assert report.fisher_samples == {"codes": 10, "retain_samples": 100, "forget_samples": MAX_FORGET_PER_CLASS}
    assert report.hyperparameters["few_shot"] is True
    # the retained samples choose how much of the shared direction is removed: the first share, from the whole one,
    # that keeps their accuracy within MAX_RETAIN_DROP (or the last share tried)
    from hf_unlearn.evaluation import predict
    from hf_unlearn.methods.mnemonic.deep import MAX_RETAIN_DROP

    def retained_accuracy(m):
        logits, labels = predict(m, retain)
        keep = [c for c in range(10) if c not in forget]
        return float((np.asarray(keep)[logits[:, keep].argmax(1)] == labels).mean())

    tried = report.details["alphas_tried"]
    assert report.details["alphas"][0] == 1.0 and tried[-1]["alpha"] == report.details["alpha"]
    assert tried[-1]["retained_sample_accuracy"] == pytest.approx(retained_accuracy(deep))
    if report.details["alpha"] > 0:
        assert retained_accuracy(deep) >= retained_accuracy(model) - MAX_RETAIN_DROP - 1e-9
    before = clone_params(model)
    too_many = _subset(train, lambda y: y == 7).select(range(MAX_FORGET_PER_CLASS + 1))
    unl = FisherUnlearner(UnlearningConfig(method=DEEP, forget_classes=forget))
    with pytest.raises(ValueError, match="`forget_dataset`"):
        unl.unlearn(model, codebook=book, forget_dataset=too_many)
    with pytest.raises(ValueError, match="`retain_dataset`"):
        unl.unlearn(model, codebook=book, retain_dataset=_subset(train, lambda y: y != 7).select(range(257)))
    assert same_tensors(before, clone_params(model))


def test_an_error_leaves_the_model_bit_identical(vit_task, monkeypatch):
    import hf_unlearn.methods.mnemonic.deep as deep_module

    model, book, _, _ = vit_task
    edited = copy.deepcopy(model)
    before = clone_params(edited)
    real = deep_module._edit_vit_

    def half_then_fail(plan, *args, **kwargs):
        real(plan, *args, **kwargs)  # every weight of the plan changed...
        raise RuntimeError("injected failure")  # ...then the method fails

    monkeypatch.setattr(deep_module, "_edit_vit_", half_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        FisherUnlearner(UnlearningConfig(method=DEEP, forget_classes=[3])).unlearn(edited, codebook=book)
    assert same_tensors(before, clone_params(edited))


def test_an_error_after_the_bert_encoder_edit_leaves_the_model_bit_identical(bert2_task, monkeypatch):
    import hf_unlearn.methods.mnemonic.deep as deep_module

    model, book, train, _, collator = bert2_task
    edited = copy.deepcopy(model)
    before = clone_params(edited)
    edits = []
    real = deep_module._edit_encoder_

    def count(*args, **kwargs):
        edits.append(real(*args, **kwargs))  # the encoder's weights change...
        return edits[-1]

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")  # ...then the pooler edit fails

    monkeypatch.setattr(deep_module, "_edit_encoder_", count)
    monkeypatch.setattr(deep_module, "_edit_pooler_", fail)
    few = _subset(train, lambda y: y == 1).select(range(8))
    with pytest.raises(RuntimeError, match="injected"):
        FisherUnlearner(UnlearningConfig(method=DEEP, forget_classes=[1])).unlearn(
            edited, codebook=book, forget_dataset=few, data_collator=collator
        )
    assert edits == [1]
    assert same_tensors(before, clone_params(edited))


def test_unsupported_architecture_falls_back_to_the_output_layer_and_says_so():
    from hf_unlearn import MnemonicCodebook
    from hf_unlearn.testing_utils import tiny_classifier

    model = tiny_classifier("resnet", 3).eval()  # no plan: a ReLU after every residual sum, no bottleneck
    with pytest.raises(ValueError, match="`model`"):
        deep_plan(model)
    book = MnemonicCodebook.for_model(model, input_shape=(1, 8, 8))
    before = clone_params(model)
    unl = FisherUnlearner(UnlearningConfig(method=DEEP, forget_classes=[1], allow_incomplete=True))
    report = unl.unlearn(model, codebook=book)
    changed = {n for n, p in clone_params(model).items() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("classifier.") for n in changed)  # the output layer only
    if DEEP == "mnemonic":
        assert report.hyperparameters["deep_fallback"] == "its architecture"
        assert "deep edit was not applied" in METHODS[DEEP].describe(report)


def test_every_family_but_resnet_has_a_deep_plan():
    from hf_unlearn.testing_utils import FAMILIES, tiny_classifier

    kinds = {}
    for family in FAMILIES:
        try:
            kinds[family] = deep_plan(tiny_classifier(family, 3))["kind"]
        except ValueError:
            kinds[family] = None
    assert {f for f, k in kinds.items() if k is None} == {"resnet"}
    assert {f for f, k in kinds.items() if k == "vit"} == {"vit", "deit", "beit", "dinov2", "swin", "convnext"}
    assert kinds["bert"] == "pooler" and kinds["mobilevit"] == "reader" and kinds["albert"] == "reader"
    # the few-shot encoder edit reaches the attention of the later half of the layers (never the first); not on
    # ALBERT, whose layers share one set of weights, nor on DeBERTa-v2 (disentangled attention)
    for family, layers in (("roberta", 2), ("distilbert", 2), ("modernbert", 2), ("deberta-v2", 0), ("albert", 0)):
        plan = deep_plan(tiny_classifier(family, 3, num_hidden_layers=4))
        assert len(plan["readers"]) == layers, family


@pytest.fixture(scope="module")
def distilbert_task(keyword_text, tiny_tokenizer, tmp_path_factory):
    from conftest import TEXT_VOCAB
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    cfg = DistilBertConfig(
        vocab_size=len(TEXT_VOCAB), dim=32, n_layers=1, n_heads=2, hidden_dim=64, num_labels=3, dropout=0.0
    )
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(cfg)
    return _bert_task(model, keyword_text, tiny_tokenizer, tmp_path_factory.mktemp("deep_distilbert"))


def test_reader_edit_on_distilbert(distilbert_task):
    """A post-norm encoder without a pooler: the head reads through ``pre_classifier`` only (the "reader" plan)."""
    model, book, train, test, collator = distilbert_task
    forget = [1]
    before = _audit(model, forget, train, test, collator)
    params = clone_params(model)
    deep, report = _forget(model, book, DEEP, forget)
    after = _audit(deep, forget, train, test, collator)
    assert report.details["verification"] == "verified" and report.hyperparameters["architecture"] == "reader"
    changed = {n.rsplit(".", 1)[0] for n, p in clone_params(deep).items() if not torch.equal(p, params[n])}
    assert changed == {"pre_classifier", "classifier"}
    assert after["forget_error"] == 1.0
    assert after["retain_accuracy"] >= before["retain_accuracy"] - 0.03
    # the keyword task is separable from almost any features (the class is one word): depth is measured on TREC and
    # digits (benchmarks/results/deep_edit_dev.md); here the probe and the prototype attack must not rise
    assert after["probe_forget_accuracy"] <= before["probe_forget_accuracy"]
    assert after["prototype_forget_accuracy"] <= before["prototype_forget_accuracy"]
    # the forgotten rows are the retained rows' mean: the class's logit gap is one constant on every input
    w = deep.classifier.weight.detach()
    assert torch.allclose(w[1], w[[0, 2]].mean(0))
    assert "reads the network's features" in METHODS[DEEP].describe(report)


def test_a_reader_that_is_not_a_bottleneck_falls_back_loudly(distilbert_task, monkeypatch, caplog):
    """A plan entry naming a module that a residual path goes around is caught on the codes before any edit."""
    import hf_unlearn.methods.mnemonic.plans as plans

    model, book, _, _, _ = distilbert_task
    monkeypatch.setitem(plans.READERS, "distilbert", "distilbert.transformer.layer.0.ffn.lin2")
    params = clone_params(model)
    edited, report = _forget(model, book, DEEP, [1])
    assert "a path goes around it" in report.hyperparameters["deep_fallback"]
    changed = {n for n, p in clone_params(edited).items() if not torch.equal(p, params[n])}
    assert changed and all(n.startswith("classifier.") for n in changed)
    assert "hidden, not removed" in caplog.text


def test_head_variants_stay_available(vit_task):
    """``mnemonic_variant="search"`` under the default method is the output-only edit, as is ``mnemonic_head``."""
    model, book, _, _ = vit_task
    if DEEP != "mnemonic":
        pytest.skip("the rename to mnemonic / mnemonic_head is not in this tree")
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    FisherUnlearner(
        UnlearningConfig(method="mnemonic", forget_classes=[3], method_config={"mnemonic_variant": "search"})
    ).unlearn(a, codebook=book)
    FisherUnlearner(UnlearningConfig(method="mnemonic_head", forget_classes=[3])).unlearn(b, codebook=book)
    assert same_tensors(clone_params(a), clone_params(b))
    changed = {n for n, p in clone_params(a).items() if not torch.equal(p, clone_params(model)[n])}
    assert changed and all(n.startswith("classifier.") for n in changed)


def test_the_card_says_which_edit_ran(vit_task):
    model, book, _, _ = vit_task
    _, report = _forget(model, book, DEEP, [3])
    text = METHODS[DEEP].describe(report)
    assert "every layer" in text and "can never be predicted" in text


@pytest.mark.multiprocess
def test_two_processes_give_identical_weights(tmp_path):
    script = REPO / "tests" / "scripts" / "deep_two_processes.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(
        [*cmd, str(tmp_path), DEEP], env=env, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in records] == [2, 2]
    assert records[0]["before"] == records[1]["before"]
    assert records[0]["after"] == records[1]["after"] != records[0]["before"]
    # the same edit in this process gives the same weights as the two ranks
    sys.path.insert(0, str(REPO / "tests" / "scripts"))
    try:
        from deep_two_processes import edited_weights
    finally:
        sys.path.pop(0)
    digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in edited_weights(DEEP).values())).hexdigest()
    assert digest == records[0]["after"]


@pytest.mark.parametrize(
    "family",
    ["deit", "beit", "dinov2", "swin", "convnext", "mobilevit", "roberta", "distilbert", "albert", "modernbert"],
)
def test_every_plan_makes_the_forgotten_class_lose_on_any_input(family):
    """On each plan (untrained tiny model: the algebra, not the depth), the edit runs through its self-check and the
    forgotten class's logit sits a constant below the mean retained logit on random inputs, not only on the codes."""
    from hf_unlearn import MnemonicCodebook
    from hf_unlearn.methods.common import logits_of
    from hf_unlearn.methods.mnemonic import deep_forget_
    from hf_unlearn.testing_utils import VISION_FAMILIES, tiny_classifier

    torch.manual_seed(0)
    model = tiny_classifier(family, 4).eval()
    vision = family in VISION_FAMILIES
    book = MnemonicCodebook.for_model(model, input_shape=(1, 8, 8)) if vision else MnemonicCodebook.for_model(model)
    details = deep_forget_(model, book, [1])
    assert details["plan"] == deep_plan(model)["name"]
    if vision:
        inputs = {"pixel_values": torch.randn(16, 1, 8, 8)}
    else:
        inputs = {"input_ids": torch.randint(5, 128, (16, 10)), "attention_mask": torch.ones(16, 10, dtype=torch.long)}
    z = logits_of(model, inputs).double()
    gap = z[:, 1] - z[:, [0, 2, 3]].mean(1)
    assert float(gap.max()) < 0
    assert float((gap - gap.mean()).abs().max()) <= 1e-3 * float(z.abs().max().clamp_min(1.0))
