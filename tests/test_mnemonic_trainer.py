"""MnemonicTrainer: learns the codes, mixes them in as t_mix says, saves and resumes them, rejects bad input."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_keyword_texts, make_tiny_bert
from torch import nn
from transformers import DataCollatorWithPadding, HfArgumentParser, TrainingArguments
from transformers import Trainer as TrainingLoop

from hf_unlearn import MnemonicCodebook, MnemonicConfig, MnemonicTrainer
from hf_unlearn.data import tiny_vit
from hf_unlearn.mnemonic.codebook import CODES_CONFIG_FILE, CODES_FILE
from hf_unlearn.mnemonic.trainer import code_balance, expected_code_presentations

REPO = Path(__file__).resolve().parents[1]


def clone_params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_params_equal(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"parameter {n} changed"


@torch.no_grad()
def code_accuracy(model: nn.Module, codebook: MnemonicCodebook) -> float:
    model.eval()
    inputs = codebook.as_inputs(with_labels=True)
    labels = inputs.pop("labels")
    return float((model(**inputs).logits.argmax(-1) == labels).float().mean())


def text_batch(tokenizer, texts: list[str], labels: list[int]) -> dict[str, torch.Tensor]:
    features = [dict(tokenizer(t), labels=y) for t, y in zip(texts, labels)]
    return DataCollatorWithPadding(tokenizer)(features)


# ---------------------------------------------------------------- learning the codes


def test_vit_learns_its_codes_on_digits(digits, tiny_vit_model, mnemonic_args):
    train, test = digits
    args = mnemonic_args(
        num_train_epochs=10, learning_rate=5e-3, warmup_steps=0.1, mnemonic_mix_ratio=0.2, logging_steps=100
    )
    trainer = MnemonicTrainer(model=tiny_vit_model, args=args, train_dataset=train)
    before = code_accuracy(tiny_vit_model, trainer.codebook)
    trainer.train()
    assert code_accuracy(tiny_vit_model, trainer.codebook) == 1.0, f"codes not learned (before: {before})"
    assert (
        trainer.codebook.metadata["unlearned_classes"] == []
        and len(trainer.codebook.metadata["learned_classes"]) == 10
    )
    with torch.no_grad():
        batch = test[:]
        acc = (tiny_vit_model(pixel_values=batch["pixel_values"]).logits.argmax(-1) == batch["labels"]).float()
    assert float(acc.mean()) > 0.6  # about 0.8 measured; chance is 0.1


def test_bert_learns_its_codes_on_keyword_text(keyword_text, tiny_bert, tiny_tokenizer, mnemonic_args):
    train, test = keyword_text
    args = mnemonic_args(
        num_train_epochs=15,
        learning_rate=3e-3,
        warmup_steps=0.1,
        mnemonic_mix_ratio=0.2,
        mnemonic_text_length=12,
        logging_steps=100,
    )
    trainer = MnemonicTrainer(model=tiny_bert, args=args, train_dataset=train, processing_class=tiny_tokenizer)
    trainer.train()
    assert code_accuracy(tiny_bert, trainer.codebook) == 1.0
    pred = trainer.predict(test)
    assert float((pred.predictions.argmax(-1) == pred.label_ids).mean()) > 0.8  # about 0.97-1.0 measured


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vit_learns_several_normal_codes_per_class(digits, mnemonic_args, seed):
    train, _ = digits
    model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=seed)
    args = mnemonic_args(
        num_train_epochs=12,
        learning_rate=5e-3,
        warmup_steps=0.1,
        mnemonic_mix_ratio=0.3,
        mnemonic_codes_per_class=2,
        mnemonic_distribution="normal",
        mnemonic_seed=seed,
        seed=seed,
    )
    trainer = MnemonicTrainer(model=model, args=args, train_dataset=train)
    trainer.train()
    assert len(trainer.codebook) == 20
    assert code_accuracy(model, trainer.codebook) == 1.0


# ---------------------------------------------------------------- mixing


def test_mix_replaces_about_t_mix_of_examples_with_their_exact_codes(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(mnemonic_mix_ratio=0.25), train_dataset=train)
    codes = trainer.codebook.inputs["pixel_values"]  # (10, 1, 8, 8), one per class
    batch = train[:64]
    original = {k: v.clone() for k, v in batch.items()}
    replaced_total, seen, masks = 0, 0, set()
    for _ in range(200):
        out = trainer.mix_codes(batch)
        assert torch.equal(out["labels"], original["labels"])  # labels kept
        for k in batch:  # the caller's batch is not edited in place
            assert torch.equal(batch[k], original[k])
        px = out["pixel_values"]
        replaced = (px != original["pixel_values"]).flatten(1).any(1)  # (B,)
        # replaced rows are exactly their class's code, the others untouched
        assert torch.equal(px[replaced], codes[original["labels"][replaced]])
        assert torch.equal(px[~replaced], original["pixel_values"][~replaced])
        replaced_total += int(replaced.sum())
        seen += replaced.numel()
        masks.add(replaced.numpy().tobytes())
    assert abs(replaced_total / seen - 0.25) < 0.02  # 12,800 draws: 3 sigma is about 0.011
    assert len(masks) > 150  # fresh draws for every micro-batch


def test_mix_with_several_codes_per_class(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    args = mnemonic_args(mnemonic_mix_ratio=0.5, mnemonic_codes_per_class=3)
    trainer = MnemonicTrainer(model=tiny_vit_model, args=args, train_dataset=train)
    book = trainer.codebook
    batch = train[:64]
    used = set()
    for _ in range(20):
        out = trainer.mix_codes(batch)
        replaced = (out["pixel_values"] != batch["pixel_values"]).flatten(1).any(1)
        for row, label in zip(out["pixel_values"][replaced], batch["labels"][replaced].tolist()):
            own = book.as_inputs([label])["pixel_values"]
            hits = [k for k in range(3) if torch.equal(row, own[k])]
            assert len(hits) == 1
            used.add((label, hits[0]))
    assert len(used) > 15  # the draws use several codes of each class


def test_mix_draws_reproducible_from_the_seed(digits, mnemonic_args):
    train, _ = digits
    batch = train[:64]

    def draws(seed: int) -> list[torch.Tensor]:
        model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
        args = mnemonic_args(mnemonic_mix_ratio=0.3, mnemonic_seed=seed)
        trainer = MnemonicTrainer(model=model, args=args, train_dataset=train)
        return [trainer.mix_codes(batch)["pixel_values"] for _ in range(5)]

    a, b, c = draws(1), draws(1), draws(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_mix_ratio_zero_leaves_batches_alone(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(mnemonic_mix_ratio=0.0), train_dataset=train)
    batch = train[:64]
    for _ in range(10):
        out = trainer.mix_codes(batch)
        assert all(torch.equal(out[k], batch[k]) for k in batch)


def test_code_balance_tops_up_rare_classes_from_donors():
    counts = torch.tensor([86, 1162, 1250, 1223, 835, 896])  # TREC's coarse classes
    shown = expected_code_presentations(counts, 0.1)
    mean = float(counts.double().mean())
    assert float(shown.sum()) == pytest.approx(0.1 * float(counts.sum()), rel=1e-5)  # t_mix of the examples
    assert float(shown[0]) == pytest.approx(0.1 * mean, rel=1e-4)  # the rare class reaches the mean
    assert float(shown[0]) > 10 * 0.1 * 86
    assert torch.allclose(shown[4:], 0.1 * counts[4:].float())  # below-mean classes do not donate
    assert bool((shown[1:4] >= 0.1 * mean - 1e-3).all())  # donors never fall below the mean
    donate, receive = code_balance(counts)
    assert float(donate[0]) == 0 and float(receive[0]) == 1 and bool((donate <= 1).all())
    # no rare class (balanced, or all within half the mean): the paper's scheme, nothing shared
    assert code_balance([50, 50, 50]) is None and code_balance([60, 100, 140]) is None
    assert code_balance([0, 40]) is None
    # extreme imbalance: donations stay probabilities and still reach the mean
    counts = torch.tensor([1, 1, 1, 997])
    shown = expected_code_presentations(counts, 0.2)
    assert torch.allclose(shown[:3], torch.full((3,), 0.2 * 250.0), rtol=1e-4)
    assert float(code_balance(counts)[0][3]) <= 1


def test_rare_classes_get_their_codes_from_donated_slots(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    labels = train[:]["labels"].tolist()
    keep = [i for i, y in enumerate(labels) if y != 0] + [i for i, y in enumerate(labels) if y == 0][:12]
    imbalanced = train.select(keep)  # class 0: 12 examples, the others ~135
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(), train_dataset=imbalanced)
    assert trainer.code_balance is not None
    codes = trainer.codebook.inputs["pixel_values"]
    batch = imbalanced[:]
    y = batch["labels"]
    replaced_per_class, codes_shown = torch.zeros(10), torch.zeros(10)
    for _ in range(100):
        out = trainer.mix_codes(batch)
        replaced = (out["pixel_values"] != batch["pixel_values"]).flatten(1).any(1)
        # untouched rows keep their label; every replaced row is exactly the code of the label it now carries
        assert torch.equal(out["labels"][~replaced], y[~replaced])
        assert torch.equal(out["pixel_values"][replaced], codes[out["labels"][replaced]])
        # a slot only ever moves from a class to the rare class 0
        moved = out["labels"] != y
        assert bool((out["labels"][moved] == 0).all()) and bool(replaced[moved].all())
        replaced_per_class += torch.bincount(y[replaced], minlength=10)
        codes_shown += torch.bincount(out["labels"][replaced], minlength=10)
    per_class_rate = replaced_per_class / (100 * torch.bincount(y, minlength=10))
    assert float((per_class_rate - 0.1).abs().max()) < 0.05  # every class replaced at t_mix, the rare one too
    expected = expected_code_presentations(torch.bincount(y, minlength=10), 0.1) * 100
    assert float(codes_shown[0]) > 5 * 0.1 * 12 * 100  # the rare code is shown >5x as often as own-class only
    assert float(((codes_shown - expected) / expected).abs().max()) < 0.15

    # switched off: every replaced example keeps its own class's code and label, as in the paper
    plain = MnemonicTrainer(
        model=tiny_vit_model, args=mnemonic_args(mnemonic_balance_classes=False), train_dataset=imbalanced
    )
    assert plain.code_balance is None
    for _ in range(20):
        assert torch.equal(plain.mix_codes(batch)["labels"], y)
    # a class-balanced data set: nothing to top up, labels always kept
    assert MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(), train_dataset=train).code_balance is None


def test_balancing_needs_labels_up_front(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    stream = train.select(range(64)).to_iterable_dataset().with_format("torch")
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(max_steps=1), train_dataset=stream)
    assert trainer.code_balance is None  # off: every replaced example gets its own class's code


def test_mix_text_batch_shorter_than_codes(keyword_text, tiny_bert, tiny_tokenizer, mnemonic_args):
    train, _ = keyword_text
    args = mnemonic_args(mnemonic_mix_ratio=0.5, mnemonic_text_length=12)
    trainer = MnemonicTrainer(model=tiny_bert, args=args, train_dataset=train, processing_class=tiny_tokenizer)
    codes = trainer.codebook.inputs["input_ids"]  # (3, 14)
    texts, labels = make_keyword_texts(32, seed=5, min_filler=1, max_filler=4)
    batch = text_batch(tiny_tokenizer, texts, labels)
    m = batch["input_ids"].shape[1]
    assert m < codes.shape[1]
    lengths = batch["attention_mask"].sum(1)
    n_replaced = 0
    for _ in range(10):
        out = trainer.mix_codes(batch)
        ids, att, tt = out["input_ids"], out["attention_mask"], out["token_type_ids"]
        assert ids.shape == att.shape == tt.shape == (32, codes.shape[1])
        assert torch.equal(out["labels"], batch["labels"])
        replaced = torch.tensor([not torch.equal(ids[i, :m], batch["input_ids"][i]) for i in range(32)])
        assert 0 < int(replaced.sum()) < 32
        n_replaced += int(replaced.sum())
        for i in range(32):
            if replaced[i]:
                assert torch.equal(ids[i], codes[out["labels"][i]])
                assert (att[i] == 1).all()
            else:
                # the example, then padding that attention ignores
                assert torch.equal(ids[i, :m], batch["input_ids"][i])
                assert (ids[i, m:] == tiny_tokenizer.pad_token_id).all()
                assert torch.equal(att[i, :m], batch["attention_mask"][i]) and (att[i, m:] == 0).all()
                assert int(att[i].sum()) == int(lengths[i])
            assert (tt[i] == 0).all()
        # the padded batch runs through the model
        assert torch.isfinite(tiny_bert(**out).loss)
    assert 0.3 < n_replaced / 320 < 0.7


def test_mix_text_batch_longer_than_codes(keyword_text, tiny_bert, tiny_tokenizer, mnemonic_args):
    train, _ = keyword_text
    args = mnemonic_args(mnemonic_mix_ratio=0.5, mnemonic_text_length=3)
    trainer = MnemonicTrainer(model=tiny_bert, args=args, train_dataset=train, processing_class=tiny_tokenizer)
    codes = trainer.codebook.inputs["input_ids"]  # (3, 5)
    texts, labels = make_keyword_texts(32, seed=6, min_filler=6, max_filler=10)
    batch = text_batch(tiny_tokenizer, texts, labels)
    m = batch["input_ids"].shape[1]
    out = trainer.mix_codes(batch)
    assert out["input_ids"].shape == (32, m)
    replaced = (out["input_ids"] != batch["input_ids"]).any(1)
    assert replaced.any()
    for i in replaced.nonzero().flatten().tolist():
        assert torch.equal(out["input_ids"][i, :5], codes[batch["labels"][i]])
        assert (out["input_ids"][i, 5:] == tiny_tokenizer.pad_token_id).all()
        assert out["attention_mask"][i].tolist() == [1] * 5 + [0] * (m - 5)


def test_mix_needs_labels(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(), train_dataset=train)
    with pytest.raises(ValueError, match="labels"):
        trainer.mix_codes({"pixel_values": train[:4]["pixel_values"]})


# ---------------------------------------------------------------- evaluation, accumulation, columns


def test_evaluate_and_predict_do_not_mix(digits, tiny_vit_model, mnemonic_args):
    train, test = digits
    args = mnemonic_args(mnemonic_mix_ratio=0.9)
    trainer = MnemonicTrainer(model=tiny_vit_model, args=args, train_dataset=train, eval_dataset=test)
    calls = []
    trainer.mix_codes = lambda inputs: calls.append(1) or inputs
    metrics = trainer.evaluate()
    pred = trainer.predict(test)
    assert calls == []
    tiny_vit_model.eval()
    with torch.no_grad():
        batch = test[:]
        out = tiny_vit_model(pixel_values=batch["pixel_values"], labels=batch["labels"])
    torch.testing.assert_close(torch.as_tensor(pred.predictions), out.logits, rtol=1e-5, atol=1e-5)
    assert metrics["eval_loss"] == pytest.approx(float(out.loss), rel=1e-5)
    assert pred.metrics["test_loss"] == pytest.approx(float(out.loss), rel=1e-5)


def test_gradient_accumulation_matches_a_larger_batch(digits, mnemonic_args):
    # Plain SGD, whose step is proportional to the gradient: a loss scaled wrong under accumulation shows up.
    train, _ = digits
    runs = {}
    for batch_size, accumulation in ((32, 1), (16, 2)):
        model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
        args = mnemonic_args(
            max_steps=3,
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            optim="sgd",
            learning_rate=0.5,
            lr_scheduler_type="constant",
            mnemonic_mix_ratio=0.0,
            logging_strategy="steps",
            logging_steps=1,
        )
        trainer = MnemonicTrainer(model=model, args=args, train_dataset=train)
        before = clone_params(model)
        # mixing off isolates the loss scaling of MnemonicTrainer.training_step; MnemonicTrainer.train refuses a
        # ratio that teaches no code, so the Trainer loop is entered directly
        TrainingLoop.train(trainer)
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        runs[accumulation] = (losses, clone_params(model), before)
    (loss_1, params_1, before_1), (loss_2, params_2, _) = runs[1], runs[2]
    assert len(loss_1) == len(loss_2) == 3 and all(math.isfinite(x) for x in loss_1 + loss_2)
    assert loss_2 == pytest.approx(loss_1, rel=1e-5)
    for n in params_1:
        torch.testing.assert_close(params_2[n], params_1[n], rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(params_1[n], before_1[n]) for n in params_1)


def test_remove_unused_columns_drops_extra_columns(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    n = len(train)
    extra = train.add_column("id", list(range(n))).add_column("text", [f"image {i}" for i in range(n)])
    args = mnemonic_args(max_steps=2, remove_unused_columns=True, mnemonic_mix_ratio=0.3)
    trainer = MnemonicTrainer(model=tiny_vit_model, args=args, train_dataset=extra)
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)


def test_trains_on_a_streaming_dataset(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    stream = train.select(range(128)).to_iterable_dataset().with_format("torch")
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(max_steps=2), train_dataset=stream)
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)


# ---------------------------------------------------------------- saving and resuming


def test_codes_saved_with_model_and_checkpoints_and_kept_on_resume(digits, tiny_vit_model, mnemonic_args, caplog):
    train, _ = digits
    args = mnemonic_args(max_steps=4, save_strategy="steps", save_steps=2, mnemonic_seed=3, mnemonic_mix_ratio=0.2)
    trainer = MnemonicTrainer(model=tiny_vit_model, args=args, train_dataset=train)
    codes = trainer.codebook
    trainer.train()
    trainer.save_model()
    out = Path(args.output_dir)
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2", "checkpoint-4"]
    for folder in [out, *(out / c for c in checkpoints)]:
        assert (folder / CODES_FILE).is_file() and (folder / CODES_CONFIG_FILE).is_file(), folder
        assert MnemonicCodebook.from_pretrained(folder).equals(codes)
        assert json.loads((folder / CODES_CONFIG_FILE).read_text())["seed"] == 3

    # Resume with another mnemonic_seed: the codes stored in the checkpoint win.
    resumed_args = mnemonic_args(
        max_steps=6, save_strategy="steps", save_steps=2, mnemonic_seed=99, mnemonic_mix_ratio=0.2
    )
    model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=1)
    resumed = MnemonicTrainer(model=model, args=resumed_args, train_dataset=train)
    assert not resumed.codebook.equals(codes)
    with caplog.at_level(logging.WARNING, logger="hf_unlearn"):
        resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 6
    assert resumed.codebook.equals(codes)
    assert "differ" in caplog.text
    assert MnemonicCodebook.from_pretrained(out / "checkpoint-6").equals(codes)

    # an explicit checkpoint path works the same
    again = MnemonicTrainer(
        model=tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=2),
        args=mnemonic_args(max_steps=3, mnemonic_seed=42),
        train_dataset=train,
    )
    again.train(resume_from_checkpoint=str(out / "checkpoint-2"))
    assert again.codebook.equals(codes) and again.state.global_step == 3


def test_resume_rejects_codes_for_another_model(digits, tiny_vit_model, mnemonic_args, tmp_path):
    train, _ = digits
    args = mnemonic_args(max_steps=2, save_strategy="steps", save_steps=2)
    MnemonicTrainer(model=tiny_vit_model, args=args, train_dataset=train).train()
    checkpoint = Path(args.output_dir) / "checkpoint-2"
    MnemonicCodebook.for_model(tiny_vit(num_labels=5, hidden_size=32, num_hidden_layers=1)).save_pretrained(checkpoint)
    model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=1)
    trainer = MnemonicTrainer(model=model, args=mnemonic_args(max_steps=4), train_dataset=train)
    before = clone_params(model)
    with pytest.raises(ValueError, match="resume_from_checkpoint"):
        trainer.train(resume_from_checkpoint=str(checkpoint))
    assert_params_equal(model, before)


# ---------------------------------------------------------------- bad input


def test_mix_ratio_that_cannot_teach_the_codes_is_refused_before_training(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    before = clone_params(tiny_vit_model)
    for ratio, match in ((0.0, "mnemonic_mix_ratio` is 0"), (0.004, r"mnemonic_mix_ratio` 0.004 .*classes \[0, 1")):
        trainer = MnemonicTrainer(
            model=tiny_vit_model, args=mnemonic_args(num_train_epochs=2, mnemonic_mix_ratio=ratio), train_dataset=train
        )
        with pytest.raises(ValueError, match=match):
            trainer.train()
        assert trainer.state.global_step == 0
    assert_params_equal(tiny_vit_model, before)
    # the same small ratio over a long enough run can teach the codes: accepted
    trainer = MnemonicTrainer(
        model=tiny_vit_model, args=mnemonic_args(num_train_epochs=20, mnemonic_mix_ratio=0.004), train_dataset=train
    )
    trainer._check_mix_ratio_teaches(torch.as_tensor(train["labels"]))


def test_codes_not_learned_are_warned_about_and_recorded(digits, tiny_vit_model, mnemonic_args, caplog):
    train, _ = digits
    args = mnemonic_args(max_steps=2, learning_rate=1e-5)  # far too short to learn anything
    trainer = MnemonicTrainer(model=tiny_vit_model, args=args, train_dataset=train)
    with caplog.at_level(logging.WARNING, logger="hf_unlearn"):
        trainer.train()
    unlearned = trainer.codebook.metadata["unlearned_classes"]
    assert unlearned and f"classes {unlearned}" in caplog.text
    assert sorted(unlearned + trainer.codebook.metadata["learned_classes"]) == list(range(10))
    trainer.save_model()
    saved = MnemonicCodebook.from_pretrained(args.output_dir)
    assert saved.metadata["unlearned_classes"] == unlearned


def test_a_class_without_training_samples_is_recorded_not_warned_about(digits, tiny_vit_model, mnemonic_args, caplog):
    train, _ = digits
    without_9 = train.filter(lambda b: [int(y) != 9 for y in b["labels"]], batched=True)
    with torch.no_grad():  # as after training without class 9: nothing is ever predicted as 9
        tiny_vit_model.classifier.bias[9] = -100.0
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(max_steps=2), train_dataset=without_9)
    with caplog.at_level(logging.INFO, logger="hf_unlearn"):
        trainer.train()
    assert 9 in trainer.codebook.metadata["unlearned_classes"]  # never learned: not usable as evidence
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "mnemonic codes" in r.message]
    assert all("9" not in msg.split("classes")[1].split("are")[0] for msg in warned)
    assert any("[9] have no training sample" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("ratio", [1.0, 1.5, -0.1, float("nan"), float("inf")])
def test_bad_mix_ratio(tmp_path, ratio):
    with pytest.raises(ValueError, match="mnemonic_mix_ratio"):
        MnemonicConfig(output_dir=str(tmp_path), report_to="none", mnemonic_mix_ratio=ratio)


@pytest.mark.parametrize(
    "field, value",
    [
        ("mnemonic_codes_per_class", 0),
        ("mnemonic_distribution", "gaussian"),
        ("mnemonic_text_length", 0),
    ],
)
def test_bad_mnemonic_fields(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        MnemonicConfig(output_dir=str(tmp_path), report_to="none", **{field: value})


def test_edge_mix_ratios_accepted(tmp_path):
    for ratio in (0.0, 0.3, 0.999):
        assert MnemonicConfig(output_dir=str(tmp_path), report_to="none", mnemonic_mix_ratio=ratio)


def test_hf_argument_parser(tmp_path):
    parser = HfArgumentParser(MnemonicConfig)
    (args,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir", str(tmp_path),
            "--report_to", "none",
            "--use_cpu",
            "--mnemonic_mix_ratio", "0.2",
            "--mnemonic_seed", "7",
            "--mnemonic_codes_per_class", "2",
            "--mnemonic_distribution", "normal",
            "--mnemonic_text_length", "8",
            "--learning_rate", "1e-3",
        ]
    )  # fmt: skip
    assert isinstance(args, MnemonicConfig)
    assert args.mnemonic_mix_ratio == 0.2 and args.mnemonic_seed == 7 and args.mnemonic_codes_per_class == 2
    assert args.mnemonic_distribution == "normal" and args.mnemonic_text_length == 8
    assert args.learning_rate == 1e-3 and args.use_cpu
    with pytest.raises(ValueError, match="mnemonic_mix_ratio"):
        parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path), "--mnemonic_mix_ratio", "1.0"])


@pytest.mark.parametrize("bad_label", [10, -1])
def test_labels_outside_num_labels_rejected_before_training(digits, tiny_vit_model, mnemonic_args, bad_label):
    train, _ = digits
    labels = train[:]["labels"].tolist()
    labels[5] = bad_label
    bad = train.remove_columns("labels").add_column("labels", labels).with_format("torch")
    before = clone_params(tiny_vit_model)
    with pytest.raises(ValueError, match="train_dataset"):
        MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(max_steps=2), train_dataset=bad)
    # a bad set swapped in after construction is caught by train(), before any step
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(max_steps=2), train_dataset=train)
    trainer.train_dataset = bad
    with pytest.raises(ValueError, match=r"train_dataset.*num_labels"):
        trainer.train()
    assert_params_equal(tiny_vit_model, before)
    assert trainer.state.global_step == 0


class ListDataset(torch.utils.data.Dataset):
    """A plain torch dataset: no columns to inspect up front."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_labels_outside_num_labels_in_a_torch_dataset(digits, tiny_vit_model, mnemonic_args):
    train, _ = digits
    items = [{"pixel_values": train[i]["pixel_values"], "labels": torch.tensor(12)} for i in range(32)]
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(max_steps=2), train_dataset=ListDataset(items))
    before = clone_params(tiny_vit_model)
    with pytest.raises(ValueError, match="labels"):
        trainer.train()
    assert_params_equal(tiny_vit_model, before)


def test_codebook_for_another_model_rejected(digits, tiny_vit_model, tiny_bert, mnemonic_args):
    train, _ = digits
    wrong = [
        MnemonicCodebook.for_model(tiny_vit(num_labels=5, hidden_size=32, num_hidden_layers=1)),
        MnemonicCodebook.for_model(tiny_vit(image_size=16, hidden_size=32, num_hidden_layers=1)),
        MnemonicCodebook.for_model(make_tiny_bert(num_labels=10)),
    ]
    for book in wrong:
        with pytest.raises(ValueError, match="`codebook`"):
            MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(), train_dataset=train, codebook=book)
    with pytest.raises(ValueError, match="`codebook`.*vocabulary"):
        MnemonicTrainer(
            model=tiny_bert, args=mnemonic_args(), codebook=MnemonicCodebook.for_model(make_tiny_bert(vocab_size=1000))
        )
    # a matching codebook is used as given
    book = MnemonicCodebook.for_model(tiny_vit_model, seed=123)
    trainer = MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(), train_dataset=train, codebook=book)
    assert trainer.codebook is book


class PlainNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x, labels=None):
        return self.linear(x)


def test_model_without_known_modality_rejected(mnemonic_args):
    with pytest.raises(ValueError, match="`model`"):
        MnemonicTrainer(model=PlainNet(), args=mnemonic_args())
    with pytest.raises(ValueError, match="`model`"):
        MnemonicTrainer(model=None, args=mnemonic_args())


def test_args_must_be_a_mnemonic_config(tiny_vit_model, tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(TypeError, match="`args`"):
        MnemonicTrainer(model=tiny_vit_model, args=args)
    with pytest.raises(TypeError, match="`args`"):
        MnemonicTrainer(model=tiny_vit_model, args={"mnemonic_mix_ratio": 0.1})


# ---------------------------------------------------------------- two processes


@pytest.mark.multiprocess
def test_two_processes_share_the_codes(tmp_path):
    script = REPO / "tests" / "scripts" / "mnemonic_two_processes.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(
        [*cmd, str(tmp_path)], env=env, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in records] == [0, 1]
    expected = MnemonicCodebook.for_model(
        tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2), seed=5
    ).fingerprint()
    steps_per_epoch = math.ceil(1347 / (16 * 2))  # each rank sees half of every global batch
    for r in records:
        assert r["world_size"] == 2 and r["dist_world_size"] == 2
        assert r["fingerprint"] == expected
        assert r["global_step"] == 3 and r["mix_calls"] == 3 and math.isfinite(r["train_loss"])
        assert r["epoch"] == pytest.approx(3 / steps_per_epoch)
    assert records[0]["weights_sha256"] == records[1]["weights_sha256"]  # replicas stayed in sync
    saved = tmp_path / "model"
    assert MnemonicCodebook.exists(saved) and (saved / "model.safetensors").is_file()
    assert MnemonicCodebook.from_pretrained(saved).fingerprint() == expected
    shutil.rmtree(saved)


@pytest.mark.parametrize("family", ["resnet", "convnext", "mobilevit"])
def test_cnn_families_take_the_code_shape_from_the_data(digits, mnemonic_args, tmp_path, family):
    from hf_unlearn.testing_utils import tiny_classifier

    model = tiny_classifier(family, num_labels=10)
    train = digits[0].select(range(100))
    trainer = MnemonicTrainer(
        model=model, args=mnemonic_args(num_train_epochs=2, mnemonic_mix_ratio=0.9), train_dataset=train
    )
    assert trainer.codebook.inputs["pixel_values"].shape == (10, 1, 8, 8)
    trainer.train()
    trainer.save_model(str(tmp_path / "m"))
    stored = MnemonicCodebook.from_pretrained(tmp_path / "m")
    assert stored.equals(trainer.codebook)
    MnemonicTrainer(model=model, args=mnemonic_args(), train_dataset=train, codebook=stored)  # accepted back


def test_config_without_image_size_and_no_data_asks_for_input_shape(mnemonic_args):
    from hf_unlearn.testing_utils import tiny_classifier

    with pytest.raises(ValueError, match="no `image_size`.*input_shape="):
        MnemonicTrainer(model=tiny_classifier("resnet", num_labels=10), args=mnemonic_args())
