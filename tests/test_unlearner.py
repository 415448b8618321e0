"""FisherUnlearner / UnlearningConfig: forgetting works, edits are confined, bad input is refused before any change."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import clone_params, split_classes, train_with_codes

from hf_unlearn import FisherUnlearner, MnemonicCodebook, UnlearningConfig, UnlearningReport
from hf_unlearn.evaluation import unlearning_metrics


@pytest.fixture(scope="session")
def trained(digits, tmp_path_factory):
    """A tiny ViT trained on digits with MnemonicTrainer (codes learned), its codebook and the data."""
    from hf_unlearn.data import tiny_vit

    train, test = digits
    model, codebook = train_with_codes(
        tiny_vit(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, seed=0),
        train,
        tmp_path_factory.mktemp("vit"),
        num_train_epochs=20,
        per_device_train_batch_size=32,
        learning_rate=3e-3,
        weight_decay=0.01,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        mnemonic_mix_ratio=0.1,
    )
    return model, codebook, train, test


@pytest.mark.parametrize("forget", [[3], [2, 5]])
def test_mnemonic_forgets_and_keeps_the_rest(trained, forget):
    base, book, _, test = trained
    model = copy.deepcopy(base)
    before = clone_params(model)
    report = FisherUnlearner(UnlearningConfig(method="mnemonic_head", forget_classes=forget)).unlearn(
        model, codebook=book, eval_dataset=test
    )
    b, a = report.metrics["before"], report.metrics["after"]
    assert b["forget_accuracy"] > 0.5
    # a small model trained briefly: the benchmarks measure the >= 99% target; two classes at once are harder
    assert a["forget_accuracy"] <= (0.05 if len(forget) == 1 else 0.2)
    assert a["retain_accuracy"] >= b["retain_accuracy"] - 0.05
    # only the output layer moved; everything else is bit-identical
    after = clone_params(model)
    changed = {n for n in after if not torch.equal(after[n], before[n])}
    assert changed and changed <= {"classifier.weight", "classifier.bias"}
    assert report.num_parameters_changed == sum(int((after[n] != before[n]).sum()) for n in changed)
    assert report.forget_classes == forget and report.fisher_samples == {"codes": 10}
    assert report.details["complete"] is True
    assert report.details["verification"] == "verified"
    checks = report.details["verification_checks"]
    assert checks["codes"]["forget_accuracy"] == 0.0 and checks["eval_dataset"]["forget_accuracy"] <= 0.2
    assert report.hyperparameters["target_parameters"] == ["classifier.weight", "classifier.bias"]
    assert set(report.retain_classes) == set(range(10)) - set(forget)
    assert report.timings["total"] > 0 and len(report.forget_request_fingerprint) == 64


def test_mnemonic_weight_direction(trained):
    base, book, _, test = trained
    model = copy.deepcopy(base)
    cfg = UnlearningConfig(method="mnemonic_head", forget_classes=[4], method_config={"mnemonic_direction": "weight"})
    report = FisherUnlearner(cfg).unlearn(model, codebook=book, eval_dataset=test)
    assert report.metrics["after"]["forget_accuracy"] <= 0.15
    assert report.hyperparameters["direction"] == "weight"


def test_mnemonic_by_label_name_and_paper_variant(trained):
    base, book, _, _ = trained
    model = copy.deepcopy(base)
    # the paper's perturbation may leave the code recognised: keep the edit and let the report say so
    cfg = UnlearningConfig(
        method="mnemonic", forget_classes=["7"], allow_incomplete=True, method_config={"mnemonic_variant": "paper"}
    )
    r = FisherUnlearner(cfg).unlearn(model, codebook=book)
    assert r.forget_classes == [7] and r.forget_labels == ["7"]
    assert r.details["sign"] in ("A (+)", "B (-)")
    assert r.num_parameters_changed > 0
    forgotten = r.details["code_accuracy_forget"] <= cfg.verification_tolerance
    assert r.details["verification"] == ("verified" if forgotten else "incomplete")


def test_fisher_mask_forgets(trained):
    base, _, train, test = trained
    model = copy.deepcopy(base)
    forget_ds, retain_ds = split_classes(train, [3])
    before = clone_params(model)
    report = FisherUnlearner(
        UnlearningConfig(method="fisher_mask", forget_classes=[3], method_config={"mask_ratio": 0.04})
    ).unlearn(model, forget_dataset=forget_ds, retain_dataset=retain_ds, eval_dataset=test)
    a = report.metrics["after"]
    assert a["forget_accuracy"] <= 0.1
    assert a["retain_accuracy"] >= report.metrics["before"]["retain_accuracy"] - 0.1
    after = clone_params(model)
    for n in after:
        diff = after[n] != before[n]
        # masking only ever sets weights to zero, and never touches biases or norms
        assert (after[n][diff] == 0).all(), n
        if after[n].dim() == 1:
            assert not diff.any(), n
    assert report.num_parameters_changed > 0
    assert set(report.fisher_samples) == {"forget_batches", "retain_batches"}


@pytest.mark.parametrize("method", ["ssd", "fisher_noise"])
def test_peer_baselines_run_and_model_stays_a_transformers_model(trained, method, tmp_path):
    from transformers import ViTForImageClassification

    base, _, train, _ = trained
    model = copy.deepcopy(base)
    # SSD's importance is a cheap batch gradient: give it the whole train set, as the method intends
    forget_ds, retain_ds = split_classes(train if method == "ssd" else train.select(range(300)), [3])
    # alpha 1 so that SSD selects something on this small model (at 10 it may legitimately select nothing); so
    # aggressive an edit costs retained accuracy (max_retained_drop): kept with allow_incomplete, as this test is
    # about the saved model, not the verification
    settings = {"ssd_alpha": 1.0} if method == "ssd" else None
    cfg = UnlearningConfig(method=method, forget_classes=[3], allow_incomplete=True, method_config=settings)
    report = FisherUnlearner(cfg).unlearn(model, forget_dataset=forget_ds, retain_dataset=retain_ds)
    assert report.num_parameters_changed > 0
    model.save_pretrained(tmp_path)
    again = ViTForImageClassification.from_pretrained(tmp_path)
    for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        assert torch.equal(p, q), n


def test_fisher_noise_is_seeded(trained):
    base, _, train, _ = trained
    forget_ds, retain_ds = split_classes(train.select(range(120)), [1])
    outs = []
    for _ in range(2):
        m = copy.deepcopy(base)
        FisherUnlearner(UnlearningConfig(method="fisher_noise", forget_classes=[1], seed=4)).unlearn(
            m, forget_dataset=forget_ds, retain_dataset=retain_ds
        )
        outs.append(clone_params(m))
    assert all(torch.equal(outs[0][n], outs[1][n]) for n in outs[0])


def test_config_round_trip_and_validation(tmp_path):
    cfg = UnlearningConfig(method="fisher_mask", forget_classes=[1, "cat"], seed=7, method_config={"mask_ratio": 0.03})
    cfg.save_pretrained(tmp_path)
    again = UnlearningConfig.from_pretrained(tmp_path)
    assert again == cfg
    assert '"hf_unlearn_version"' in (tmp_path / "unlearning_config.json").read_text()
    with pytest.raises(ValueError, match="method"):
        UnlearningConfig(method="magic")
    with pytest.raises(ValueError, match="mask_ratio"):
        UnlearningConfig(method="fisher_mask", method_config={"mask_ratio": 1.5})
    with pytest.raises(ValueError, match="lambda1"):
        UnlearningConfig(method_config={"lambda1": float("nan")})
    with pytest.raises(ValueError, match="mnemonic_variant"):
        UnlearningConfig(method_config={"mnemonic_variant": "other"})
    with pytest.raises(TypeError, match="config"):
        FisherUnlearner({"method": "mnemonic"})


def test_report_round_trip(tmp_path):
    r = UnlearningReport(
        method="mnemonic",
        forget_classes=[1],
        forget_labels=["1"],
        retain_classes=[0],
        retain_labels=["0"],
        timings={"total": 0.5},
    )
    r.save(tmp_path)
    assert UnlearningReport.load(tmp_path) == r


def test_bad_input_changes_nothing(trained, tiny_vit_model):
    base, book, train, _ = trained
    model = copy.deepcopy(base)
    before = clone_params(model)
    forget_ds, retain_ds = split_classes(train.select(range(100)), [3])

    def unlearn(cfg, **kw):
        return FisherUnlearner(cfg).unlearn(model, **kw)

    with pytest.raises(ValueError, match="codebook"):
        unlearn(UnlearningConfig(method="mnemonic", forget_classes=[3]))
    with pytest.raises(ValueError, match="forget_classes"):
        unlearn(UnlearningConfig(method="mnemonic", forget_classes=[10]), codebook=book)
    with pytest.raises(ValueError, match="forget_classes"):
        unlearn(UnlearningConfig(method="mnemonic", forget_classes=["no-such-label"]), codebook=book)
    with pytest.raises(ValueError, match="every class"):
        unlearn(UnlearningConfig(method="mnemonic", forget_classes=list(range(10))), codebook=book)
    with pytest.raises(ValueError, match="forget_classes"):
        unlearn(UnlearningConfig(method="mnemonic", forget_classes=[]), codebook=book)
    with pytest.raises(ValueError, match="forget_dataset"):
        unlearn(UnlearningConfig(method="fisher_mask", forget_classes=[3]), retain_dataset=retain_ds)
    with pytest.raises(ValueError, match="forget_dataset"):
        unlearn(
            UnlearningConfig(method="ssd", forget_classes=[3]),
            forget_dataset=forget_ds.select([]),
            retain_dataset=retain_ds,
        )
    with pytest.raises(ValueError, match="retain_dataset"):
        unlearn(
            UnlearningConfig(method="ssd", forget_classes=[3]),
            forget_dataset=forget_ds,
            retain_dataset=retain_ds.select([]),
        )
    # a codebook made for another model (3 channels, 16 px, 4 classes)
    from hf_unlearn.data import tiny_vit

    other = MnemonicCodebook.for_model(tiny_vit(num_labels=4, image_size=16, num_channels=3, patch_size=4))
    with pytest.raises(ValueError, match="codebook"):
        unlearn(UnlearningConfig(method="mnemonic", forget_classes=[3]), codebook=other)
    after = clone_params(model)
    assert all(torch.equal(before[n], after[n]) for n in before)
    # NaN weights are refused before anything runs
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        unlearn(UnlearningConfig(method="mnemonic", forget_classes=[3]), codebook=book)


def test_callback_masks_then_fine_tunes(trained, tmp_path):
    """As a Trainer callback on the remaining data: the edit happens at train begin, then training fine-tunes."""
    from transformers import Trainer, TrainingArguments

    base, _, train, test = trained
    model = copy.deepcopy(base)
    forget_ds, retain_ds = split_classes(train, [3])
    unl = FisherUnlearner(
        UnlearningConfig(method="fisher_mask", forget_classes=[3], method_config={"mask_ratio": 0.04}),
        forget_dataset=forget_ds,
    )
    seen = {}

    class Spy(FisherUnlearner.__mro__[1]):  # a plain TrainerCallback observing the first step
        def on_step_begin(self, args, state, control, model=None, **kw):
            if "report" not in seen:
                seen["report"] = unl.report

    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=5,
        per_device_train_batch_size=32,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        learning_rate=1e-3,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=retain_ds, callbacks=[unl, Spy()])
    trainer.train()
    assert seen["report"] is not None and seen["report"].method == "fisher_mask"
    assert unl.report.fisher_samples["retain_batches"] > 0  # the retain Fisher came from the Trainer's train set
    m = unlearning_metrics(model, test, [3])
    assert m["forget_accuracy"] <= 0.5


def test_save_and_push_after_unlearn(trained, tmp_path, monkeypatch):
    """The unlearner's own save_pretrained / push_to_hub: local folder first, then the upload; a failed upload keeps
    the folder and a retry succeeds; the pushed weights load back identical."""
    from hub_server import LocalHub, patch_hub_endpoint
    from transformers import ViTForImageClassification

    from hf_unlearn.hub import HubPushError

    base, book, _, test = trained
    model = copy.deepcopy(base)
    unl = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[3]))
    with pytest.raises(RuntimeError, match="unlearn"):
        unl.save_pretrained(tmp_path / "early", model)
    unl.unlearn(model, codebook=book, eval_dataset=test)
    unl.save_pretrained(tmp_path / "local", model)
    names = {p.name for p in (tmp_path / "local").iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "README.md",
        "unlearning_report.json",
        "unlearning_config.json",
        "mnemonic_codes.safetensors",
        "mnemonic_codebook.json",
    } <= names
    with LocalHub() as server:
        patch_hub_endpoint(monkeypatch, server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        out = tmp_path / "push"
        server.fail_next_commits(1)
        with pytest.raises(HubPushError):
            unl.push_to_hub("me/vit-no3", model, output_dir=out, token="hf_secret_token_123")
        assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
        unl.push_to_hub("me/vit-no3", model, output_dir=out, token="hf_secret_token_123")
        again = ViTForImageClassification.from_pretrained("me/vit-no3")
        for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
            assert torch.equal(p, q), n
        assert all("hf_secret_token_123" not in f.read_text(errors="ignore") for f in out.iterdir() if f.is_file())


# ---------------------------------------------------------------- verified claims


def test_codes_the_model_never_learned_fail_loudly_and_leave_the_model_alone(trained):
    """A codebook the model was never trained with (as after training with mix ratio 0): the codes are rejected
    before any edit, so they show nothing; the call raises and the model is bit-identical."""
    from hf_unlearn.unlearner import UnlearningIncompleteError

    base, _, _, test = trained
    foreign = MnemonicCodebook.for_model(base, seed=123)
    model = copy.deepcopy(base)
    before = clone_params(model)
    with pytest.raises(UnlearningIncompleteError, match=r"\['3'\].*could not be verified.*never learned") as err:
        FisherUnlearner(UnlearningConfig(method="mnemonic_head", forget_classes=[3])).unlearn(model, codebook=foreign)
    assert err.value.report.details["verification"] == "unverified"
    assert err.value.report.num_parameters_changed > 0  # the edit happened, then was undone
    after = clone_params(model)
    assert all(torch.equal(before[n], after[n]) for n in before)
    # with evaluation data the class is seen to stay: incomplete, same outcome
    unlearner = FisherUnlearner(UnlearningConfig(method="mnemonic_head", forget_classes=[3]))
    with pytest.raises(UnlearningIncompleteError, match="incomplete.*eval_dataset"):
        unlearner.unlearn(model, codebook=foreign, eval_dataset=test)
    after = clone_params(model)
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert unlearner.report is None  # nothing to save or push


def test_allow_incomplete_keeps_the_edit_and_says_so(trained):
    base, _, _, test = trained
    foreign = MnemonicCodebook.for_model(base, seed=123)
    model = copy.deepcopy(base)
    before = clone_params(model)
    cfg = UnlearningConfig(method="mnemonic_head", forget_classes=[3], allow_incomplete=True)
    report = FisherUnlearner(cfg).unlearn(model, codebook=foreign, eval_dataset=test)
    assert report.details["verification"] == "incomplete"
    checks = report.details["verification_checks"]
    assert "skipped" in checks["codes"] and checks["codes"]["not_learned"] == [3]
    assert checks["eval_dataset"]["forget_accuracy"] > cfg.verification_tolerance
    assert report.metrics["after"]["forget_accuracy"] == checks["eval_dataset"]["forget_accuracy"]
    after = clone_params(model)
    assert sum(int((after[n] != before[n]).sum()) for n in after) == report.num_parameters_changed > 0


def test_verification_uses_the_forget_samples_class_by_class(trained):
    """A method that forgets one of two classes: the average over both could pass, the per-class check does not."""
    from hf_unlearn.methods import METHODS, MethodResult, UnlearningMethod, register_method
    from hf_unlearn.unlearner import UnlearningIncompleteError

    class HideFirst(UnlearningMethod):
        name = "toy_hide_first"
        requires_forget_data = True

        def target_parameters(self, model):
            return ["classifier.bias"]

        def run(self, model, request):
            with torch.no_grad():
                model.classifier.bias[request.forget_classes[0]] = -1e4
            return MethodResult()

    base, _, train, _ = trained
    model = copy.deepcopy(base)
    before = clone_params(model)
    # many samples of class 1, a few of class 8: the pooled accuracy stays under the tolerance
    ones = train.filter(lambda b: [int(y) == 1 for y in b["labels"]], batched=True)
    eights = train.filter(lambda b: [int(y) == 8 for y in b["labels"]], batched=True).select(range(3))
    from datasets import concatenate_datasets

    forget_ds = concatenate_datasets([ones, eights])
    register_method(HideFirst)
    try:
        cfg = UnlearningConfig(method="toy_hide_first", forget_classes=[1, 8], verification_tolerance=0.05)
        with pytest.raises(UnlearningIncompleteError, match="incomplete.*forget_dataset"):
            FisherUnlearner(cfg).unlearn(model, forget_dataset=forget_ds)
        assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
        cfg.allow_incomplete = True
        report = FisherUnlearner(cfg).unlearn(model, forget_dataset=forget_ds)
    finally:
        METHODS.pop("toy_hide_first")
    check = report.details["verification_checks"]["forget_dataset"]
    assert check["forget_accuracy"] <= 0.05 and check["per_class"]["1"] == 0.0 and check["per_class"]["8"] > 0.05
    assert report.details["verification"] == "incomplete"


def test_callback_stops_training_when_the_edit_does_not_forget(trained, tmp_path):
    """As a callback: an edit that leaves the class recognised raises before the first step; the model is intact."""
    from transformers import Trainer, TrainingArguments

    from hf_unlearn.unlearner import UnlearningIncompleteError

    base, _, train, _ = trained
    model = copy.deepcopy(base)
    before = clone_params(model)
    forget_ds, retain_ds = split_classes(train.select(range(300)), [3])
    # a ratio so small that no weight is masked: nothing is forgotten
    unl = FisherUnlearner(
        UnlearningConfig(method="fisher_mask", forget_classes=[3], method_config={"mask_ratio": 1e-9}),
        forget_dataset=forget_ds,
    )
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=2, use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True
    )
    trainer = Trainer(model=model, args=args, train_dataset=retain_ds, callbacks=[unl])
    with pytest.raises(UnlearningIncompleteError, match="incomplete.*forget_dataset"):
        trainer.train()
    assert trainer.state.global_step == 0 and unl.report is None
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_config_verification_fields():
    with pytest.raises(ValueError, match="verification_tolerance"):
        UnlearningConfig(verification_tolerance=1.0)
    with pytest.raises(ValueError, match="allow_incomplete"):
        UnlearningConfig(allow_incomplete="yes")
    assert UnlearningConfig().verification_tolerance == 0.05 and UnlearningConfig().allow_incomplete is False
