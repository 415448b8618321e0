"""audit_forgetting: depth tests that tell a forgotten class from a hidden one, on tiny offline models.

The synthetic task: 8x8 one-channel images, four classes. Classes 0-2 are three fixed random +-1 patterns plus
noise; a class-3 image is the pattern of a random one of classes 0-2 with a bright 3x3 corner mark. A model trained
on all four classes learns the mark (class 3 has its own direction in the features); a model trained without class
3 never does, so its class-3 images fall among the other classes' features. Lowering class 3's output bias hides the
class from the output but leaves every feature as it was.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from hf_unlearn.audit import ForgettingAudit, audit_forgetting
from hf_unlearn.data import tiny_vit

FORGET = 3
FAST = dict(relearn_steps=(1, 3), show_progress=False)  # cheap settings for tests that do not read relearn numbers


def synthetic(n: int, seed: int):
    from datasets import Dataset

    templates = np.random.default_rng(1234).choice([-1.0, 1.0], size=(4, 8, 8)).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    base = np.where(labels == FORGET, rng.integers(0, 3, n), labels)
    x = templates[base] + rng.normal(0, 0.8, (n, 8, 8)).astype(np.float32)
    x[labels == FORGET, :3, :3] += 2.5
    return Dataset.from_dict({"pixel_values": x[:, None].tolist(), "labels": labels.tolist()}).with_format("torch")


def train(ds, seed: int, epochs: int = 8):
    model = tiny_vit(num_labels=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=seed)
    plain = ds.with_format(None)
    x, y = torch.tensor(plain["pixel_values"]), torch.tensor(plain["labels"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), 32):
            b = perm[i : i + 32]
            loss = torch.nn.functional.cross_entropy(model(pixel_values=x[b]).logits, y[b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def rows_of(ds, keep) -> list[int]:
    return [i for i, label in enumerate(ds.with_format(None)["labels"]) if keep(label)]


def suppress(model, forget_ds):
    """The trivial baseline: lower the class's output bias just enough that none of its training samples wins."""
    from hf_unlearn.methods import METHODS

    model = copy.deepcopy(model)
    if "logit_suppression" in METHODS:
        from hf_unlearn import FisherUnlearner, UnlearningConfig

        FisherUnlearner(UnlearningConfig(method="logit_suppression", forget_classes=[FORGET])).unlearn(
            model, forget_dataset=forget_ds
        )
        return model
    with torch.no_grad():
        logits = model(pixel_values=forget_ds["pixel_values"]).logits
        others = logits.clone()
        others[:, FORGET] = float("-inf")
        model.classifier.bias[FORGET] -= float((logits[:, FORGET] - others.max(1).values).max()) + 0.01
    return model


@pytest.fixture(scope="module")
def task():
    torch.set_num_threads(1)
    train_ds, eval_ds = synthetic(400, 0), synthetic(200, 1)
    original = train(train_ds, 0)
    retain_ds = train_ds.select(rows_of(train_ds, lambda label: label != FORGET))
    retrained = [train(retain_ds, seed) for seed in (1, 2)]
    suppressed = suppress(original, train_ds.select(rows_of(train_ds, lambda label: label == FORGET)))
    return dict(train=train_ds, eval=eval_ds, original=original, retrained=retrained, suppressed=suppressed)


@pytest.fixture(scope="module")
def suppressed_audit(task):
    return audit_forgetting(
        task["suppressed"],
        forget_classes=[FORGET],
        train_dataset=task["train"],
        eval_dataset=task["eval"],
        original=task["original"],
        retrained=task["retrained"],
        show_progress=False,
    )


def test_suppressed_output_reads_as_hidden_not_forgotten(task, suppressed_audit):
    audit = suppressed_audit
    m, orig, ret = audit.metrics, audit.original, audit.retrained
    assert len(ret) == 2
    # the output says "forgotten" ...
    assert m["forget_error"] >= 0.95 and orig["forget_error"] <= 0.3
    # ... but the features are the original's: probe and prototype read exactly what they read on the original
    assert m["probe_forget_accuracy"] == orig["probe_forget_accuracy"] >= 0.9
    assert m["prototype_forget_accuracy"] == orig["prototype_forget_accuracy"] >= 0.8
    assert m["relearn_forget_accuracy"][10] >= 0.8 and orig["relearn_forget_accuracy"][1] >= 0.9
    # models retrained without the class read far lower on every depth test
    for r in ret:
        assert r["forget_error"] == 1.0
        assert r["probe_forget_accuracy"] <= orig["probe_forget_accuracy"] - 0.3
        assert r["prototype_forget_accuracy"] <= 0.3
        assert r["relearn_forget_accuracy"][10] <= 0.3
        assert r["relearn_time"] > m["relearn_time"]
    # standing against the retrained range
    assert audit.standing["forget_error"] == "within" or audit.standing["forget_error"].startswith("below by")
    for key in ("probe_forget_accuracy", "prototype_forget_accuracy", "relearn_forget_accuracy@10"):
        assert audit.standing[key].startswith("above by"), key
        gap = float(audit.standing[key].split()[-1])
        assert gap == pytest.approx(
            (m[key] if "@" not in key else m["relearn_forget_accuracy"][10]) - audit.retrained_range[key]["max"],
            abs=1e-3,
        )
    assert m["ain"] < 1.0  # relearns faster than the retrained models learn
    assert audit.relearn_threshold == pytest.approx(0.95 * orig["forget_accuracy"])
    # JS: the suppressed model's softmax is further from the retrained models' than they are from each other
    assert audit.js_retrained_reference is not None and m["js_to_retrained"] > audit.js_retrained_reference
    json.loads(json.dumps(audit.to_dict()))  # JSON-serialisable
    table = audit.to_markdown()
    assert "prototype attack" in table and "above by" in table


def test_mia_is_evaluations_attack(task, suppressed_audit):
    """The audit's MIA comes from its cached logits; it must equal hf_unlearn.evaluation's attack on the same model."""
    from hf_unlearn.evaluation import mia_auc_on_forget

    for model, metrics in (
        (task["suppressed"], suppressed_audit.metrics),
        (task["retrained"][1], suppressed_audit.retrained[1]),
    ):
        expected = mia_auc_on_forget(model, task["train"], task["eval"], [FORGET])
        assert metrics["mia_auc"] == pytest.approx(expected, abs=1e-9)


def test_reference_reuses_the_retrained_measurements(task, suppressed_audit):
    again = audit_forgetting(
        task["suppressed"],
        forget_classes=[FORGET],
        train_dataset=task["train"],
        eval_dataset=task["eval"],
        reference=suppressed_audit,
        show_progress=False,
    )
    assert again.metrics == suppressed_audit.metrics
    assert again.standing == suppressed_audit.standing
    assert again.retrained == suppressed_audit.retrained
    assert again.timings["retrained"] == []
    with pytest.raises(ValueError, match="`reference`"):
        audit_forgetting(
            task["suppressed"],
            forget_classes=[FORGET],
            train_dataset=task["train"],
            eval_dataset=task["eval"],
            reference=suppressed_audit,
            seed=1,
            show_progress=False,
        )


def test_audit_never_changes_the_models(task):
    model = copy.deepcopy(task["original"])
    model.train()
    model.vit.embeddings.requires_grad_(False)
    model.classifier.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = {n: m.training for n, m in model.named_modules()}
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    original_before = {k: v.clone() for k, v in task["original"].state_dict().items()}
    audit_forgetting(
        model,
        forget_classes=[FORGET],
        train_dataset=task["train"],
        eval_dataset=task["eval"],
        original=task["original"],
        show_progress=False,
    )
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads
    assert all(p.grad is None for p in model.parameters())
    assert not model.classifier._forward_pre_hooks  # the feature hook is gone
    assert all(torch.equal(v, task["original"].state_dict()[k]) for k, v in original_before.items())


def test_same_seed_same_numbers(task):
    kw = dict(forget_classes=[FORGET], train_dataset=task["train"], eval_dataset=task["eval"], **FAST)
    a = audit_forgetting(task["original"], seed=0, **kw).to_dict()
    b = audit_forgetting(task["original"], seed=0, **kw).to_dict()
    c = audit_forgetting(task["original"], seed=1, **kw).to_dict()
    for d in (a, b, c):
        d.pop("timings")
    assert a == b
    assert a["settings"]["rows_fingerprint"] != c["settings"]["rows_fingerprint"]  # other shots and relearn batch


def test_bert_with_collator(tiny_bert, keyword_text, tiny_tokenizer):
    from transformers import DataCollatorWithPadding

    train_ds, eval_ds = keyword_text
    before = {k: v.clone() for k, v in tiny_bert.state_dict().items()}
    audit = audit_forgetting(
        tiny_bert,
        forget_classes=[2],
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=DataCollatorWithPadding(tiny_tokenizer),
        relearn_steps=(2,),
        show_progress=False,
    )
    assert isinstance(audit, ForgettingAudit)
    assert set(audit.metrics["relearn_forget_accuracy"]) == {2} and len(audit.metrics["relearn_curve"]) == 3
    for key in ("probe_forget_accuracy", "prototype_forget_accuracy", "mia_auc", "forget_error"):
        assert 0.0 <= audit.metrics[key] <= 1.0
    assert audit.original is None and audit.retrained == [] and audit.standing == {}
    assert audit.settings["num_probe_samples"] == len(train_ds)
    # rows are fed sorted by length (less padding); the numbers must be those of the model in the data's order
    from hf_unlearn.evaluation import mia_auc_on_forget, unlearning_metrics

    collator = DataCollatorWithPadding(tiny_tokenizer)
    expected = unlearning_metrics(tiny_bert, eval_ds, [2], data_collator=collator)
    for key in ("forget_error", "retain_accuracy", "test_accuracy"):
        assert audit.metrics[key] == pytest.approx(expected[key], abs=1e-12), key
    mia = mia_auc_on_forget(tiny_bert, train_ds, eval_ds, [2], data_collator=collator)
    assert audit.metrics["mia_auc"] == pytest.approx(mia, abs=1e-6)
    assert all(torch.equal(v, tiny_bert.state_dict()[k]) for k, v in before.items())


def test_head_input_is_what_the_classifier_sees(task):
    """The hooked features times the head's weights give the model's logits (the hook caught the right tensor)."""
    from hf_unlearn.audit.measures import _features, _prepare_data

    model = task["original"]
    data = _prepare_data(task["train"], task["eval"], [FORGET], 4, 0, 5, 16, 16, None, None)
    feats, logits = _features(model, data, range(20), "eval_dataset", None, 8, False, "")
    recomputed = torch.from_numpy(feats) @ model.classifier.weight.T + model.classifier.bias
    torch.testing.assert_close(recomputed.detach(), torch.from_numpy(logits), rtol=1e-5, atol=1e-5)


class _OtherRank:
    is_main_process = False


def test_other_ranks_return_none(task):
    out = audit_forgetting(
        task["original"],
        forget_classes=[FORGET],
        train_dataset=task["train"],
        eval_dataset=task["eval"],
        accelerator=_OtherRank(),
    )
    assert out is None


def test_bad_input_is_refused_naming_the_argument(task):
    from transformers import ViTConfig, ViTModel

    kw = dict(forget_classes=[FORGET], train_dataset=task["train"], eval_dataset=task["eval"], **FAST)
    model = task["original"]
    no_forget = task["train"].select(rows_of(task["train"], lambda label: label != FORGET))
    cases = [
        (dict(train_dataset=no_forget), "`train_dataset` holds no sample of the forget class"),
        (dict(eval_dataset=task["eval"].select([])), "`eval_dataset` is empty"),
        (dict(forget_classes=[]), "`forget_classes` is empty"),
        (dict(forget_classes=["seven"]), "`forget_classes` names an unknown class"),
        (dict(forget_classes=[7]), "`forget_classes` holds class id 7"),
        (dict(forget_classes=[0, 1, 2, 3]), "`forget_classes` names every class"),
        (dict(relearn_steps=(0,)), "`relearn_steps`"),
        (dict(relearn_lr=-1.0), "`relearn_lr`"),
        (dict(retrained=[tiny_vit(num_labels=5, hidden_size=32, num_hidden_layers=1)]), "`retrained\\[0\\]` has 5"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            audit_forgetting(model, **{**kw, **overrides})
    # label mismatch: ten-class labels for a four-class model
    relabelled = task["eval"].map(lambda row: {"labels": row["labels"] + 6})
    with pytest.raises(ValueError, match="`eval_dataset` holds labels in \\[6, 9\\].*label mismatch"):
        audit_forgetting(model, **{**kw, "eval_dataset": relabelled})
    # a model without a classification head
    encoder = ViTModel(
        ViTConfig(
            image_size=8,
            patch_size=2,
            num_channels=1,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=4,
        )
    )
    with pytest.raises(ValueError, match="`model` .*has no classification head"):
        audit_forgetting(encoder, **kw)
    with pytest.raises(ValueError, match="`original` .*has no classification head"):
        audit_forgetting(model, original=encoder, **kw)
    with pytest.raises(ValueError, match="`model` must be a torch model"):
        audit_forgetting("not a model", **kw)


def test_cli_audit_prints_the_table_and_writes_json(capsys, tmp_path):
    from hf_unlearn.cli import main

    dirs = {}
    for name, seed in (("model", 0), ("original", 1), ("r0", 2), ("r1", 3)):
        dirs[name] = tmp_path / name
        tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=seed).save_pretrained(dirs[name])
    out = tmp_path / "audit" / "forgetting_audit.json"
    common = ["--dataset", "digits", "--max_train_samples", "300", "--max_eval_samples", "150"]
    argv = ["audit", "--model_dir", str(dirs["model"]), "--forget_classes", "3", "--original", str(dirs["original"]),
            "--retrained", str(dirs["r0"]), str(dirs["r1"]), "--relearn_steps", "1", "2", "--output_file", str(out),
            *common]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "prototype attack" in printed and "retrained (min-max)" in printed and str(out) in printed
    record = json.loads(out.read_text())
    assert record["forget_labels"] == ["3"] and len(record["retrained"]) == 2 and record["original"] is not None
    assert set(record["metrics"]["relearn_forget_accuracy"]) == {"1", "2"}
    assert record["model_dir"] == str(dirs["model"]) and "digits" in record["dataset"]
    assert "probe_forget_accuracy" in record["standing"] and record["js_retrained_reference"] is not None
    # bad input: one line on stderr naming the flag, exit status 2, nothing written
    for bad, message in (
        (["--forget_classes", "12"], "--forget_classes"),
        (["--forget_classes", "3", "--retrained", str(tmp_path)], "--retrained"),
        (["--forget_classes", "3", "--relearn_steps", "0"], "relearn_steps"),
    ):
        target = tmp_path / "bad.json"
        code = main(["audit", "--model_dir", str(dirs["model"]), *bad, "--output_file", str(target), *common])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not target.exists()


def test_unlearner_audit_goes_into_report_file_and_card(task, tmp_path):
    from hf_unlearn import FisherUnlearner, UnlearningConfig

    model = copy.deepcopy(task["original"])
    forget_ds = task["train"].select(rows_of(task["train"], lambda label: label == FORGET))
    unlearner = FisherUnlearner(UnlearningConfig(method="logit_suppression", forget_classes=[FORGET]))
    unlearner.unlearn(model, forget_dataset=forget_ds)
    assert unlearner.report.audit is None
    result = unlearner.audit(
        model, train_dataset=task["train"], eval_dataset=task["eval"], retrained=task["retrained"], **FAST
    )
    assert unlearner.report.audit == result.to_dict()
    assert unlearner.report.audit["metrics"]["forget_error"] == pytest.approx(result.metrics["forget_error"])
    folder = unlearner.save_pretrained(tmp_path / "out", model)
    saved = json.loads((tmp_path / "out" / "unlearning_report.json").read_text())
    assert saved["audit"]["metrics"]["probe_forget_accuracy"] == pytest.approx(result.metrics["probe_forget_accuracy"])
    card = (tmp_path / "out" / "README.md").read_text()
    depth = card.split("## How deep is the forgetting?")[1]
    assert "not measured" not in depth[:400] and "probe" in depth.lower()
    assert folder


# ---------------------------------------------------------------------------------------- indistinguishability
@pytest.fixture(scope="module")
def third_retrained(task):
    retain_ds = task["train"].select(rows_of(task["train"], lambda label: label != FORGET))
    return train(retain_ds, 3)


def test_reset_relearn_ignores_the_head_trick(task, suppressed_audit):
    """Resetting the forgotten head rows before relearning undoes the bias trick: the bias-lowered model relearns
    exactly as the original does, far above the retrained models (the plain relearn test already differs at step 1)."""
    m, orig, ret = suppressed_audit.metrics, suppressed_audit.original, suppressed_audit.retrained
    for metrics in (m, orig, *ret):
        assert set(metrics["reset_relearn_forget_accuracy"]) == {1, 3, 10}
        assert metrics["reset_relearn_start_accuracy"] == 0.0  # a reset row never wins
    assert m["reset_relearn_forget_accuracy"][10] == pytest.approx(orig["reset_relearn_forget_accuracy"][10], abs=0.02)
    assert m["relearn_forget_accuracy"][1] < orig["relearn_forget_accuracy"][1] - 0.5  # the plain test is fooled early
    best_retrained = max(r["reset_relearn_forget_accuracy"][10] for r in ret)
    assert m["reset_relearn_forget_accuracy"][10] >= best_retrained + 0.3
    two = suppressed_audit.two_sided["reset_relearn_forget_accuracy@10"]
    assert two["verdict"].startswith("above by") and "hidden, not forgotten" in two["verdict"]
    assert suppressed_audit.standing["reset_relearn_forget_accuracy@10"].startswith("above by")
    assert suppressed_audit.indistinguishable is False
    assert "head rows reset" in suppressed_audit.to_markdown()


def test_distinguisher_tells_an_output_offset_from_retraining(task, third_retrained):
    """A retrained model audited against two others is near chance; the same model with a constant offset on the
    forgotten class's output bias keeps every feature (probe, prototype, reset relearn unchanged) but its outputs
    give it away. The distinguisher is tested on another retrained model and on inputs it was not fitted on."""
    from hf_unlearn.audit.measures import distinguisher_split

    kw = dict(forget_classes=[FORGET], train_dataset=task["train"], eval_dataset=task["eval"], show_progress=False)
    reference = audit_forgetting(third_retrained, retrained=task["retrained"], relearn_steps=(10,), **kw)
    offset = copy.deepcopy(third_retrained)
    with torch.no_grad():
        offset.classifier.bias[FORGET] -= 6.0
    edited = audit_forgetting(offset, reference=reference, relearn_steps=(10,), **kw)
    plain, shifted = reference.metrics, edited.metrics
    assert plain["distinguisher_accuracy"] <= 0.7  # a retrained model among retrained models: near chance
    assert shifted["distinguisher_accuracy"] >= 0.9
    two = edited.two_sided["distinguisher_accuracy"]
    assert two["high"] == pytest.approx(reference.distinguisher_reference + 0.1)
    assert two["verdict"].startswith("above by") and edited.indistinguishable is False
    for key in ("probe_forget_accuracy", "prototype_forget_accuracy"):
        assert shifted[key] == plain[key], key
    assert shifted["reset_relearn_forget_accuracy"] == plain["reset_relearn_forget_accuracy"]
    # the per-reference numbers (leave-one-out, one other reference: same pair of models on held-out inputs)
    assert all(0.0 <= r["distinguisher_accuracy"] <= 1.0 for r in reference.retrained)
    assert reference.distinguisher_reference_protocol == "one reference, held-out inputs"
    # train and test inputs are disjoint halves
    tr, te = distinguisher_split(101, 0)
    assert not set(tr) & set(te) and len(tr) + len(te) == 101
    # one retrained model: no distinguisher
    single = audit_forgetting(offset, retrained=task["retrained"][:1], relearn_steps=(1,), **kw)
    assert single.metrics["distinguisher_accuracy"] is None and single.distinguisher_reference is None


def test_two_sided_verdicts():
    """Within mean +- max(2 std, tolerance); below the range is flagged as well as above."""
    from hf_unlearn.audit.measures import _two_sided

    values = [0.50, 0.52, 0.54]  # std 0.02: half-width max(0.04, 0.03) = 0.04 around 0.52
    inside = _two_sided(0.55, values, 0.03, "kept", "recognisable as edited")
    assert inside["verdict"] == "within" and inside["low"] == pytest.approx(0.48) and inside["high"] == 0.56
    low = _two_sided(0.40, values, 0.03, "kept", "recognisable as edited")
    assert low["verdict"].startswith("below by 0.080") and "recognisable as edited" in low["verdict"]
    assert _two_sided(0.60, [0.5], 0.03, "kept", "edited")["verdict"].startswith("above by 0.070")
    assert _two_sided(None, values, 0.03, "a", "b") is None and _two_sided(0.5, [None], 0.03, "a", "b") is None


def _drop_label(model, forget: int, order: list[int]):
    """``model`` as if retrained without ``forget``'s label: its head keeps the other rows, in ``order`` (ids
    shifted), with their label names."""
    out = copy.deepcopy(model)
    old = model.classifier
    head = torch.nn.Linear(old.in_features, len(order))
    with torch.no_grad():
        head.weight.copy_(old.weight[order])
        head.bias.copy_(old.bias[order])
    out.classifier = head
    names = {i: model.config.id2label[c] for i, c in enumerate(order)}
    out.config.num_labels = len(order)
    out.config.id2label, out.config.label2id = names, {v: k for k, v in names.items()}
    out.num_labels = len(order)
    assert forget not in order
    return out


def test_references_that_dropped_the_label_are_matched_by_name(task, suppressed_audit):
    """A reference retrained with three labels (class 3 dropped, ids shifted) is accepted and matched by label
    names; its depth measures are those of the same model with the full label space."""
    dropped = [_drop_label(r, FORGET, [2, 0, 1]) for r in task["retrained"]]
    audit = audit_forgetting(
        task["suppressed"],
        forget_classes=[FORGET],
        train_dataset=task["train"],
        eval_dataset=task["eval"],
        original=task["original"],
        retrained=dropped,
        show_progress=False,
    )
    assert audit.retrained_label_spaces == ["dropped ['3'] (matched by label names)"] * 2
    assert "renormalised over the retained classes" in audit.output_comparison
    assert suppressed_audit.retrained_label_spaces == ["full", "full"]
    for got, full in zip(audit.retrained, suppressed_audit.retrained, strict=True):
        assert got["forget_error"] == 1.0
        assert got["probe_forget_accuracy"] == pytest.approx(full["probe_forget_accuracy"], abs=1e-9)
        assert got["prototype_forget_accuracy"] == pytest.approx(full["prototype_forget_accuracy"], abs=1e-9)
        assert got["retain_accuracy"] == pytest.approx(full["retain_accuracy"], abs=1e-9)
        for k in (1, 3, 10):
            assert got["reset_relearn_forget_accuracy"][k] == pytest.approx(
                full["reset_relearn_forget_accuracy"][k], abs=0.04
            )
    assert audit.standing["probe_forget_accuracy"].startswith("above by")
    assert all(r.config.num_labels == 3 for r in dropped)  # the given models are not changed
    # refused: a reference lacking a retained class, or without label names to match by
    kw = dict(forget_classes=[FORGET], train_dataset=task["train"], eval_dataset=task["eval"], **FAST)
    lacks_retained = _drop_label(task["retrained"][0], 0, [1, 2, 3])
    with pytest.raises(ValueError, match="`retrained\\[0\\]` has 3 labels but `model` has 4; .*lacks retained"):
        audit_forgetting(task["suppressed"], retrained=[lacks_retained], **kw)
    unnamed = copy.deepcopy(dropped[0])
    unnamed.config.id2label = {i: f"LABEL_{i}" for i in range(3)}
    with pytest.raises(ValueError, match="`retrained\\[0\\]` has 3 labels .*no label names"):
        audit_forgetting(task["suppressed"], retrained=[unnamed], **kw)


def test_one_membership_inference_auc():
    """The AUC of the evaluation module, the samples verification and the audit is one function."""
    from sklearn.metrics import roc_auc_score

    from hf_unlearn import evaluation, samples
    from hf_unlearn.audit import measures

    rng = np.random.default_rng(0)
    member_logits, nonmember_logits = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    member_labels, nonmember_labels = rng.integers(0, 4, 30), rng.integers(0, 4, 20)
    auc = evaluation.mia_auc_from_logits(member_logits, member_labels, nonmember_logits, nonmember_labels)
    assert measures.mia_auc(member_logits, member_labels, nonmember_logits, nonmember_labels) == auc
    losses = [
        -torch.log_softmax(torch.from_numpy(x), 1)[range(len(y)), y].numpy()
        for x, y in ((member_logits, member_labels), (nonmember_logits, nonmember_labels))
    ]
    assert samples.mia_auc_from_losses(*losses) == pytest.approx(auc, abs=1e-12)
    truth = np.r_[np.ones(30), np.zeros(20)]
    assert auc == pytest.approx(roc_auc_score(truth, -np.concatenate(losses)), abs=1e-12)


def test_cli_audit_accepts_a_reference_without_the_forgotten_label(tmp_path):
    from hf_unlearn.cli import main

    names = {i: str(i) for i in range(10)}
    nine = {i: name for i, name in enumerate(n for c, n in names.items() if c != 3)}
    dirs = {}
    for name, labels, seed in (("model", names, 0), ("r0", nine, 2), ("r1", names, 3)):
        dirs[name] = tmp_path / name
        tiny_vit(
            num_labels=len(labels),
            id2label=labels,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            seed=seed,
        ).save_pretrained(dirs[name])
    out = tmp_path / "audit.json"
    argv = ["audit", "--model_dir", str(dirs["model"]), "--forget_classes", "3", "--retrained", str(dirs["r0"]),
            str(dirs["r1"]), "--relearn_steps", "1", "--output_file", str(out), "--dataset", "digits",
            "--max_train_samples", "200", "--max_eval_samples", "100"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads(out.read_text())
    assert record["retrained_label_spaces"] == ["dropped ['3'] (matched by label names)", "full"]
    assert record["retrained"][0]["forget_error"] == 1.0 and record["metrics"]["distinguisher_accuracy"] is not None
