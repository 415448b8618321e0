"""Forget scopes (hf_unlearn.scopes): each scope checks its own inputs, measures before the edit, verifies after it
and fills its part of the report, without the unlearner around it."""

from __future__ import annotations

import pytest
import torch

from hf_unlearn import UnlearningConfig
from hf_unlearn.evaluation import predict
from hf_unlearn.methods import METHODS, MethodResult
from hf_unlearn.report import UnlearningReport
from hf_unlearn.scopes import SCOPES, ClassScope, SampleScope
from hf_unlearn.unlearning_config import FORGET_SCOPES
from hf_unlearn.verification import INCOMPLETE, PENDING, UNVERIFIED, VERIFIED


@pytest.fixture(scope="module")
def relabelled(digits):
    """A fresh tiny ViT and the digits test split relabelled with its own predictions (accuracy 1 before any edit),
    split into the rows of its rarest predicted class (to forget) and the others."""
    from hf_unlearn.data import tiny_vit

    model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0).eval()
    _, test = digits
    pred = torch.as_tensor(predict(model, test)[0]).argmax(-1)
    counts = torch.bincount(pred, minlength=10)
    forget = int(torch.where(counts > 0, counts, counts.max() + 1).argmin())
    data = test.remove_columns("labels").add_column("labels", pred.tolist()).with_format("torch")
    rows = [i for i, p in enumerate(pred.tolist()) if p == forget]
    others = [i for i in range(len(pred)) if i not in set(rows)]
    return model, forget, data, data.select(rows), data.select(others)


def _class_scope(model, forget, forget_ds, retain_ds):
    config = UnlearningConfig(method="fisher_mask", forget_classes=[forget])
    scope = ClassScope(config)
    scope.resolve(
        codebook=None, forget_dataset=forget_ds, retain_dataset=retain_ds, data_collator=None, eval_dataset=None
    )
    scope.validate(model, METHODS["fisher_mask"](config))
    scope.measure_before(model)
    return scope


def test_registry_names_every_configurable_scope():
    assert set(SCOPES) == set(FORGET_SCOPES)
    assert all(cls.name == name for name, cls in SCOPES.items())


def test_class_scope_verifies_an_edit_that_removes_the_class_and_refuses_one_that_does_not(relabelled):
    import copy

    base, forget, _, forget_ds, retain_ds = relabelled
    model = copy.deepcopy(base)
    scope = _class_scope(model, forget, forget_ds, retain_ds)
    assert scope.forget == [forget] and forget not in scope.retain
    # no edit: the class is still recognised on the forget samples
    status, reason = scope.verify(model, MethodResult())
    assert status == INCOMPLETE and "forget_dataset" in reason
    # the class can no longer win: forgotten, and every retained row keeps its prediction
    with torch.no_grad():
        model.classifier.bias[forget] -= 1e4
    status, reason = scope.verify(model, MethodResult())
    assert status == VERIFIED, reason
    assert scope.checks["forget_dataset"]["forget_accuracy"] == 0.0
    assert scope.checks["retain_dataset"]["retain_accuracy"] == 1.0
    details = scope.report_details(reason)
    assert details == {"max_retained_drop": 0.05, "verification_reason": reason}
    assert scope.describe() == f"classes ['{forget}']" and len(scope.fingerprint()) == 64


def test_class_scope_refuses_rows_arguments_and_stray_classes(relabelled):
    model, forget, _, forget_ds, retain_ds = relabelled
    scope = ClassScope(UnlearningConfig(method="fisher_mask", forget_classes=[forget]))
    with pytest.raises(ValueError, match="need forget_scope='samples'"):
        scope.resolve(
            codebook=None, forget_dataset=None, retain_dataset=None, data_collator=None, eval_dataset=None,
            forget_rows=[0],
        )  # fmt: skip
    with pytest.raises(ValueError, match="`forget_dataset` holds rows of classes"):
        _class_scope(model, forget, retain_ds, forget_ds)  # the two data sets swapped


def test_sample_scope_splits_rows_defers_its_check_and_records_it_after_training(relabelled):
    model, _, data, _, _ = relabelled
    config = UnlearningConfig(method="fisher_mask", forget_scope="samples")
    scope = SampleScope(config, deferred=True)
    with pytest.raises(ValueError, match="`forget_rows` is required"):
        scope.resolve(
            codebook=None, forget_dataset=None, retain_dataset=None, data_collator=None, eval_dataset=None,
            train_dataset=data,
        )  # fmt: skip
    train, held_out = data.select(range(300)), data.select(range(300, len(data)))
    scope.resolve(
        codebook=None, forget_dataset=None, retain_dataset=None, data_collator=None, eval_dataset=held_out,
        train_dataset=train, forget_rows=list(range(40)),
    )  # fmt: skip
    assert len(scope.forget_dataset) == 40 and len(scope.retain_dataset) == 260
    scope.validate(model, METHODS["fisher_mask"](config))
    scope.measure_before(model)
    assert scope.metrics["before"]["forget_rows_accuracy"] == 1.0
    # as a callback: nothing is decided at the edit ...
    assert scope.verify(model, MethodResult()) == (PENDING, "the check runs when training ends")
    assert "skipped" in scope.checks["samples"]
    report = UnlearningReport(
        method="fisher_mask", forget_classes=[], forget_labels=[], retain_classes=[], retain_labels=[],
        details={"verification": PENDING}, metrics=scope.metrics,
    )  # fmt: skip
    # ... but once training ended, on the held-out rows, and written into the report
    status, reason, check = scope.verify_after_training(model, report)
    assert status == report.details["verification"] and reason == report.details["verification_reason"]
    assert report.metrics["after"] == check and check["num_heldout_rows"] == len(held_out)
    assert report.details["verification_checks"]["samples"]["after"] == "fine-tuning on the retained rows"
    rows = scope.report_details(reason)["forget_rows"]
    assert rows["count"] == 40 and rows["fingerprint"] == scope.rows_fingerprint
    assert scope.describe() == "40 training rows"


def test_sample_scope_without_held_out_rows_is_unverified(relabelled):
    model, _, data, _, _ = relabelled
    config = UnlearningConfig(method="fisher_mask", forget_scope="samples")
    scope = SampleScope(config)
    scope.resolve(
        codebook=None, forget_dataset=data.select(range(20)), retain_dataset=data.select(range(20, 200)),
        data_collator=None, eval_dataset=None,
    )  # fmt: skip
    scope.validate(model, METHODS["fisher_mask"](config))
    scope.measure_before(model)
    assert scope.metrics is None
    status, reason = scope.verify(model, MethodResult())
    assert status == UNVERIFIED and "eval_dataset" in reason
    assert scope.checks["samples"]["num_forget_rows"] == 20


def test_sample_scope_as_a_callback_needs_held_out_rows_before_training(relabelled):
    from types import SimpleNamespace

    from hf_unlearn import FisherUnlearner

    model, _, data, _, _ = relabelled
    config = UnlearningConfig(method="fisher_mask", forget_scope="samples")
    unlearner = FisherUnlearner(
        config, forget_dataset=data.select(range(20)), retain_dataset=data.select(range(20, 99))
    )
    with pytest.raises(ValueError, match="`eval_dataset` is required by FisherUnlearner with forget_scope='samples'"):
        unlearner.on_train_begin(SimpleNamespace(output_dir=""), None, None, model=model)
    assert unlearner.report is None and unlearner._pre_edit is None and unlearner._deferred_scope is None
    unlearner.on_train_end(None, None, None, model=model)  # nothing pending: nothing happens
    SampleScope.check_callback_inputs(UnlearningConfig(forget_scope="samples", allow_incomplete=True), None)
