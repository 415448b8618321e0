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


def _suspects(model, ds, named):
    keep = sorted(set(range(N_TRAIN)) - set(named))
    forget, retain = subset(ds, named), subset(ds, keep)
    found, doubtful = suspected_poison(
        model,
        DatasetReader(forget, model),
        DatasetReader(retain, model),
        None,
        target=TARGET,
        forget_labels=forget["labels"].numpy(),
        retain_labels=retain["labels"].numpy(),
        seed=0,
    )
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
    assert _suspects(model, ds, sorted(genuine[:20])) == set()


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
