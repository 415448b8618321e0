"""PEFT (LoRA) classifiers through every unlearning method, the audit and publishing (issue 16).

A LoRA ViT (digits) and a LoRA BERT (keyword task) are trained once per module with MnemonicTrainer; every test
works on a deep copy. On a PEFT model a method edits only the active adapter's weights (LoRA matrices and the
trainable head copy); the frozen base weights must come out bit-identical.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import offline_env
from test_hub import _assert_token_absent

peft = pytest.importorskip("peft")

from hf_unlearn import FisherUnlearner, MnemonicConfig, MnemonicTrainer, UnlearningConfig  # noqa: E402
from hf_unlearn.methods import METHODS  # noqa: E402
from hf_unlearn.methods.common import classification_head, match_parameters  # noqa: E402
from hf_unlearn.peft_utils import adapter_parameter_names, base_relative_name, is_peft_model  # noqa: E402

VIT_TARGETS = ["q_proj", "v_proj", "fc1", "fc2"]  # transformers 5 ViT module names
BERT_TARGETS = ["query", "value", "intermediate.dense", "output.dense"]
FORGET = 1


def _args(tmp, **overrides):
    kwargs = dict(
        output_dir=str(tmp),
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
        per_device_train_batch_size=32,
        dataloader_num_workers=0,
        seed=0,
    )
    kwargs.update(overrides)
    return kwargs


@pytest.fixture(scope="module")
def vit_setup(tmp_path_factory, digits):
    """A tiny ViT fine-tuned in full on the digits (a stand-in for a checkpoint from the Hub, saved to a folder),
    then LoRA (the issue's target modules) with the head in ``modules_to_save``, trained with codes."""
    from transformers import Trainer, TrainingArguments, ViTForImageClassification

    from hf_unlearn.data import tiny_vit

    tmp = tmp_path_factory.mktemp("lora_vit")
    train, test = digits
    pre = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0)
    pre_args = TrainingArguments(num_train_epochs=8, learning_rate=3e-3, warmup_steps=0.1, **_args(tmp / "pre"))
    Trainer(model=pre, args=pre_args, train_dataset=train).train()
    base_dir = str(tmp / "vit-digits-base")
    pre.save_pretrained(base_dir)
    model = peft.get_peft_model(
        ViTForImageClassification.from_pretrained(base_dir),
        peft.LoraConfig(r=8, lora_alpha=16, target_modules=VIT_TARGETS, modules_to_save=["classifier"]),
    )
    trainer = MnemonicTrainer(
        model=model,
        args=MnemonicConfig(
            num_train_epochs=5, learning_rate=1e-2, warmup_steps=0.1, mnemonic_mix_ratio=0.2, **_args(tmp / "run")
        ),
        train_dataset=train,
    )
    trainer.train()
    return {"model": model.eval(), "codebook": trainer.codebook, "train": train, "test": test, "base_dir": base_dir,
            "collator": None, "learned": trainer.check_codes_learned()}  # fmt: skip


@pytest.fixture(scope="module")
def bert_setup(tmp_path_factory, keyword_text, tiny_tokenizer):
    from conftest import make_tiny_bert
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    tmp = tmp_path_factory.mktemp("lora_bert")
    train, test = (ds.remove_columns(["text"]) for ds in keyword_text)
    collator = DataCollatorWithPadding(tiny_tokenizer)
    # a stand-in for a checkpoint fine-tuned on the task; the LoRA phase (adapter + head copy) teaches the codes
    base = make_tiny_bert()
    pre_args = TrainingArguments(num_train_epochs=15, learning_rate=3e-3, warmup_steps=0.1, **_args(tmp / "pre"))
    Trainer(model=base, args=pre_args, train_dataset=train, data_collator=collator).train()
    model = peft.get_peft_model(
        base, peft.LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=BERT_TARGETS)
    )
    trainer = MnemonicTrainer(
        model=model,
        args=MnemonicConfig(
            num_train_epochs=8,
            learning_rate=1e-2,
            warmup_steps=0.1,
            mnemonic_mix_ratio=0.2,
            mnemonic_text_length=12,
            **_args(tmp / "run"),
        ),
        train_dataset=train,
        data_collator=collator,
        processing_class=tiny_tokenizer,
    )
    trainer.train()
    return {"model": model.eval(), "codebook": trainer.codebook, "train": train, "test": test, "base_dir": None,
            "collator": collator, "learned": trainer.check_codes_learned()}  # fmt: skip


def _split(ds, forget):
    labels = torch.as_tensor(ds["labels"])
    keep = torch.isin(labels, torch.tensor(forget))
    return ds.select(torch.nonzero(keep)[:, 0].tolist()), ds.select(torch.nonzero(~keep)[:, 0].tolist())


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _setup(request, which):
    return request.getfixturevalue(f"{which}_setup")


# ---------------------------------------------------------------------------------------------------- the basics
def test_importing_hf_unlearn_does_not_import_peft():
    """Neither the package nor its PEFT helpers import peft (transformers' Trainer modules do, when it is installed;
    hf_unlearn's own code never needs it unless a PEFT model is passed)."""
    code = (
        "import sys, torch, hf_unlearn, hf_unlearn.peft_utils as p\n"
        "assert not p.is_peft_model(torch.nn.Linear(2, 2)) and not p.adapter_parameter_names(torch.nn.Linear(2, 2))\n"
        "assert 'peft' not in sys.modules, 'peft imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], env=offline_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_adapter_weights_head_and_names_on_a_lora_vit():
    from hf_unlearn.data import tiny_vit

    base = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    assert not is_peft_model(base)
    model = peft.get_peft_model(
        base, peft.LoraConfig(r=2, target_modules=["q_proj", "fc1"], modules_to_save=["classifier"])
    )
    assert is_peft_model(model)
    names = adapter_parameter_names(model)
    assert names == [n for n, p in model.named_parameters() if p.requires_grad]  # what PEFT trains and saves
    assert all("lora_" in n or ".modules_to_save.default." in n for n in names)
    # the head is the trainable copy, not the frozen original
    assert classification_head(model) == [
        "base_model.model.classifier.modules_to_save.default.weight",
        "base_model.model.classifier.modules_to_save.default.bias",
    ]
    # names as the base model spells them match the PEFT names
    assert set(match_parameters(model, ["classifier"])) == {
        f"base_model.model.classifier.{w}.{p}"
        for w in ("original_module", "modules_to_save.default")
        for p in ("weight", "bias")
    }
    q = match_parameters(model, ["vit.layers.0.attention.q_proj"])
    assert {n.split("q_proj.")[1] for n in q} == {"base_layer.weight", "base_layer.bias", "lora_A.default.weight",
                                                  "lora_B.default.weight"}  # fmt: skip
    # an adapter with the head itself LoRA-adapted: the head is never lora_B (num_labels outputs too)
    lora_head = peft.get_peft_model(
        tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2),
        peft.LoraConfig(r=2, target_modules=["classifier"]),
    )
    assert classification_head(lora_head) == ["base_model.model.classifier.base_layer.weight",
                                               "base_model.model.classifier.base_layer.bias"]  # fmt: skip
    with pytest.raises(ValueError, match="`model` is a PEFT model.*modules_to_save.*merge_and_unload"):
        FisherUnlearner(UnlearningConfig(method="logit_suppression", forget_classes=[1])).unlearn(
            lora_head, forget_dataset={"pixel_values": torch.zeros(2, 1, 8, 8), "labels": torch.tensor([1, 1])}
        )


# ------------------------------------------------------------------------------------------- every method
def _inputs(setup, method):
    """Codes only for the code-based methods (their few-shot data limits); forget and retain data for the others."""
    if METHODS[method].requires_codebook:
        return dict(codebook=setup["codebook"], data_collator=setup["collator"], eval_dataset=setup["test"])
    forget_ds, retain_ds = _split(setup["train"], [FORGET])
    retain_ds = retain_ds.shuffle(seed=0).select(range(300))  # a seeded subset: keeps the Fisher passes short
    return dict(
        codebook=setup["codebook"],
        forget_dataset=forget_ds,
        retain_dataset=retain_ds,
        data_collator=setup["collator"],
        eval_dataset=setup["test"],
    )


def _frozen(model):
    """The non-adapter parameters by their base-model name: the tensor itself and a copy of its values."""
    adapter = set(adapter_parameter_names(model))
    return {base_relative_name(n): (p, p.detach().clone()) for n, p in model.named_parameters() if n not in adapter}


def _assert_frozen_unchanged(model, frozen):
    """Every frozen base weight is still the model's own tensor (under its base-model name), bit-identical."""
    adapter = set(adapter_parameter_names(model))
    now = {base_relative_name(n): p for n, p in model.named_parameters() if n not in adapter}
    assert now.keys() == frozen.keys()
    for name, (p, value) in frozen.items():
        assert now[name] is p and torch.equal(p, value), name


VERIFIED_ON_BOTH = ("fisher_mask", "fisher_noise", "logit_suppression")  # forget data in hand: E_F 100% here
CODE_METHODS = ("mnemonic_head",)  # the output-layer edit on a PEFT model: the trainable head copy


@pytest.mark.parametrize("which", ["vit", "bert"])
@pytest.mark.parametrize("method", sorted(m for m, cls in METHODS.items() if "classes" in cls.scopes))
def test_every_method_edits_only_the_adapter(request, which, method):
    """Each registered method runs on a LoRA model and edits adapter weights only: every frozen base weight (and the
    head's frozen original) is bit-identical afterwards. Where the tiny models allow it, the forgetting is verified.
    """
    setup = _setup(request, which)
    model = copy.deepcopy(setup["model"])
    before = _snapshot(model)
    adapter = set(adapter_parameter_names(model))
    frozen = _frozen(model)
    config = UnlearningConfig(method=method, forget_classes=[FORGET], allow_incomplete=True)
    report = FisherUnlearner(config).unlearn(model, **_inputs(setup, method))
    _assert_frozen_unchanged(model, frozen)
    if method == "mnemonic":  # the deep edit, delivered as a grown adapter (test_deep_edit_on_an_adapter_...)
        assert report.hyperparameters["delivered_as"] == "adapter" and report.num_parameters_changed > 0
        return
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= adapter, f"frozen weights changed: {sorted(changed - adapter)[:3]}"
    assert report.num_parameters_changed == sum(int((p != before[n]).sum()) for n, p in model.named_parameters())
    checks = report.details["verification_checks"]
    if method in VERIFIED_ON_BOTH:
        assert changed and report.details["verification"] == "verified", checks
        assert report.metrics["after"]["forget_accuracy"] <= 0.05 < report.metrics["before"]["forget_accuracy"]
        assert report.metrics["after"]["retain_accuracy"] >= report.metrics["before"]["retain_accuracy"] - 0.05
    elif method in CODE_METHODS:
        # the head copy only; the forget class's learned codes are rejected (the search's own target). Whether real
        # samples follow depends on how close the codes' features are to the data's (ViT yes, E_F >= 90%; the tiny
        # BERT learned the task before its adapter learned the codes, and its samples do not follow)
        assert changed == {n for n in adapter if ".classifier.modules_to_save." in n}
        assert FORGET not in setup["learned"] and checks["codes"]["forget_accuracy"] == 0.0
        if which == "vit":
            assert report.metrics["after"]["forget_accuracy"] <= 0.1
    # ssd: dampens only where the forget importance exceeds alpha x the full one, possibly nowhere on a tiny model


def test_a_method_that_needs_base_weights_is_refused_on_an_adapter(request):
    from hf_unlearn.methods import UnlearningMethod, register_method

    class BaseEditor(UnlearningMethod):
        name = "test_base_editor"
        uses_forget_data = True
        supports_peft_adapter = False

        def run(self, model, request):  # pragma: no cover - never reached on a PEFT model
            raise AssertionError("run on a PEFT model")

    register_method(BaseEditor)
    try:
        setup = _setup(request, "bert")
        model = copy.deepcopy(setup["model"])
        before = _snapshot(model)
        with pytest.raises(ValueError, match="PEFT model and method 'test_base_editor' edits base weights.*merge_and"):
            FisherUnlearner(UnlearningConfig(method="test_base_editor", forget_classes=[FORGET])).unlearn(
                model, forget_dataset=_split(setup["test"], [FORGET])[0], data_collator=setup["collator"]
            )
        assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    finally:
        METHODS.pop("test_base_editor", None)


def test_a_method_that_would_edit_only_frozen_weights_is_refused(request):
    setup = _setup(request, "vit")
    model = copy.deepcopy(setup["model"])
    before = _snapshot(model)
    config = UnlearningConfig(
        method="fisher_noise", forget_classes=[FORGET], target_modules=["vit.layers.0.attention.k_proj"]
    )
    with pytest.raises(ValueError, match="PEFT model and method 'fisher_noise' would edit only weights outside"):
        FisherUnlearner(config).unlearn(model, **_inputs(setup, "fisher_noise"))
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_target_modules_name_base_modules_and_select_their_adapter_weights(request):
    setup = _setup(request, "vit")
    model = copy.deepcopy(setup["model"])
    before = _snapshot(model)
    config = UnlearningConfig(
        method="fisher_noise", forget_classes=[FORGET], target_modules=["vit.layers.0.mlp.fc1"], allow_incomplete=True
    )
    report = FisherUnlearner(config).unlearn(model, **_inputs(setup, "fisher_noise"))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {f"base_model.model.vit.layers.0.mlp.fc1.lora_{m}.default.weight" for m in "AB"}
    assert report.num_parameters_changed == sum(before[n].numel() for n in changed)


def test_merged_model_is_edited_in_full(request):
    """The documented opt-in: merge first, then every weight the method targets may change."""
    setup = _setup(request, "vit")
    merged = copy.deepcopy(setup["model"]).merge_and_unload()
    assert not is_peft_model(merged)
    before = _snapshot(merged)
    FisherUnlearner(UnlearningConfig(method="fisher_mask", forget_classes=[FORGET], allow_incomplete=True)).unlearn(
        merged, **_inputs(setup, "fisher_mask")
    )
    changed = {n for n, p in merged.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("vit.layers.0.mlp") for n in changed)  # base weights (LoRA merged in) were masked


# ------------------------------------------------------------------------------------------- the deep edit on an adapter
def _test_batch(setup, n=64):
    if setup["collator"] is None:
        return {"pixel_values": setup["test"][:n]["pixel_values"]}
    batch = setup["collator"]([{k: v for k, v in setup["test"][i].items() if k != "labels"} for i in range(n)])
    return {k: v for k, v in batch.items() if k != "labels"}


@pytest.mark.parametrize("which", ["vit", "bert"])
def test_deep_edit_on_an_adapter_equals_the_edit_of_its_merge(request, which, tmp_path):
    """mnemonic on a LoRA model runs the deep edit (no fallback) and delivers it as adapter weights: the frozen base
    stays the model's own, bit-identical; the predictions equal those of the deep edit applied to the merged model;
    the grown adapter saves as an adapter and reloads over the base to the same predictions."""
    from hf_unlearn.methods.mnemonic import deep_forget_

    setup = _setup(request, which)
    model = copy.deepcopy(setup["model"])
    frozen = _frozen(model)
    merged = copy.deepcopy(model).merge_and_unload()
    deep_forget_(merged, setup["codebook"], [FORGET])
    batch = _test_batch(setup)
    unlearner = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[FORGET], allow_incomplete=True))
    report = unlearner.unlearn(model, codebook=setup["codebook"], data_collator=setup["collator"])
    h = report.hyperparameters
    assert h["variant"] == "deep" and h["delivered_as"] == "adapter" and "deep_fallback" not in h
    _assert_frozen_unchanged(model, frozen)
    with torch.no_grad():
        got, expected = model.eval()(**batch).logits, merged.eval()(**batch).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert (got.argmax(-1) != FORGET).all()
    summary = report.details["adapter"]
    names = adapter_parameter_names(model)
    assert summary["adapter_parameters_after"] == sum(dict(model.named_parameters())[n].numel() for n in names)
    assert report.num_parameters_changed > 0
    if which == "vit":  # writers / readers the adapter did not target get LoRA; the embeddings become a copy
        assert summary["modules_to_save_added"] == ["vit.embeddings"] and summary["lora_bias"]
        assert "vit.layers.0.attention.k_proj" in summary["lora_targets_added"]
        base = type(merged).from_pretrained(setup["base_dir"])
    else:  # the pooler gets LoRA of the rank it needs; the head is the copy it was
        assert summary["lora_targets_added"] == ["bert.pooler.dense"] and not summary["modules_to_save_added"]
        copy.deepcopy(setup["model"]).unload().save_pretrained(tmp_path / "base")
        base = type(merged).from_pretrained(tmp_path / "base")
    out = unlearner.save_pretrained(tmp_path / "unlearned", model)
    assert {"adapter_model.safetensors", "adapter_config.json"} <= set(os.listdir(out))
    assert not set(os.listdir(out)) & {"model.safetensors", "pytorch_model.bin"}
    assert "delivered as adapter weights" in open(os.path.join(out, "README.md")).read()  # the card says so
    reloaded = peft.PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, got)


def test_a_failed_check_after_the_deep_edit_puts_the_old_adapter_back(request, monkeypatch):
    """When the unlearner refuses the outcome, the PEFT model gets its adapter back exactly: same modules, names,
    shapes, values and config."""
    import hf_unlearn.scopes as scopes_module
    from hf_unlearn import UnlearningIncompleteError

    setup = _setup(request, "vit")
    model = copy.deepcopy(setup["model"])
    before, config_before = _snapshot(model), copy.deepcopy(model.peft_config["default"])
    base_model = model.base_model
    monkeypatch.setattr(scopes_module, "decide", lambda *a, **k: ("incomplete", "forced by the test"))
    with pytest.raises(UnlearningIncompleteError, match="forced by the test"):
        FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[FORGET])).unlearn(
            model, codebook=setup["codebook"]
        )
    assert model.base_model is base_model and model.peft_config["default"] == config_before
    after = _snapshot(model)
    assert after.keys() == before.keys() and all(torch.equal(after[n], v) for n, v in before.items())


def test_an_adapter_that_cannot_carry_the_deep_edit_falls_back_loudly(request, caplog):
    setup = _setup(request, "vit")
    model = copy.deepcopy(setup["model"])
    model.add_adapter("other", peft.LoraConfig(r=2, target_modules=["q_proj"]))
    before = _snapshot(model)
    config = UnlearningConfig(method="mnemonic", forget_classes=[FORGET], allow_incomplete=True)
    report = FisherUnlearner(config).unlearn(model, codebook=setup["codebook"])
    assert "holds 2 adapters" in report.hyperparameters["deep_fallback"]
    assert "holds 2 adapters" in caplog.text
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".classifier.modules_to_save.default." in n for n in changed)


@pytest.mark.parametrize(
    "config, reason",
    [
        (peft.LoraConfig(r=2, target_modules=["q_proj"], use_dora=True), "DoRA"),
        (peft.LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights="pissa"), "initialised from the base"),
        (peft.LoraConfig(r=2, target_modules=["q_proj"], bias="all"), "trains base biases"),
        (peft.IA3Config(target_modules=["q_proj"], feedforward_modules=[]), "not LoRA"),
        (peft.LoraConfig(r=2, target_modules=["q_proj"]), None),
    ],
)
def test_which_adapters_can_carry_the_deep_edit(config, reason):
    from hf_unlearn.data import tiny_vit
    from hf_unlearn.methods.mnemonic.adapter import why_not_deliverable

    model = peft.get_peft_model(tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2), config)
    why = why_not_deliverable(model)
    assert why is None if reason is None else reason in why


# ------------------------------------------------------------------------------------------- audit
def test_audit_accepts_a_peft_model_and_changes_nothing(request):
    from hf_unlearn import audit_forgetting

    setup = _setup(request, "vit")
    original = setup["model"]
    model = copy.deepcopy(original)
    FisherUnlearner(UnlearningConfig(method="logit_suppression", forget_classes=[FORGET])).unlearn(
        model, codebook=setup["codebook"], forget_dataset=_split(setup["train"], [FORGET])[0]
    )
    before = _snapshot(model)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    audit = audit_forgetting(
        model, forget_classes=[FORGET], train_dataset=setup["train"], eval_dataset=setup["test"], original=original,
        relearn_steps=(1, 3), max_probe_samples=400, show_progress=False,
    )  # fmt: skip
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert flags == {n: p.requires_grad for n, p in model.named_parameters()}
    m = audit.metrics
    assert m["forget_accuracy"] <= 0.05 < audit.original["forget_accuracy"]
    # the probe and the head-rewrite attack read the trainable head copy's input, which a bias-only edit leaves as
    # it was: they find exactly what they find in the original
    for key in ("probe_forget_accuracy", "prototype_forget_accuracy"):
        assert m[key] == pytest.approx(audit.original[key]) and m[key] > m["forget_accuracy"] + 0.2, (key, m)


def _tiny_classifier(which):
    """An untrained tiny ViT (10 labels) or BERT (3 labels) and a batch of its inputs."""
    from conftest import make_tiny_bert

    from hf_unlearn.data import tiny_vit

    torch.manual_seed(0)
    if which == "vit":
        return tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2), {
            "pixel_values": torch.randn(6, 1, 8, 8)
        }
    return make_tiny_bert(), {"input_ids": torch.randint(4, 40, (6, 9)), "attention_mask": torch.ones(6, 9, dtype=torch.long)}  # fmt: skip


HEAD_ADAPTERS = {
    "plain": None,
    "modules_to_save": dict(target_modules=["query", "q_proj"], modules_to_save=["classifier"]),
    "lora_on_head": dict(target_modules=["query", "q_proj", "classifier"]),
    "dora_on_head": dict(target_modules=["classifier"], use_dora=True),
}


@pytest.mark.parametrize("which", ["vit", "bert"])
@pytest.mark.parametrize("adapter", sorted(HEAD_ADAPTERS))
def test_audit_head_is_the_layer_the_model_calls(which, adapter):
    """The audit's head (feature hook, prototype attack) is the head as the model applies it: its input is the
    hidden features (never a LoRA ``lora_B``'s r-dim input) and ``features @ W.T + b`` gives the model's logits, with
    the LoRA delta in W (or the active trainable copy's weights); reading it changes nothing in the model."""
    from hf_unlearn.audit.measures import head_module, head_weights

    model, inputs = _tiny_classifier(which)
    hidden = model.config.hidden_size
    if HEAD_ADAPTERS[adapter] is not None:
        # the fresh adapter's lora_B is zero and the head copy equals its original: move them so that they count
        model = peft.get_peft_model(model, peft.LoraConfig(r=2, **HEAD_ADAPTERS[adapter]))
        with torch.no_grad():
            for p in model.parameters():
                if p.requires_grad:
                    p.add_(0.5 * torch.randn_like(p))
    model.eval()
    before, flags = _snapshot(model), {n: p.requires_grad for n, p in model.named_parameters()}
    head = head_module(model)
    expected_type = {"plain": "Linear", "modules_to_save": "ModulesToSaveWrapper"}.get(adapter, "LoraLayer")
    assert expected_type in [c.__name__ for c in type(head).__mro__], type(head)
    seen = []
    handle = head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        logits = model(**inputs).logits
    handle.remove()
    assert len(seen) == 1 and seen[0].shape == (6, hidden)
    weight, bias = head_weights(model)
    assert weight.shape == (model.config.num_labels, hidden)
    torch.testing.assert_close(seen[0] @ weight.T + bias, logits, atol=1e-5, rtol=1e-5)
    if adapter == "modules_to_save":  # the trainable copy as it is, not the frozen original
        assert torch.equal(weight, head.modules_to_save["default"].weight)
        assert not torch.allclose(weight, head.original_module.weight)
    elif adapter == "lora_on_head":  # base + B @ A * scaling
        torch.testing.assert_close(weight, head.base_layer.weight + head.get_delta_weight("default"))
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert flags == {n: p.requires_grad for n, p in model.named_parameters()} and not model.training


def test_audit_head_follows_the_active_adapter():
    from hf_unlearn.audit.measures import head_weights

    model, _ = _tiny_classifier("vit")
    model = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"], modules_to_save=["classifier"]))
    model.add_adapter("other", peft.LoraConfig(r=2, target_modules=["q_proj"], modules_to_save=["classifier"]))
    head = model.base_model.model.classifier
    with torch.no_grad():
        head.modules_to_save["other"].weight.mul_(-1)
    assert torch.equal(head_weights(model)[0], head.modules_to_save["default"].weight)
    model.set_adapter("other")
    assert torch.equal(head_weights(model)[0], head.modules_to_save["other"].weight)


def test_audit_of_a_lora_adapted_head_equals_the_audit_of_its_merge(digits):
    """With LoRA on the classifier itself, the probe and the prototype attack see what they see on the merged model
    (the same function): the features are the head's input and the prototype rewrites the effective weight rows."""
    from hf_unlearn import audit_forgetting

    train, test = digits
    model, _ = _tiny_classifier("vit")
    model = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj", "classifier"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p))
    model.eval()
    merged = copy.deepcopy(model).merge_and_unload()
    before = _snapshot(model)
    kwargs = dict(forget_classes=[FORGET], train_dataset=train, eval_dataset=test, relearn_steps=(), max_probe_samples=300,
                  show_progress=False)  # fmt: skip
    adapted, plain = audit_forgetting(model, **kwargs).metrics, audit_forgetting(merged, **kwargs).metrics
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    for key in ("forget_accuracy", "retain_accuracy", "probe_forget_accuracy", "probe_retain_accuracy",
                "prototype_forget_accuracy", "prototype_retain_accuracy"):  # fmt: skip
        assert adapted[key] == pytest.approx(plain[key], abs=1e-9), key


# ------------------------------------------------------------------------------------------- publishing
def test_unlearned_adapter_saves_as_adapter_and_reloads_identically(request, tmp_path):
    import yaml
    from transformers import ViTForImageClassification

    setup = _setup(request, "vit")
    model = copy.deepcopy(setup["model"])
    unlearner = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[FORGET], allow_incomplete=True))
    unlearner.unlearn(model, codebook=setup["codebook"])
    out = unlearner.save_pretrained(tmp_path / "vit-digits-lora-unlearned", model)
    files = set(os.listdir(out))
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "mnemonic_codes.safetensors"} <= files
    assert not files & {"model.safetensors", "pytorch_model.bin"}  # the frozen base is not re-published
    for name in files:  # the base was loaded from a local folder: named by its base name only, everywhere
        data = open(os.path.join(out, name), "rb").read()
        assert os.path.dirname(setup["base_dir"]).encode() not in data, f"{name} holds a local absolute path"
    assert json.load(open(os.path.join(out, "adapter_config.json")))["base_model_name_or_path"] == "vit-digits-base"
    meta = yaml.safe_load(open(os.path.join(out, "README.md")).read().split("---")[1])
    assert meta["library_name"] == "peft" and {"hf-unlearn", "machine-unlearning", "unlearning"} <= set(meta["tags"])
    assert "base_model" not in meta  # a local folder's name is no Hub id (the card's text names it)
    # the adapter reloads over the same base to the same predictions
    reloaded = peft.PeftModel.from_pretrained(ViTForImageClassification.from_pretrained(setup["base_dir"]), out)
    x = setup["test"][:64]["pixel_values"]
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(pixel_values=x).logits, model.eval()(pixel_values=x).logits)

    # a base from the Hub: its id is the card's base_model, the relation "adapter"
    model.get_base_model().config._name_or_path = "google/vit-base-patch16-224"
    model.peft_config["default"].base_model_name_or_path = "google/vit-base-patch16-224"
    unlearner.report.base_model = "google/vit-base-patch16-224"
    out = unlearner.save_pretrained(tmp_path / "from-hub", model)
    meta = yaml.safe_load(open(os.path.join(out, "README.md")).read().split("---")[1])
    assert meta["base_model"] == "google/vit-base-patch16-224" and meta["base_model_relation"] == "adapter"


def test_peft_checkpoint_pushes_never_upload_the_token(tmp_path, local_hub):
    from hf_unlearn.data import tiny_vit

    token = "hf_peftSECRETtoken123"
    train = [{"pixel_values": torch.randn(1, 8, 8), "labels": i % 4} for i in range(16)]
    model = peft.get_peft_model(
        tiny_vit(num_labels=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2),
        peft.LoraConfig(r=2, target_modules=["q_proj"], modules_to_save=["classifier"]),
    )
    args = MnemonicConfig(
        output_dir=str(tmp_path / "run"), push_to_hub=True, hub_model_id="tester/lora", hub_token=token,
        hub_strategy="checkpoint", save_strategy="steps", save_steps=1, max_steps=2, per_device_train_batch_size=4,
        report_to="none", use_cpu=True, mnemonic_mix_ratio=0.8,
    )  # fmt: skip
    trainer = MnemonicTrainer(model=model, args=args, train_dataset=train)
    trainer.train()
    trainer.push_to_hub()
    files = local_hub.repos["tester/lora"].files
    assert "adapter_model.safetensors" in files and "last-checkpoint/adapter_model.safetensors" in files
    _assert_token_absent(args.output_dir, local_hub, token=token)  # no local file, remote file or request body


# ------------------------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def cli_dirs(tmp_path_factory):
    """A tiny digits ViT saved as a full model (``base``), a LoRA adapter over it saved by peft (``adapter``, whose
    adapter_config.json names the base by its absolute path), and bases it does not fit: a BERT, a 5-label ViT."""
    from conftest import make_tiny_bert

    from hf_unlearn.data import tiny_vit

    root = tmp_path_factory.mktemp("cli_adapters")
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    tiny_vit(**small).save_pretrained(root / "base")
    tiny_vit(num_labels=5, **small).save_pretrained(root / "five_labels")
    tiny_vit(**{**small, "num_hidden_layers": 2}).save_pretrained(root / "two_layers")  # peft only warns on it
    make_tiny_bert().save_pretrained(root / "bert")
    from transformers import ViTForImageClassification

    model = peft.get_peft_model(
        ViTForImageClassification.from_pretrained(root / "base"),
        peft.LoraConfig(r=2, target_modules=["q_proj", "fc1"], modules_to_save=["classifier"]),
    )
    torch.manual_seed(0)
    with torch.no_grad():  # a trained adapter: lora_B away from zero, the head copy away from the original
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(root / "adapter")
    return {name: root / name for name in ("base", "five_labels", "two_layers", "bert", "adapter")}


def _cli(capsys, *argv):
    from hf_unlearn.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _tree(*folders):
    return {str(p): p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


FISHER_MASK_TINY = ["--forget_classes", "3", "--method", "fisher_mask", "--dataset", "digits", "--max_train_samples",
                    "120", "--max_eval_samples", "60", "--allow_incomplete", "true"]  # fmt: skip


def test_cli_forgets_on_an_adapter_folder_and_saves_an_adapter(capsys, cli_dirs, tmp_path):
    """forget on an adapter folder edits the adapter only and saves the adapter form; its adapter_config.json names
    the local base by its folder name only, so evaluate and audit then need --base_model; --merge_adapter saves a
    full model."""
    from safetensors.torch import load_file

    base, adapter = cli_dirs["base"], cli_dirs["adapter"]
    inputs = _tree(base, adapter)
    out = tmp_path / "no3"
    code, stdout, err = _cli(capsys, "forget", "--model_dir", adapter, *FISHER_MASK_TINY, "--output_dir", out)
    assert code == 0, err
    files = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "unlearning_report.json", "README.md"} <= files
    assert not files & {"model.safetensors", "config.json"}
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "base"
    assert _tree(base, adapter) == inputs  # the base and the input adapter are as they were
    before, after = load_file(adapter / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    changed = sum(int((after[k] != v).sum()) for k, v in before.items())
    report = json.loads((out / "unlearning_report.json").read_text())
    assert changed == report["num_parameters_changed"] > 0  # every edited weight is in the adapter file

    # the saved adapter names its base by folder name only: loading it needs --base_model
    code, _, err = _cli(capsys, "evaluate", "--model_dir", out, "--dataset", "digits", "--forget_classes", "3")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--base_model" in lines[0] and "'base'" in lines[0], err
    code, stdout, err = _cli(capsys, "evaluate", "--model_dir", out, "--base_model", base, "--dataset", "digits",
                             "--forget_classes", "3", "--max_eval_samples", "60", "--output_file", tmp_path / "m.json")  # fmt: skip
    assert code == 0 and "E_F  forget error" in stdout, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["forget_accuracy"] == pytest.approx(report["metrics"]["after"]["forget_accuracy"])

    # audit: the unlearned adapter against the adapter it came from, both over --base_model
    code, stdout, err = _cli(capsys, "audit", "--model_dir", out, "--original", adapter, "--base_model", base,
                             "--dataset", "digits", "--forget_classes", "3", "--max_train_samples", "150",
                             "--max_eval_samples", "60", "--relearn_steps", "1", "--output_file", tmp_path / "a.json")  # fmt: skip
    assert code == 0, err
    audit = json.loads((tmp_path / "a.json").read_text())
    assert audit["metrics"]["forget_accuracy"] == pytest.approx(metrics["forget_accuracy"])

    # --merge_adapter: merged before unlearning, saved as a full model
    merged = tmp_path / "merged"
    code, _, err = _cli(capsys, "forget", "--model_dir", adapter, "--merge_adapter", *FISHER_MASK_TINY,
                        "--output_dir", merged)  # fmt: skip
    assert code == 0, err
    files = {p.name for p in merged.iterdir()}
    assert {"config.json", "model.safetensors"} <= files and "adapter_config.json" not in files
    assert not any(".lora_" in k or "base_layer" in k for k in load_file(merged / "model.safetensors"))
    assert _tree(base, adapter) == inputs


def test_cli_bad_adapter_input_exits_2_naming_the_flag_and_writes_nothing(capsys, cli_dirs, tmp_path, monkeypatch):
    base, adapter = cli_dirs["base"], cli_dirs["adapter"]
    stripped = tmp_path / "stripped"  # as hf_unlearn saves it: the local base named by its folder name only
    shutil.copytree(adapter, stripped)
    cfg = json.loads((stripped / "adapter_config.json").read_text())
    (stripped / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "base"}))
    truncated = tmp_path / "truncated"
    shutil.copytree(adapter, truncated)
    data = (truncated / "adapter_model.safetensors").read_bytes()
    (truncated / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    forget = ["forget", *FISHER_MASK_TINY, "--output_dir", out]
    cases = [
        ([*forget, "--model_dir", stripped], "--base_model PATH_OR_ID"),
        ([*forget, "--model_dir", adapter, "--base_model", cli_dirs["bert"]], f"--base_model '{cli_dirs['bert']}' does not fit"),
        ([*forget, "--model_dir", adapter, "--base_model", cli_dirs["five_labels"]],
         "does not fit the adapter in --model_dir"),
        ([*forget, "--model_dir", adapter, "--base_model", cli_dirs["five_labels"]],
         "classifier.modules_to_save.default.weight: [10, 16] in the adapter, [5, 16] in the base model"),
        ([*forget, "--model_dir", adapter, "--base_model", cli_dirs["two_layers"]],
         "'base_model.model.vit.layers.1.attention.q_proj.lora_A.weight' does not load into it"),
        ([*forget, "--model_dir", adapter, "--base_model", tmp_path / "nowhere"], "--base_model"),
        ([*forget, "--model_dir", adapter, "--base_model", adapter], "--base_model"),
        ([*forget, "--model_dir", base, "--base_model", base], "--base_model is for a PEFT adapter folder"),
        ([*forget, "--model_dir", base, "--merge_adapter"], "--merge_adapter is for a PEFT adapter folder"),
        ([*forget, "--model_dir", truncated, "--base_model", base], "adapter_model.safetensors could not be read"),
        ([*forget, "--model_dir", adapter, "--output_dir", base, "--overwrite_output_dir"], "the adapter's base model"),
        (["evaluate", "--model_dir", stripped, "--dataset", "digits", "--forget_classes", "3"], "--base_model"),
        (["audit", "--model_dir", base, "--original", stripped, "--dataset", "digits", "--forget_classes", "3",
          "--output_file", out / "a.json"], "--original"),
    ]  # fmt: skip
    inputs = _tree(*cli_dirs.values(), stripped, truncated)
    for argv, expected in cases:
        code, _, err = _cli(capsys, *argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and expected in lines[0], (argv, err)
        assert not out.exists(), argv
    assert _tree(*cli_dirs.values(), stripped, truncated) == inputs

    monkeypatch.setitem(sys.modules, "peft", None)  # peft not installed: `import peft` fails
    code, _, err = _cli(capsys, *forget, "--model_dir", adapter)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--model_dir" in lines[0] and "hf_unlearn[peft]" in lines[0], err
    assert not out.exists()


def test_cli_mnemonic_on_an_adapter_is_deep_as_an_adapter_and_deep_once_merged(capsys, request, tmp_path):
    """The code-trained LoRA ViT saved as an adapter folder with its codes: `forget` (mnemonic) runs the deep edit
    and saves it as a grown adapter (its old weights kept, LoRA added and the embeddings copied, the base folder
    untouched); with --merge_adapter the deep edit runs on the merged model and a full model is saved."""
    from safetensors.torch import load_file

    setup = _setup(request, "vit")
    folder = tmp_path / "lora"
    setup["model"].save_pretrained(folder)  # adapter_config.json names the local base folder by its path
    setup["codebook"].save_pretrained(folder)
    base_files = _tree(Path(setup["base_dir"]))
    argv = ["forget", "--model_dir", folder, "--forget_classes", FORGET, "--allow_incomplete", "true"]
    code, _, err = _cli(capsys, *argv, "--output_dir", tmp_path / "adapter")
    assert code == 0, err
    report = json.loads((tmp_path / "adapter" / "unlearning_report.json").read_text())
    assert report["hyperparameters"]["delivered_as"] == "adapter" and "deep_fallback" not in report["hyperparameters"]
    before = load_file(folder / "adapter_model.safetensors")
    after = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert "base_model.model.vit.embeddings.cls_token" in after and len(after) > len(before)
    assert after.keys() >= before.keys() and _tree(Path(setup["base_dir"])) == base_files
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["lora_bias"] and "vit.embeddings" in config["modules_to_save"]

    code, _, err = _cli(capsys, *argv, "--merge_adapter", "--output_dir", tmp_path / "merged")
    assert code == 0, err
    report = json.loads((tmp_path / "merged" / "unlearning_report.json").read_text())
    assert report["hyperparameters"]["variant"] == "deep" and "deep_fallback" not in report["hyperparameters"]
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
