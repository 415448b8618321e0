"""Forgetting chosen training rows (forget_scope="samples"): memorised wrong labels go, clean accuracy stays, only
the named rows are targeted, methods without a samples scope refuse it, and bad rows are refused before any change."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from helpers import fit_images

from hf_unlearn import FisherUnlearner, UnlearningConfig
from hf_unlearn.samples import decide_samples, read_rows_file, rows_fingerprint, split_rows
from hf_unlearn.unlearner import UnlearningIncompleteError

N_TRAIN, N_FLIPPED = 400, 10


@pytest.fixture(scope="module")
def memorised(digits):
    """A tiny ViT trained on 400 digits of which 10 carry a wrong label, until it predicts most wrong labels."""
    from datasets import Dataset

    from hf_unlearn.data import tiny_vit

    train, test = digits
    x = train[:N_TRAIN]["pixel_values"].float()
    y = train[:N_TRAIN]["labels"].long()
    rng = np.random.default_rng(0)
    flipped = np.sort(rng.choice(N_TRAIN, N_FLIPPED, replace=False))
    noisy = y.clone()
    noisy[flipped] = (y[flipped] + 1 + torch.from_numpy(rng.integers(0, 9, N_FLIPPED))) % 10
    model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, patch_size=4, seed=0)
    for chunk in range(15):  # until it predicts at least 9 of the 10 wrong labels (deterministic: seeded)
        fit_images(model, x, noisy, 100, seed=chunk)
        with torch.no_grad():
            if (model(pixel_values=x[flipped]).logits.argmax(-1) == noisy[flipped]).sum() >= N_FLIPPED - 1:
                break
    ds = Dataset.from_dict({"pixel_values": x.tolist(), "labels": noisy.tolist()}).with_format("torch")
    return model, ds, test, flipped.tolist(), noisy


def _two_tiny_steps(output_dir):
    """Training arguments of a callback test: 2 steps at a learning rate too small to repair a broken edit."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir), max_steps=2, per_device_train_batch_size=32, learning_rate=1e-6, use_cpu=True,
        report_to="none", save_strategy="no", disable_tqdm=True,
    )  # fmt: skip


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _wrong_label_rate(model, ds, rows):
    with torch.no_grad():
        pred = model(pixel_values=ds[rows]["pixel_values"]).logits.argmax(-1)
    return float((pred == ds[rows]["labels"]).float().mean())


def _test_accuracy(model, test):
    with torch.no_grad():
        pred = model(pixel_values=test[:]["pixel_values"]).logits.argmax(-1)
    return float((pred == test[:]["labels"]).float().mean())


def test_forgetting_mislabeled_rows_removes_the_wrong_labels_and_keeps_clean_accuracy(memorised, tmp_path):
    """Fisher masking as a Trainer callback, then fine-tuning on the retained rows (the authors' recipe)."""
    from transformers import Trainer, TrainingArguments

    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    wrong_before, acc_before = _wrong_label_rate(model, ds, flipped), _test_accuracy(model, test)
    assert wrong_before >= 0.8  # the model memorised the wrong labels
    forget_ds, retain_ds, _, _ = split_rows(ds, flipped)
    cfg = UnlearningConfig(method="fisher_mask", forget_scope="samples", method_config={"mask_ratio": 0.01})
    unl = FisherUnlearner(cfg, forget_dataset=forget_ds, eval_dataset=test)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=50,
        per_device_train_batch_size=64,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    Trainer(model=model, args=args, train_dataset=retain_ds, callbacks=[unl]).train()
    model.eval()
    wrong_after, acc_after = _wrong_label_rate(model, ds, flipped), _test_accuracy(model, test)
    assert wrong_after <= 0.3 and wrong_after <= wrong_before - 0.5
    assert acc_after >= acc_before - 0.03
    report = unl.report
    assert report.details["forget_scope"] == "samples"
    assert report.details["verification"] == "verified"  # checked after the fine-tuning, on held-out rows
    check = report.details["verification_checks"]["samples"]
    assert check["num_forget_rows"] == N_FLIPPED and check["num_heldout_rows"] == len(test)
    # the rows by count and fingerprint only: no index, no pixel, no label of a forgotten row in the record
    assert set(report.details["forget_rows"]) == {"count", "fingerprint"}
    assert report.details["forget_rows"]["count"] == N_FLIPPED
    assert report.forget_classes == [] and len(report.retain_classes) == 10
    blob = report.to_json_string()
    row_values = json.dumps(forget_ds[0]["pixel_values"].tolist())[1:40]
    assert row_values not in blob and json.dumps(flipped) not in blob
    from hf_unlearn.methods import METHODS

    card_text = METHODS["fisher_mask"].describe(report)
    assert (
        f"{N_FLIPPED} chosen training rows" in card_text and report.details["forget_rows"]["fingerprint"] in card_text
    )


def _zeroed(model, before):
    return {n: (p.detach() == 0) & (before[n] != 0) for n, p in model.named_parameters()}


def test_disjoint_rows_give_different_masks_built_from_the_named_rows_only(memorised):
    from hf_unlearn.fisher import compute_fisher
    from hf_unlearn.methods.fisher_mask import fisher_mask_, scored_parameters

    base, ds, test, flipped, _ = memorised
    other = [i for i in range(0, N_TRAIN, 37) if i not in flipped][:N_FLIPPED]
    before = _params(base)
    masks, fps = [], []
    for rows in (flipped, other):
        model = copy.deepcopy(base)
        cfg = UnlearningConfig(
            method="fisher_mask", forget_scope="samples", allow_incomplete=True, method_config={"mask_ratio": 0.01}
        )
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=rows)
        masks.append(_zeroed(model, before))
        fps.append(report.details["forget_rows"]["fingerprint"])
        # the same edit, by hand, from exactly these rows as forget data and every other row as retain data
        ref = copy.deepcopy(base)
        names = list(scored_parameters(ref))
        keep = [i for i in range(N_TRAIN) if i not in set(rows)]
        kw = dict(kind="batch_true", parameters=names, batch_size=cfg.fisher_batch_size, show_progress=False)
        fisher_mask_(
            ref, compute_fisher(ref, ds.select(rows), **kw), compute_fisher(ref, ds.select(keep), **kw), ratio=0.01
        )
        for n, p in ref.named_parameters():
            assert torch.equal(p, dict(model.named_parameters())[n]), n
    differ = sum(int((masks[0][n] != masks[1][n]).sum()) for n in masks[0])
    assert differ > 0 and fps[0] != fps[1]
    # the fingerprint is that of the set of rows: order does not matter
    model = copy.deepcopy(base)
    cfg = UnlearningConfig(
        method="fisher_mask", forget_scope="samples", allow_incomplete=True, method_config={"mask_ratio": 0.01}
    )
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=list(reversed(flipped)))
    assert report.details["forget_rows"]["fingerprint"] == fps[0]


@pytest.mark.parametrize("method", ["mnemonic", "logit_suppression"])
def test_class_only_methods_refuse_samples_scope(method):
    from hf_unlearn.methods import METHODS

    assert "samples" not in METHODS[method].scopes
    with pytest.raises(ValueError, match="forget_scope"):
        UnlearningConfig(method=method, forget_scope="samples")
    # any registered method reading per-class codes stays class-level
    for name, cls in METHODS.items():
        if cls.requires_codebook:
            assert "samples" not in cls.scopes, name


def test_scope_settings_are_checked():
    with pytest.raises(ValueError, match="forget_scope"):
        UnlearningConfig(method="fisher_mask", forget_scope="rows")
    with pytest.raises(ValueError, match="forget_classes"):
        UnlearningConfig(method="fisher_mask", forget_scope="samples", forget_classes=[3])
    for method in ("fisher_mask", "ssd", "fisher_noise"):
        assert UnlearningConfig(method=method, forget_scope="samples").forget_scope == "samples"
    assert UnlearningConfig(method="fisher_mask").forget_scope == "classes"


def test_bad_rows_are_refused_before_any_weight_changes(memorised):
    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    before = _params(model)
    cfg = UnlearningConfig(method="ssd", forget_scope="samples", allow_incomplete=True)

    def unlearn(**kw):
        return FisherUnlearner(cfg).unlearn(model, eval_dataset=test, **kw)

    cases = [
        (dict(train_dataset=ds, forget_rows=[0, N_TRAIN]), "forget_rows.*outside"),
        (dict(train_dataset=ds, forget_rows=[-1, 3]), "forget_rows.*outside"),
        (dict(train_dataset=ds, forget_rows=[4, 5, 4]), "forget_rows.*more than once"),
        (dict(train_dataset=ds, forget_rows=[]), "forget_rows.*empty"),
        (dict(train_dataset=ds, forget_rows=list(range(N_TRAIN))), "forget_rows.*every row"),
        (dict(train_dataset=ds, forget_rows=[1, 2], retain_rows=[2, 3]), "retain_rows.*forget_rows"),
        (dict(train_dataset=ds, forget_rows=[1.5]), "forget_rows.*integer"),
        (dict(train_dataset=ds, forget_rows=[True]), "forget_rows.*integer"),
        (dict(train_dataset=ds, forget_rows="1,2"), "forget_rows"),
        (dict(forget_rows=[1, 2]), "train_dataset"),
        (dict(train_dataset=ds), "forget_rows"),
        (dict(train_dataset=ds, forget_rows=[1], forget_dataset=ds.select([1])), "forget_dataset"),
        (dict(retain_dataset=ds), "forget_dataset"),
        (dict(forget_dataset=ds.select([1, 2])), "retain_dataset"),
        (dict(forget_dataset=ds.select([1, 2]), retain_dataset=ds.select([])), "retain_dataset"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            unlearn(**kwargs)
    # rows in classes scope
    with pytest.raises(ValueError, match="forget_scope"):
        FisherUnlearner(UnlearningConfig(method="ssd", forget_classes=[3])).unlearn(
            model, train_dataset=ds, forget_rows=[1]
        )
    after = _params(model)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_without_held_out_data_the_outcome_is_unverified_and_the_model_restored(memorised):
    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    before = _params(model)
    cfg = UnlearningConfig(method="ssd", forget_scope="samples", method_config={"ssd_alpha": 50})
    with pytest.raises(UnlearningIncompleteError, match="eval_dataset") as err:
        FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
    assert err.value.report.details["verification"] == "unverified"
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    cfg = UnlearningConfig(
        method="ssd", forget_scope="samples", allow_incomplete=True, method_config={"ssd_alpha": 50}
    )
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
    assert report.details["verification"] == "unverified" and report.num_parameters_changed > 0


def test_a_memorising_model_is_not_verified_as_having_forgotten_random_rows(memorised):
    """Rows the model fits (training accuracy ~1) next to held-out rows it gets right far less often: the check must
    see the difference and refuse, even though the edit ran (an edit that changes nothing: tiny fisher_noise)."""
    base, ds, test, flipped, noisy = memorised
    model = copy.deepcopy(base)
    with torch.no_grad():
        correct = model(pixel_values=ds[:]["pixel_values"]).logits.argmax(-1) == noisy
    rows = [int(i) for i in torch.nonzero(correct).flatten()[:60]]  # rows the model gets right: accuracy 1
    cfg = UnlearningConfig(method="fisher_noise", forget_scope="samples", method_config={"noise_alpha": 1e-12})
    with pytest.raises(UnlearningIncompleteError, match="held-out accuracy"):
        FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=rows, eval_dataset=test)


def test_a_destructive_edit_is_not_verified_however_alike_forget_and_held_out_rows_look(memorised):
    """SSD at alpha 5 dampens the whole tiny model: nothing is predicted any more, so the forgotten rows do look like
    held-out rows (accuracy and membership AUC within their bounds), but the held-out accuracy collapsed against the
    model's own before the edit: not verified, and the model comes back bit-identical."""
    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    before = _params(model)
    cfg = UnlearningConfig(
        method="ssd", forget_scope="samples", strength_search=False, method_config={"ssd_alpha": 5}
    )  # this edit
    with pytest.raises(UnlearningIncompleteError, match="held-out accuracy fell from") as err:
        FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped, eval_dataset=test)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    report = err.value.report
    check, was = report.details["verification_checks"]["samples"], report.metrics["before"]
    assert report.details["verification"] == "incomplete"
    assert was["heldout_accuracy"] >= 0.85 and check["heldout_accuracy"] <= 0.3  # the model is wrecked ...
    tol = cfg.verification_tolerance  # ... while the rows pass the forget-vs-held-out bounds on their own
    assert check["forget_rows_accuracy"] <= check["heldout_accuracy"] + tol
    assert check["mia_auc"] <= 0.5 + max(tol, 2 * check["mia_auc_chance_se"])
    assert "forget-row accuracy" not in report.details["verification_reason"]
    # allow_incomplete keeps the wrecked edit, recorded as incomplete
    cfg = UnlearningConfig(
        method="ssd",
        forget_scope="samples",
        allow_incomplete=True,
        strength_search=False,
        method_config={"ssd_alpha": 5},
    )
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped, eval_dataset=test)
    assert report.details["verification"] == "incomplete" and _test_accuracy(model, test) <= 0.3


def test_a_destructive_edit_not_repaired_by_the_fine_tuning_is_undone_at_train_end(memorised, tmp_path):
    """As a callback: masking a fifth of the weights, then two fine-tuning steps too small to repair the model."""
    from transformers import Trainer

    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    forget_ds, retain_ds, _, _ = split_rows(ds, flipped)
    before = _params(model)
    cfg = UnlearningConfig(method="fisher_mask", forget_scope="samples", method_config={"mask_ratio": 0.2})
    unl = FisherUnlearner(cfg, forget_dataset=forget_ds, eval_dataset=test)
    args = _two_tiny_steps(tmp_path)
    with pytest.raises(UnlearningIncompleteError, match="held-out accuracy fell from"):
        Trainer(model=model, args=args, train_dataset=retain_ds, callbacks=[unl]).train()
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert unl.report.details["verification"] == "incomplete"
    assert unl.report.details["verification_checks"]["samples"]["heldout_accuracy"] <= 0.5


def test_rows_a_model_never_saw_stay_verified(memorised, retrained):
    """The other side of the bounds: for a model retrained without the rows (an edit that changes next to nothing),
    the rows look like held-out data and the held-out accuracy is kept, so the outcome is verified."""
    _, ds, test, flipped, _ = memorised
    for model in retrained:
        model = copy.deepcopy(model)
        cfg = UnlearningConfig(method="fisher_noise", forget_scope="samples", method_config={"noise_alpha": 1e-12})
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped, eval_dataset=test)
        assert report.details["verification"] == "verified", report.details["verification_reason"]


def test_decide_samples_bounds():
    base = {"forget_rows_accuracy": 0.9, "heldout_accuracy": 0.88, "mia_auc": 0.55, "mia_auc_chance_se": 0.04}
    base["num_heldout_rows"] = 400
    before = {"heldout_accuracy": 0.9, "num_heldout_rows": 400}  # the model before the edit, same held-out rows

    def decide(check, tolerance=0.05, before=before):
        return decide_samples(check, tolerance, before=before)[0]

    assert decide(base) == "verified"
    assert decide({**base, "forget_rows_accuracy": 0.95}) == "incomplete"
    assert decide({**base, "forget_rows_accuracy": 0.1}) == "verified"  # lower is fine (mislabeled)
    assert decide({**base, "mia_auc": 0.57}) == "verified"  # within two chance standard errors
    assert decide({**base, "mia_auc": 0.6}) == "incomplete"
    status, reason = decide_samples({"forget_rows_accuracy": 0.2, "forget_rows_loss": 1.0}, 0.05, before=before)
    assert status == "unverified" and "eval_dataset" in reason
    # a wrecked model: the forget rows "look like" held-out rows only because nothing is predicted any more
    wrecked = {**base, "forget_rows_accuracy": 0.1, "heldout_accuracy": 0.1, "mia_auc": 0.5}
    status, reason = decide_samples(wrecked, 0.05, before=before)
    assert status == "incomplete" and "fell from 0.900" in reason
    assert decide({**base, "heldout_accuracy": 0.86}) == "verified"  # a drop of 4 points: within the tolerance
    assert decide({**base, "heldout_accuracy": 0.84}) == "incomplete"  # 6 points: beyond it (2 s.e. = 0.03)
    # the bound is max(tolerance, 2 binomial standard errors of the original's accuracy): 25 rows, 2 s.e. = 0.12
    small = {**base, "num_heldout_rows": 25, "forget_rows_accuracy": 0.7}
    assert decide({**small, "heldout_accuracy": 0.79}, 0.0, {**before, "num_heldout_rows": 25}) == "verified"
    assert decide({**small, "heldout_accuracy": 0.77}, 0.0, {**before, "num_heldout_rows": 25}) == "incomplete"
    # without the check before the edit (or on other rows) nothing shows the model was kept: never "verified"
    for other in (None, {}, {**before, "num_heldout_rows": 300}):
        status, reason = decide_samples(base, 0.05, before=other)
        assert status == "unverified" and "before the edit" in reason


def test_read_rows_file(tmp_path):
    f = tmp_path / "rows.txt"
    f.write_text("# rows to forget\n3\n\n7  # a comment\n11\n")
    assert read_rows_file(f) == [3, 7, 11]
    f.write_text("b\nd\n")
    assert read_rows_file(f, ids=["a", "b", "c", "d"]) == [1, 3]
    with pytest.raises(ValueError, match="forget_rows.*line 1.*not a row index"):
        read_rows_file(f)
    f.write_text("zz\n")
    with pytest.raises(ValueError, match="forget_rows.*matches no row"):
        read_rows_file(f, ids=["a", "b"])
    f.write_text("a\n")
    with pytest.raises(ValueError, match="matches 2 rows"):
        read_rows_file(f, ids=["a", "a"])
    with pytest.raises(ValueError, match="does not exist"):
        read_rows_file(tmp_path / "missing.txt")


def test_rows_fingerprint_depends_on_content_not_order(memorised):
    base, ds, _, flipped, _ = memorised
    a = rows_fingerprint(base, ds.select(flipped))
    assert a == rows_fingerprint(base, ds.select(list(reversed(flipped))))
    assert a != rows_fingerprint(base, ds.select(flipped[:-1] + [flipped[-1] + 1]))
    assert len(a) == 64


def test_cli_forgets_rows_from_a_file_of_indices_ids_or_a_flag_column(memorised, tmp_path, capsys):
    from datasets import Dataset, DatasetDict

    from hf_unlearn.cli import main

    base, ds, test, flipped, noisy = memorised
    model_dir = tmp_path / "model"
    base.save_pretrained(model_dir)
    n = len(ds)
    data = DatasetDict(
        train=Dataset.from_dict(
            {
                "pixel_values": ds[:]["pixel_values"].tolist(),
                "labels": noisy.tolist(),
                "uid": [f"row-{i:04d}" for i in range(n)],
                "bad": [i in set(flipped) for i in range(n)],
            }
        ),
        test=Dataset.from_dict(
            {"pixel_values": test[:]["pixel_values"].tolist(), "labels": test[:]["labels"].tolist()}
        ),
    )
    data.save_to_disk(tmp_path / "data")
    (tmp_path / "rows.txt").write_text("\n".join(map(str, flipped)) + "\n")
    (tmp_path / "ids.txt").write_text("# mislabeled\n" + "\n".join(f"row-{i:04d}" for i in flipped) + "\n")
    common = ["forget", "--model_dir", model_dir, "--dataset", tmp_path / "data", "--forget_scope", "samples"]
    common += ["--method", "ssd", "--ssd_alpha", "50", "--allow_incomplete"]
    fingerprints = []
    for k, how in enumerate(
        (
            ["--forget_rows", tmp_path / "rows.txt"],
            ["--forget_rows", tmp_path / "ids.txt", "--id_column", "uid"],
            ["--forget_column", "bad"],
        )  # fmt: skip
    ):
        out = tmp_path / f"out{k}"
        assert main([str(a) for a in [*common, *how, "--output_dir", out]]) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out
        assert f"forgot {N_FLIPPED} training rows" in printed and "verification:" in printed
        report = json.loads((out / "unlearning_report.json").read_text())
        assert report["details"]["forget_rows"]["count"] == N_FLIPPED and report["forget_classes"] == []
        fingerprints.append(report["details"]["forget_rows"]["fingerprint"])
        text = (out / "unlearning_report.json").read_text() + (out / "README.md").read_text()
        assert "row-0" not in text and json.dumps(flipped) not in text
    assert fingerprints[0] == fingerprints[1] == fingerprints[2]

    def fails(*argv):
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        return err

    out = ["--output_dir", tmp_path / "bad"]
    assert "--forget_rows" in fails(*common, *out)  # no rows at all
    (tmp_path / "far.txt").write_text(f"3\n{n + 5}\n")
    assert "--forget_rows holds rows outside" in fails(*common, "--forget_rows", tmp_path / "far.txt", *out)
    (tmp_path / "dup.txt").write_text("3\n3\n")
    assert "--forget_rows names rows more than once" in fails(*common, "--forget_rows", tmp_path / "dup.txt", *out)
    assert "--forget_classes" in fails(*common, "--forget_column", "bad", "--forget_classes", "3", *out)
    classes_scope = [*common[:5], "--method", "ssd", "--forget_classes", "3"]
    assert "--forget_scope samples" in fails(*classes_scope, "--forget_column", "bad", *out)
    assert "--id_column" in fails(*common, "--forget_column", "bad", "--id_column", "uid", *out)
    assert "--forget_column" in fails(*common, "--forget_column", "nope", *out)
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def retrained(memorised):
    """Three tiny ViTs (seeds 0-2) trained on every row but the mislabeled ones: they never saw them."""
    from hf_unlearn.data import tiny_vit

    _, ds, _, flipped, noisy = memorised
    keep = split_rows(ds, flipped)[3]
    x, y = ds[:]["pixel_values"], noisy
    return [
        fit_images(tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, patch_size=4, seed=s), x[keep],
             y[keep], 300, seed=s)
        for s in range(3)
    ]  # fmt: skip


def test_audit_samples_against_retrained_models(memorised, retrained, digits):
    from hf_unlearn.audit import audit_samples

    base, ds, test, flipped, noisy = memorised
    train, _ = digits
    true = train[:N_TRAIN]["labels"][flipped].tolist()
    forget_ds = split_rows(ds, flipped)[0]
    before = _params(base)

    def patch(batch):  # a 2x2 bright patch in the top-left corner
        pv = batch["pixel_values"].clone()
        pv[:, :, :2, :2] = 1.0
        return {**batch, "pixel_values": pv}

    audit = audit_samples(
        base,
        forget_dataset=forget_ds,
        heldout_dataset=test,
        original=base,
        retrained=retrained,
        true_labels=true,
        backdoor=(patch, 0),
    )
    assert all(torch.equal(before[n], p) for n, p in base.named_parameters())  # nothing changed
    m = audit.metrics
    assert m["forget_label_rate"] >= 0.8 and audit.original == m  # the memorised wrong labels
    assert max(r["forget_label_rate"] for r in audit.retrained) <= 0.3  # retrained models never learned them
    assert audit.standing["forget_label_rate"].startswith("above by")
    assert audit.gap_to_retrained["forget_label_rate"] >= 0.5
    assert m["true_label_rate"] <= 0.2 and set(m["forget_loss"]) == {"mean", "q10", "q25", "q50", "q75", "q90"}
    assert audit.num_forget_rows == N_FLIPPED and audit.num_heldout_rows == len(test)
    assert set(audit.retrained_range["mia_auc"]) == {"min", "max", "mean"}
    # the attack success rate against the retrained references (the trigger given)
    asr = [r["attack_success_rate"] for r in audit.retrained]
    assert audit.retrained_range["attack_success_rate"]["mean"] == pytest.approx(float(np.mean(asr)))
    assert audit.gap_to_retrained["attack_success_rate"] == pytest.approx(m["attack_success_rate"] - np.mean(asr))
    assert audit.standing["attack_success_rate"]
    # the trigger as a callable or as a pre-stamped data set gives the same attack success rate
    stamped = patch({"pixel_values": test[:]["pixel_values"], "labels": test[:]["labels"]})
    again = audit_samples(base, forget_dataset=forget_ds, heldout_dataset=test, backdoor=(stamped, 0))
    assert again.metrics["attack_success_rate"] == m["attack_success_rate"]
    assert json.dumps(audit.to_dict())
    with pytest.raises(ValueError, match="true_labels"):
        audit_samples(base, forget_dataset=forget_ds, heldout_dataset=test, true_labels=true[:-1])
    with pytest.raises(ValueError, match="backdoor"):
        audit_samples(base, forget_dataset=forget_ds, heldout_dataset=test, backdoor=(patch, 10))
    with pytest.raises(ValueError, match="heldout_dataset"):
        audit_samples(base, forget_dataset=forget_ds, heldout_dataset=test.select([]))


def test_callback_that_does_not_forget_restores_the_model_at_train_end(memorised, tmp_path):
    """As a callback the check runs after the fine-tuning; when the rows still look like training rows, the whole
    model (fine-tuning included) goes back to its weights before the edit and training ends with the error."""
    from transformers import Trainer

    base, ds, test, _, noisy = memorised
    model = copy.deepcopy(base)
    with torch.no_grad():
        correct = model(pixel_values=ds[:]["pixel_values"]).logits.argmax(-1) == noisy
    rows = [int(i) for i in torch.nonzero(correct).flatten()[:60]]  # rows the model fits: accuracy 1 vs ~0.9
    forget_ds, retain_ds, _, _ = split_rows(ds, rows)
    before = _params(model)
    cfg = UnlearningConfig(method="fisher_noise", forget_scope="samples", method_config={"noise_alpha": 1e-12})
    unl = FisherUnlearner(cfg, forget_dataset=forget_ds, eval_dataset=test)
    args = _two_tiny_steps(tmp_path)
    with pytest.raises(UnlearningIncompleteError, match="held-out accuracy"):
        Trainer(model=model, args=args, train_dataset=retain_ds, callbacks=[unl]).train()
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert unl.report.details["verification"] == "incomplete"
    # without held-out rows nothing could ever verify it: refused before the edit and before any training step
    unl = FisherUnlearner(cfg, forget_dataset=forget_ds)
    with pytest.raises(ValueError, match="eval_dataset"):
        Trainer(model=model, args=args, train_dataset=retain_ds, callbacks=[unl]).train()
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_retain_rows_choose_the_retained_data(memorised):
    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    retain = [i for i in range(100) if i not in flipped]  # only these rows stand for the retained data
    cfg = UnlearningConfig(
        method="ssd", forget_scope="samples", allow_incomplete=True, method_config={"ssd_alpha": 50}
    )
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped, retain_rows=retain)
    batches = -(-(len(flipped) + len(retain)) // cfg.fisher_batch_size)  # SSD's full-data pass: forget + retain
    assert report.fisher_samples == {"forget_batches": 1, "full_batches": batches}
    assert report.details["forget_rows"]["count"] == N_FLIPPED


# ------------------------------------------------------------------------------------------ the recipe for rows
def _forward_counter(model):
    """Counts the forward passes the model makes in training mode (one per batch the recipe trains on)."""
    calls = {"train": 0}

    def hook(module, args, kwargs):
        if module.training:
            calls["train"] += 1

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    return calls, handle


def test_neggrad_plus_is_the_default_for_rows_and_removes_memorised_wrong_labels(memorised):
    """No method named in samples scope: the recipe (fine-tuning on the retained rows with forget-loss ascent) runs,
    the wrong labels go, the clean accuracy stays, and the check against held-out rows verifies it."""
    assert UnlearningConfig().method == "mnemonic"  # classes scope keeps its default
    cfg = UnlearningConfig(
        forget_scope="samples", method_config={"finetune_max_steps": 60, "finetune_learning_rate": 2e-3}
    )
    assert cfg.method == "neggrad_plus"
    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    wrong_before, acc_before = _wrong_label_rate(model, ds, flipped), _test_accuracy(model, test)
    assert wrong_before >= 0.8
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped, eval_dataset=test)
    assert report.method == "neggrad_plus" and report.details["verification"] == "verified"
    assert _wrong_label_rate(model, ds, flipped) <= min(0.3, wrong_before - 0.5)
    assert _test_accuracy(model, test) >= acc_before - 0.03
    assert report.details["steps"] == 60 and report.details["ascent_steps"] == 30
    assert report.details["ascent_target"] == "probe"  # wrong labels spread over the classes: not a backdoor
    assert not any(p.grad is not None for p in model.parameters()) and not model.training
    from hf_unlearn.methods import METHODS

    text = METHODS["neggrad_plus"].describe(report)
    assert "60 steps" in text and f"{N_FLIPPED} chosen training rows" in text


def test_neggrad_plus_budget_is_honoured(memorised, tmp_path):
    """The steps taken (training-mode forward passes counted, not wall time): a fraction of the original run's steps
    read from trainer_state.json, finetune_max_steps over it, the ascent on the first forget_ascent_fraction of the
    steps only, and finetune_max_seconds stopping the run."""
    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    state = {"max_steps": 200, "global_step": 200, "train_batch_size": 8, "log_history": [{"learning_rate": 1e-3}]}
    (tmp_path / "trainer_state.json").write_text(json.dumps(state))
    model.config._name_or_path = str(tmp_path)
    calls, handle = _forward_counter(model)
    try:
        cfg = UnlearningConfig(forget_scope="samples", allow_incomplete=True)  # 0.1 x 200 steps, half with ascent
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
        assert report.details["steps"] == 20 and report.details["ascent_steps"] == 10
        assert calls["train"] == 20 + 10  # one retained batch per step, one forget batch per ascent step
        assert report.hyperparameters["learning_rate"] == 1e-3 and report.hyperparameters["batch_size"] == 8
        assert "200 steps" in report.details["budget_source"]
        # no trainer_state.json: MnemonicTrainer's training_args.json recipe, 3 epochs over the 400 rows in batches of 40
        recipe = {"num_train_epochs": 3, "per_device_train_batch_size": 40, "learning_rate": 2e-3}
        (tmp_path / "trainer_state.json").unlink()
        (tmp_path / "training_args.json").write_text(json.dumps({"format": "x", "recipe": recipe}))
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
        assert report.details["steps"] == 3 and report.hyperparameters["batch_size"] == 40  # 0.1 x 3 x 10 steps
        assert report.hyperparameters["learning_rate"] == 2e-3
        calls["train"] = 0
        cfg = UnlearningConfig(
            forget_scope="samples",
            allow_incomplete=True,
            method_config={"finetune_max_steps": 7, "forget_ascent_fraction": 0.0},
        )
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
        assert report.details["steps"] == 7 and report.details["ascent_steps"] == 0 and calls["train"] == 7
        calls["train"] = 0
        cfg = UnlearningConfig(
            forget_scope="samples", allow_incomplete=True, method_config={"finetune_max_seconds": 1e-9}
        )
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
        assert report.details["steps"] == calls["train"] == 0 and "finetune_max_seconds" in report.details["stopped"]
    finally:
        handle.remove()
    for bad in (dict(finetune_fraction=0), dict(finetune_fraction=1.5), dict(forget_ascent_fraction=-0.1),
                dict(finetune_max_steps=0), dict(finetune_max_seconds=-1.0), dict(finetune_learning_rate=0.0)):  # fmt: skip
        with pytest.raises(ValueError, match=f"`{next(iter(bad))}`"):
            UnlearningConfig(forget_scope="samples", method_config=bad)
    with pytest.raises(ValueError, match="`forget_scope`"):  # rows only
        UnlearningConfig(method="neggrad_plus", forget_classes=[3])


def test_neggrad_plus_optimizer_is_trainers_default_fused_adamw_else_the_plain_one(memorised, monkeypatch):
    from hf_unlearn.methods import retain_finetune

    base, ds, _, flipped, _ = memorised
    made = []
    real = torch.optim.AdamW

    def spy(params, **kwargs):
        made.append(kwargs.get("fused"))
        if kwargs.get("fused") and refuse:
            raise RuntimeError(
                "`fused=True` requires all the params to be floating point Tensors of supported devices"
            )
        return real(params, **kwargs)

    monkeypatch.setattr(retain_finetune.torch.optim, "AdamW", spy)
    cfg = UnlearningConfig(forget_scope="samples", allow_incomplete=True, method_config={"finetune_max_steps": 2})
    for refuse in (False, True):
        made.clear()
        model = copy.deepcopy(base)
        FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
        assert made == ([True] if not refuse else [True, None])  # fused first; the plain one where refused
        assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), base.parameters()))  # it trained


def test_neggrad_plus_backpropagates_the_ascent_only_when_a_row_is_below_its_target(memorised, monkeypatch):
    """An ascent batch whose rows are all at or above their target adds exactly zero gradient: the recipe skips its
    backward (the forget rows' forward still runs), so only the retained batches are backpropagated."""
    from hf_unlearn.methods import retain_finetune

    base, ds, _, flipped, _ = memorised
    cfg = UnlearningConfig(
        forget_scope="samples",
        allow_incomplete=True,
        method_config={"finetune_max_steps": 6, "forget_ascent_target": "probe"},
    )
    for target, backpropagated in ((0.0, 6), (50.0, 6 + 3)):  # nobody below 0; everybody below 50 nats (chance)
        monkeypatch.setattr(
            retain_finetune, "probe_losses", lambda model, forget, *a, t=target, **k: torch.full((forget.n,), t)
        )
        model = copy.deepcopy(base)
        backward = {"calls": 0}

        def count(grad, backward=backward):
            backward["calls"] += 1

        def hook(module, args, output, count=count):
            if module.training and torch.is_grad_enabled():
                output.logits.register_hook(count)

        handle = model.register_forward_hook(hook)
        try:
            report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=flipped)
        finally:
            handle.remove()
        assert report.details["steps"] == 6 and report.details["ascent_steps"] == 3
        assert backward["calls"] == backpropagated


def test_neggrad_plus_probe_reads_the_checks_features_instead_of_running_the_model_again(memorised, monkeypatch):
    """With held-out rows, the check before the edit keeps the rows' inputs to the output layer: the probe reads the
    forget rows' from it and, with at least as many held-out rows as it would take of the retained ones (of every label
    the forget rows carry), is fitted on
    those (rows the model never saw), so the recipe makes no pass of its own over the model. The features are those a
    separate pass gives. Without held-out rows, or with more than the check keeps, the probe runs its own pass over
    retained and forget rows."""
    from hf_unlearn.data_utils import DatasetReader
    from hf_unlearn.methods import retain_finetune

    base, ds, test, flipped, _ = memorised
    forget_ds = split_rows(ds, flipped)[0]
    passes, seen = [], {}
    real_features, real_probe = retain_finetune.head_features, retain_finetune.probe_losses

    def counting_features(model, readers, collator):
        passes.append([reader.n for reader, _ in readers])
        return real_features(model, readers, collator)

    def spying_probe(*args, features=None, **kw):
        seen["features"] = features
        seen["targets"] = real_probe(*args, features=features, **kw)
        return seen["targets"]

    monkeypatch.setattr(retain_finetune, "head_features", counting_features)
    monkeypatch.setattr(retain_finetune, "probe_losses", spying_probe)
    cfg = UnlearningConfig(forget_scope="samples", allow_incomplete=True, method_config={"finetune_max_steps": 6})
    report = FisherUnlearner(cfg).unlearn(
        copy.deepcopy(base), train_dataset=ds, forget_rows=flipped, eval_dataset=test
    )
    assert (
        report.details["probe_fitted_on"] == "held-out" and passes == []
    )  # 64 probe rows wanted, the check measured len(test) held-out rows: no pass
    (x_f, y_f), (x_h, y_h) = seen["features"]["forget"], seen["features"]["heldout"]
    assert len(x_h) == len(test) >= 64 and y_f.tolist() == ds[flipped]["labels"].tolist()
    (x_f2, _), (x_h2, y_h2) = real_features(
        base,
        [
            (DatasetReader(forget_ds, base), list(range(len(flipped)))),
            (DatasetReader(test, base), list(range(len(test)))),
        ],
        None,
    )
    assert torch.allclose(x_f, x_f2, atol=1e-5) and torch.allclose(x_h, x_h2, atol=1e-5) and torch.equal(y_h, y_h2)
    # the probe fitted on held-out rows: a mislabeled row's label is far less likely than an ordinary row's would be
    assert float(seen["targets"].mean()) > 1.0 and torch.isfinite(seen["targets"]).all()
    # no held-out rows: the probe's own pass, over 64 retained rows and the 10 forget rows
    report = FisherUnlearner(cfg).unlearn(copy.deepcopy(base), train_dataset=ds, forget_rows=flipped)
    assert passes == [[N_TRAIN - N_FLIPPED, N_FLIPPED]] and seen["features"] is None
    assert report.details["probe_fitted_on"] == "retained"
    # held-out rows lacking a class that a forget row carries: the probe could not score that row; retained rows
    label = int(ds[flipped[0]]["labels"])
    lacking = test.select([i for i, y in enumerate(test[:]["labels"].tolist()) if y != label])
    passes.clear()
    report = FisherUnlearner(cfg).unlearn(
        copy.deepcopy(base), train_dataset=ds, forget_rows=flipped, eval_dataset=lacking
    )
    assert report.details["probe_fitted_on"] == "retained" and passes == [[N_TRAIN - N_FLIPPED]]
    assert torch.isfinite(seen["targets"]).all()
    # more features than the pass keeps (a large held-out set): none kept, and the probe runs its own pass
    from hf_unlearn import evaluation

    monkeypatch.setattr(evaluation, "FEATURE_FLOATS_MAX", 100)
    passes.clear()
    report = FisherUnlearner(cfg).unlearn(
        copy.deepcopy(base), train_dataset=ds, forget_rows=flipped, eval_dataset=test
    )
    assert report.details["probe_fitted_on"] == "retained" and seen["features"] == {}
    assert passes == [[N_TRAIN - N_FLIPPED, N_FLIPPED]]


def test_neggrad_plus_as_a_callback(memorised, tmp_path):
    """The recipe runs in on_train_begin on the trainer's train set (the retained rows); checked at train end."""
    from transformers import Trainer

    base, ds, test, flipped, _ = memorised
    model = copy.deepcopy(base)
    forget_ds, retain_ds, _, _ = split_rows(ds, flipped)
    cfg = UnlearningConfig(
        forget_scope="samples", method_config={"finetune_max_steps": 60, "finetune_learning_rate": 2e-3}
    )
    unl = FisherUnlearner(cfg, forget_dataset=forget_ds, eval_dataset=test)
    Trainer(model=model, args=_two_tiny_steps(tmp_path), train_dataset=retain_ds, callbacks=[unl]).train()
    model.eval()
    assert unl.report.method == "neggrad_plus" and unl.report.details["verification"] == "verified"
    assert _wrong_label_rate(model, ds, flipped) <= 0.3


def test_cli_forgets_rows_with_the_recipe_when_no_method_is_named(memorised, tmp_path, capsys):
    from datasets import Dataset, DatasetDict

    from hf_unlearn.cli import main

    base, ds, test, flipped, noisy = memorised
    model_dir = tmp_path / "model"
    base.save_pretrained(model_dir)
    (model_dir / "trainer_state.json").write_text(json.dumps({"max_steps": 400, "train_batch_size": 32}))
    DatasetDict(
        train=Dataset.from_dict({"pixel_values": ds[:]["pixel_values"].tolist(), "labels": noisy.tolist()}),
        test=Dataset.from_dict({"pixel_values": test[:]["pixel_values"].tolist(), "labels": test[:]["labels"].tolist()}),
    ).save_to_disk(tmp_path / "data")  # fmt: skip
    (tmp_path / "rows.txt").write_text("\n".join(map(str, flipped)) + "\n")
    out = tmp_path / "out"
    argv = ["forget", "--model_dir", model_dir, "--dataset", tmp_path / "data", "--forget_scope", "samples"]
    argv += ["--forget_rows", tmp_path / "rows.txt", "--finetune_learning_rate", "2e-3", "--output_dir", out]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    report = json.loads((out / "unlearning_report.json").read_text())
    assert report["method"] == "neggrad_plus" and report["details"]["steps"] == 40  # 0.1 x 400
    assert report["details"]["verification"] == "verified"


# ---------------------------------------------------------------- one-shot edits: strength from the held-out rows
@pytest.mark.parametrize("method", ["fisher_mask", "ssd", "fisher_noise"])
def test_one_shot_edits_of_rows_pass_the_held_out_bound_or_refuse_bit_identical(memorised, method):
    """Rows the model gets right (accuracy 1, above the held-out accuracy): each one-shot method, at its default
    strength as the top of the ladder, either finds a strength that the held-out check verifies (held-out accuracy
    kept within its bound) or refuses, with the model bit-identical."""
    base, ds, test, flipped, noisy = memorised
    model = copy.deepcopy(base)
    with torch.no_grad():
        correct = model(pixel_values=ds[:]["pixel_values"]).logits.argmax(-1) == noisy
    rows = [int(i) for i in torch.nonzero(correct).flatten()[:60]]
    before = _params(model)
    cfg = UnlearningConfig(method=method, forget_scope="samples")
    try:
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=rows, eval_dataset=test)
    except UnlearningIncompleteError as err:
        assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
        search = err.report.details["strength_search"]
        assert search["chosen"] is None and search["tried"] and "left as it was" in search["reason"]
        return
    search = report.details["strength_search"]
    assert report.details["verification"] == "verified" and search["chosen"] == search["tried"][-1][search["field"]]
    was, now = report.metrics["before"]["heldout_accuracy"], report.metrics["after"]["heldout_accuracy"]
    assert was - now <= max(cfg.verification_tolerance, 2 * (was * (1 - was) / len(test)) ** 0.5)
    assert report.hyperparameters[search["field"]] == search["chosen"]


def test_strength_search_refuses_a_too_weak_ladder_and_restores_the_model(memorised):
    """A ladder whose strongest rung cannot make rows the model fits look held-out: refused, model bit-identical,
    every rung recorded; strength_search=False runs the configured strength once."""
    base, ds, test, flipped, noisy = memorised
    model = copy.deepcopy(base)
    with torch.no_grad():
        correct = model(pixel_values=ds[:]["pixel_values"]).logits.argmax(-1) == noisy
    rows = [int(i) for i in torch.nonzero(correct).flatten()[:60]]
    before = _params(model)
    cfg = UnlearningConfig(method="fisher_noise", forget_scope="samples", method_config={"noise_alpha": 1e-8})
    with pytest.raises(UnlearningIncompleteError, match="noise_alpha") as err:
        FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=rows, eval_dataset=test)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    search = err.value.report.details["strength_search"]
    assert [t["noise_alpha"] for t in search["tried"]] == [1e-9, 1e-8] and search["chosen"] is None
    assert cfg.method_config.noise_alpha == 1e-8  # the user's config is not changed by the search
    cfg = UnlearningConfig(
        method="fisher_noise",
        forget_scope="samples",
        strength_search=False,
        allow_incomplete=True,
        method_config={"noise_alpha": 1e-8},
    )
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=rows, eval_dataset=test)
    assert "strength_search" not in report.details and report.hyperparameters["alpha"] == 1e-8


def test_poison_target_finds_rows_relabelled_to_one_class():
    """'auto' pushes rows to chance only when their labels are concentrated on one class beyond what rows drawn like
    the retained ones would show (a backdoor's target class); a deletion request or mislabeled rows are not."""
    from hf_unlearn.methods.retain_finetune import poison_target

    rng = np.random.default_rng(0)
    retain = rng.integers(0, 10, 1000)
    assert poison_target(np.zeros(20, dtype=int), retain) == 0
    assert poison_target(np.r_[np.full(12, 3), rng.integers(0, 10, 8)], retain) == 3
    assert poison_target(rng.integers(0, 10, 60), retain) is None  # random rows
    assert poison_target(np.zeros(2, dtype=int), retain) is None  # too few rows to tell
    skewed = np.r_[np.zeros(900, dtype=int), rng.integers(0, 10, 100)]  # class 0 is most of the data anyway
    assert poison_target(np.r_[np.zeros(18, dtype=int), [1, 2]], skewed) is None


def test_heldout_targets_give_forget_rows_the_held_out_losses_in_the_probe_s_order():
    """Each forget row's target is the held-out loss of the same rank: the row the probe finds hardest gets the
    highest quantile, and the targets are distributed like the held-out losses."""
    from hf_unlearn.methods.retain_finetune import heldout_targets

    losses = torch.linspace(0.0, 4.0, 401)
    ranking = torch.tensor([0.3, 2.0, 0.1, 0.9])
    targets = heldout_targets(None, None, ranking, None, seed=0, losses=losses)
    assert torch.equal(torch.argsort(targets), torch.argsort(ranking))
    assert torch.allclose(targets.sort().values, torch.quantile(losses, torch.tensor([0.125, 0.375, 0.625, 0.875])))


def test_neggrad_plus_heldout_targets_come_from_the_held_out_rows_measured_before_the_edit(memorised, monkeypatch):
    """forget_ascent_target="heldout" pushes each row towards a held-out row's loss, read from the check the scope
    makes before the edit (no second pass over the held-out rows); without eval_dataset it falls back to the probe
    and says so; "auto" keeps the probe."""
    from hf_unlearn.methods import METHODS, retain_finetune

    base, ds, test, _, noisy = memorised
    rows = list(range(0, 400, 20))  # ordinary rows: a deletion request
    seen = {}
    original = retain_finetune.heldout_targets

    def spy(model, heldout, ranking, collator, *, seed, losses=None, **kw):
        seen["losses"] = losses
        return original(model, heldout, ranking, collator, seed=seed, losses=losses, **kw)

    monkeypatch.setattr(retain_finetune, "heldout_targets", spy)

    def run(target, **inputs):
        settings = {"finetune_max_steps": 4, "forget_ascent_target": target}
        cfg = UnlearningConfig(forget_scope="samples", allow_incomplete=True, method_config=settings)
        return FisherUnlearner(cfg).unlearn(copy.deepcopy(base), train_dataset=ds, forget_rows=rows, **inputs)

    report = run("heldout", eval_dataset=test)
    assert report.details["ascent_target"] == "heldout" and "held-out rows" in METHODS["neggrad_plus"].describe(report)
    assert seen["losses"] is not None and len(seen["losses"]) == len(test)
    ranking = torch.arange(len(rows), dtype=torch.float)  # without measured losses it reads the held-out rows itself
    assert torch.allclose(
        original(base, test, ranking, None, seed=0), original(None, None, ranking, None, seed=0, losses=seen["losses"])
    )
    probe_target = run("probe", eval_dataset=test).details["mean_ascent_target"]
    assert report.details["mean_ascent_target"] >= probe_target  # at least the probe's, row by row
    seen.clear()
    report = run("heldout")
    assert report.details["ascent_target"] == "probe" and not seen  # nothing held out to read: the probe
    assert "linear probe" in METHODS["neggrad_plus"].describe(report)
    assert run("auto", eval_dataset=test).details["ascent_target"] == "probe" and not seen
