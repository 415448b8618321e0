"""The rows recipe (``neggrad_plus``) against a backdoor whose poisoned rows are named only in part: the unnamed
poisoned rows among the retained ones are found and forgotten too, the trigger stops working, and rows that are
merely of the target class (a deletion request within one class) are never taken for poison."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import fit_images

from hf_unlearn import FisherUnlearner, UnlearningConfig
from hf_unlearn.data_utils import DatasetReader, subset
from hf_unlearn.methods import METHODS
from hf_unlearn.methods.retain_finetune import suspected_poison

N_TRAIN, N_POISON, NAMED, TARGET = 600, 30, 8, 0


def _stamp(x):
    x = x.clone()
    x[:, :, -2:, -2:] = 1.0
    return x


def _attack_success(model, test):
    x, y = test[:]["pixel_values"].float(), test[:]["labels"].long()
    with torch.no_grad():
        pred = model(pixel_values=_stamp(x[y != TARGET])).logits.argmax(-1)
    return float((pred == TARGET).float().mean())


@pytest.fixture(scope="module")
def backdoored(digits):
    """A tiny ViT trained on 600 digits, 30 of them (none of class 0) stamped with a 2x2 patch and relabelled 0."""
    from hf_unlearn.data import tiny_vit

    train, test = digits
    x = train[:N_TRAIN]["pixel_values"].float()
    y = train[:N_TRAIN]["labels"].long()
    rng = np.random.default_rng(0)
    poisoned = np.sort(rng.choice(np.flatnonzero(y.numpy() != TARGET), N_POISON, replace=False))
    x[poisoned] = _stamp(x[poisoned])
    y[poisoned] = TARGET
    model = tiny_vit(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, patch_size=2, seed=0)
    fit_images(model, x, y, 500, batch_size=32, weight_decay=0.01)  # AdamW, as the benchmark's recipe
    ds = {"pixel_values": x, "labels": y}
    named = sorted(rng.choice(poisoned, NAMED, replace=False).tolist())
    return model, ds, test, poisoned.tolist(), named


def _suspects(model, ds, named, **kw):
    keep = sorted(set(range(N_TRAIN)) - set(named))
    forget, retain = subset(ds, named), subset(ds, keep)
    found = suspected_poison(
        model,
        DatasetReader(forget, model),
        DatasetReader(retain, model),
        None,
        target=TARGET,
        forget_labels=forget["labels"].numpy(),
        retain_labels=retain["labels"].numpy(),
        seed=0,
        **kw,
    )
    if found is None:  # the named rows do not stand apart from their class: not poison
        return None
    found, doubtful = found
    assert not set(found) & set(doubtful)
    return {keep[i] for i in found}


def test_suspected_poison_finds_the_unnamed_poisoned_rows_and_nothing_in_a_plain_deletion(backdoored):
    model, ds, test, poisoned, named = backdoored
    assert _attack_success(model, test) > 0.9  # the trigger works on the original
    unnamed = set(poisoned) - set(named)
    found = _suspects(model, ds, named)
    assert len(found & unnamed) >= 0.6 * len(unnamed)
    assert len(found - unnamed) <= 2  # genuine rows of class 0 are left alone
    # rows that are merely of the target class (a deletion request within one class): nothing is suspected
    genuine = [i for i in np.flatnonzero(ds["labels"].numpy() == TARGET) if i not in set(poisoned)]
    assert _suspects(model, ds, sorted(genuine[:20])) is None


def _synthetic_suspects(monkeypatch, n_named, n_unnamed, seed, **kw):
    """``suspected_poison`` on made-up features: poisoned rows (named and unnamed) tight around one point, 120 genuine
    rows of the class around the origin, and 4 genuine rows part-way towards the poison (they merely resemble it)."""
    import hf_unlearn.methods.retain_finetune as recipe

    rng = np.random.default_rng(seed)
    trigger = np.zeros(8)
    trigger[0] = 6.0
    named = rng.normal(size=(n_named, 8)) + trigger
    unnamed = rng.normal(size=(n_unnamed, 8)) + trigger
    resembling = 0.3 * rng.normal(size=(4, 8)) + trigger / 2 + np.eye(8)[0] * 0.2
    candidates = np.concatenate([unnamed, rng.normal(size=(120, 8)), resembling])
    features = [(torch.tensor(named).float(), None), (torch.tensor(candidates).float(), None)]
    monkeypatch.setattr(recipe, "head_features", lambda model, readers, collator: features)
    found = suspected_poison(
        None,
        None,
        None,
        None,
        target=TARGET,
        forget_labels=np.zeros(n_named, dtype=int),
        retain_labels=np.zeros(len(candidates), dtype=int),
        seed=seed,
        **kw,
    )
    found = found[0] if found is not None else []
    return len(set(found) & set(range(n_unnamed))), len(set(found) - set(range(n_unnamed)))


def test_suspected_poison_takes_no_genuine_row_when_every_poisoned_row_is_named(monkeypatch):
    # nothing unnamed is left: the genuine rows that merely resemble the poison score above 0.5 but below the named
    # rows themselves, and the first round's bar (the named rows' lower decile) keeps them out
    without_bar = [_synthetic_suspects(monkeypatch, 40, 0, seed, named_quantile=0.0) for seed in range(4)]
    assert sum(wrong for _, wrong in without_bar) > 0  # what the bar prevents
    assert [_synthetic_suspects(monkeypatch, 40, 0, seed) for seed in range(4)] == [(0, 0)] * 4
    # with 10 of 40 poisoned rows named, the named rows score lower (copies sit among the retained rows): the bar
    # stays at 0.5 and the unnamed rows are found as before
    for seed in range(4):
        found, wrong = _synthetic_suspects(monkeypatch, 10, 30, seed)
        assert found >= 0.7 * 30 and wrong <= 8
        assert (found, wrong) == _synthetic_suspects(monkeypatch, 10, 30, seed, named_quantile=0.0)


def test_neggrad_plus_removes_a_backdoor_named_in_part(backdoored):
    """With a quarter of the poisoned rows named, the recipe forgets the suspects too: the trigger stops working,
    where the same recipe without the search leaves more of it, and clean accuracy is kept."""
    import copy

    base, ds, test, poisoned, named = backdoored
    x, y = test[:]["pixel_values"].float(), test[:]["labels"].long()

    def run(search: bool):
        model = copy.deepcopy(base)
        settings = {"finetune_max_steps": 60, "finetune_learning_rate": 3e-3, "suspect_poison": search}
        cfg = UnlearningConfig(forget_scope="samples", method_config=settings, allow_incomplete=True)
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=named)
        with torch.no_grad():
            acc = float((model(pixel_values=x).logits.argmax(-1) == y).float().mean())
        return report, _attack_success(model, test), acc

    report, asr, acc = run(True)
    assert report.method == "neggrad_plus" and report.details["poison_target"] == TARGET
    assert report.details["suspected_poison_rows"] >= 0.6 * (N_POISON - NAMED)
    assert "represented like the forgotten poisoned rows" in METHODS["neggrad_plus"].describe(report)
    _, asr_named_only, _ = run(False)
    with torch.no_grad():
        acc_before = float((base(pixel_values=x).logits.argmax(-1) == y).float().mean())
    print(
        "VALUES",
        asr,
        asr_named_only,
        acc,
        acc_before,
        report.details["suspected_poison_rows"],
        report.details["left_out_rows"],
    )
    assert asr <= 0.05 and asr < asr_named_only  # 0.01 against 0.08 when written
    assert acc >= acc_before - 0.05


def test_rows_of_one_class_that_look_like_their_class_are_a_deletion_not_poison(backdoored):
    """Six genuine rows of one class: their labels alone look like a backdoor's (far beyond the class's share), but the
    model represents them like the class's other rows, so they are forgotten as an ordinary deletion (the probe's
    targets, nothing suspected among the retained rows), not pushed to chance with look-alikes of the class."""
    import copy

    base, ds, test, poisoned, named = backdoored
    genuine = [int(i) for i in np.flatnonzero(ds["labels"].numpy() == 3) if i not in set(poisoned)][:6]
    cfg = UnlearningConfig(forget_scope="samples", allow_incomplete=True, method_config={"finetune_max_steps": 4})
    report = FisherUnlearner(cfg).unlearn(copy.deepcopy(base), train_dataset=ds, forget_rows=genuine)
    details = report.details
    assert details["poison_rejected"] == 3 and details["poison_target"] is None
    assert details["ascent_target"] == "probe" and details["suspected_poison_rows"] == 0
    # the same rows with the search switched off: the labels decide, as a backdoor's
    cfg = UnlearningConfig(
        forget_scope="samples",
        allow_incomplete=True,
        method_config={"finetune_max_steps": 4, "suspect_poison": False},
    )
    report = FisherUnlearner(cfg).unlearn(copy.deepcopy(base), train_dataset=ds, forget_rows=genuine)
    assert report.details["poison_target"] == 3 and report.details["ascent_target"] == "chance"


def test_known_poison_with_a_few_rows_named(backdoored):
    """Three of the 30 poisoned rows named: too few for their labels to say poison (a deletion request of 3 rows of
    class 0 looks the same), so by default they are forgotten as ordinary rows and the trigger stays; declared as
    poison (``known_poison``), they go to chance and the retained rows of class 0 are searched for the rest."""
    import copy

    base, ds, test, poisoned, named = backdoored

    def run(known: bool):
        model = copy.deepcopy(base)
        settings = {"finetune_max_steps": 60, "finetune_learning_rate": 3e-3, "known_poison": known}
        cfg = UnlearningConfig(forget_scope="samples", method_config=settings, allow_incomplete=True)
        report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=named[:3])
        return report.details, _attack_success(model, test)

    details, asr_default = run(False)
    assert details["poison_target"] is None and details["ascent_target"] == "probe"
    assert details["suspected_poison_rows"] == 0 and not details["known_poison"]
    details, asr_known = run(True)
    assert details["known_poison"] and details["poison_target"] == TARGET and details["ascent_target"] == "chance"
    assert details["suspected_poison_rows"] >= 0.5 * (N_POISON - 3)
    assert asr_known <= 0.5 * asr_default  # 0.22 against 1.0 when written


def test_the_ascent_on_poison_is_anchored_by_the_target_class(backdoored, monkeypatch):
    """While the poisoned rows are pushed away from class 0, half of each fine-tuning batch holds retained rows of
    class 0 (alone, the push lowers the whole class: on TREC-MiniLM most of the class's test questions went wrong);
    after the ascent the batches are drawn at random again. The trigger still goes."""
    import copy

    base, ds, test, poisoned, named = backdoored
    labels = ds["labels"].numpy()
    batches = []
    real_batch = DatasetReader.batch

    def recording(self, idx, collator=None):
        out = real_batch(self, idx, collator)
        if self.n == N_TRAIN - len(poisoned) and len(idx) == 16:  # a fine-tuning batch of the retained rows
            batches.append(np.asarray(out["labels"]))
        return out

    monkeypatch.setattr(DatasetReader, "batch", recording)
    model = copy.deepcopy(base)
    settings = {"finetune_max_steps": 40, "finetune_learning_rate": 3e-3, "finetune_batch_size": 16}
    cfg = UnlearningConfig(forget_scope="samples", method_config=settings, allow_incomplete=True)
    report = FisherUnlearner(cfg).unlearn(model, train_dataset=ds, forget_rows=poisoned)
    details = report.details
    genuine = int((labels == TARGET).sum()) - len(poisoned)
    assert 0 < details["anchor_rows"] <= genuine - details["suspected_poison_rows"] - details["left_out_rows"]
    assert len(batches) == 40
    share = [float((b == TARGET).mean()) for b in batches]
    assert min(share[: details["ascent_steps"]]) >= 0.5  # the ascent's half: anchored
    assert np.mean(share[details["ascent_steps"] :]) < 0.3  # then random rows (class 0 is about a tenth of them)
    assert _attack_success(model, test) <= 0.05
