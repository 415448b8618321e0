"""Lineage and round-trips: the pretrained checkpoint given at training time reaches every card as ``base_model``
(never a local path), and a folder saved from Python works with the commands."""

from __future__ import annotations

import json
import os

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import ViTForImageClassification, ViTImageProcessor

from hf_unlearn import FisherUnlearner, MnemonicCodebook, MnemonicConfig, MnemonicTrainer, UnlearningConfig
from hf_unlearn.hub.lineage import hub_id_of, recorded_base_model, starting_checkpoint

PRETRAINED = "google/vit-base-patch16-224-in21k"


def _args(output_dir, **overrides):
    kwargs = dict(
        output_dir=str(output_dir),
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
        per_device_train_batch_size=32,
        num_train_epochs=3,
        learning_rate=3e-3,
        mnemonic_mix_ratio=0.3,
        dataloader_num_workers=0,
        seed=0,
    )
    kwargs.update(overrides)
    return MnemonicConfig(**kwargs)


def _processor():
    return ViTImageProcessor(
        size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5], do_resize=False, do_rescale=False
    )


def _folder_texts(folder) -> dict[str, str]:
    """Every card and JSON file under ``folder`` (what a reader or the Hub shows), as text."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith((".md", ".json")):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    out[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """A tiny ViT 'loaded from' the Hub id PRETRAINED, trained with codes, saved with its processor in a deep local
    folder; returns (folder, trainer)."""
    from hf_unlearn.data import tiny_vit

    torch.set_num_threads(1)
    train, _ = digits
    root = tmp_path_factory.mktemp("lineage") / "home" / "alice" / "runs"
    model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0)
    model.config._name_or_path = PRETRAINED  # what from_pretrained(PRETRAINED) leaves on the model
    trainer = MnemonicTrainer(
        model=model, args=_args(root / "vit-digits"), train_dataset=train, processing_class=_processor()
    )
    trainer.train()
    trainer.save_model()
    trainer.create_model_card(model_name="vit-digits")
    return root / "vit-digits", trainer


def test_hub_id_of_reads_ids_and_cache_snapshots(tmp_path):
    assert hub_id_of(PRETRAINED) == PRETRAINED
    snapshot = tmp_path / "hub" / "models--google--vit-base-patch16-224" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert hub_id_of(snapshot) == "google/vit-base-patch16-224"
    assert hub_id_of(tmp_path) is None and hub_id_of(None) is None
    assert recorded_base_model(tmp_path) is None


def test_base_model_must_be_a_hub_id(tmp_path):
    with pytest.raises(ValueError, match="`base_model`"):
        _args(tmp_path / "o", base_model=str(tmp_path))
    assert _args(tmp_path / "o", base_model=PRETRAINED).base_model == PRETRAINED


def test_explicit_base_model_wins_and_local_names_are_not_recorded(tmp_path, tiny_vit_model, digits):
    tiny_vit_model.config._name_or_path = str(tmp_path)  # a local folder with no recorded lineage
    assert starting_checkpoint(tiny_vit_model) is None
    trainer = MnemonicTrainer(model=tiny_vit_model, args=_args(tmp_path / "o"), train_dataset=digits[0])
    assert trainer.base_model_id is None and "base_model" not in trainer.codebook.metadata
    trainer = MnemonicTrainer(
        model=tiny_vit_model, args=_args(tmp_path / "o", base_model=PRETRAINED), train_dataset=digits[0]
    )
    assert trainer.base_model_id == PRETRAINED and trainer.codebook.metadata["base_model"] == PRETRAINED


def test_training_card_names_the_pretrained_base_and_no_local_path(trained, tmp_path_factory):
    folder, trainer = trained
    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == PRETRAINED and card.data.base_model_relation == "finetune"
    assert {"hf-unlearn", "mnemonic-codes"} <= set(card.data.tags)
    assert "mnemonic_codes.safetensors" in card.text and trainer.codebook.fingerprint() in card.text
    assert f"[`{PRETRAINED}`](/{PRETRAINED})" in card.text
    assert "Finetuned from" not in card.text  # not transformers' generic card
    codebook = json.loads((folder / "mnemonic_codebook.json").read_text())
    assert codebook["metadata"]["base_model"] == PRETRAINED  # recorded beside the codes
    for name, text in _folder_texts(folder).items():
        assert "/home/alice" not in text, f"{name} holds a local path"


def test_unlearning_card_names_the_pretrained_base_and_parent(trained, digits, tmp_path):
    folder, _ = trained
    model = ViTForImageClassification.from_pretrained(folder).eval()  # _name_or_path: the local training folder
    assert model.config._name_or_path == str(folder)
    codebook = MnemonicCodebook.from_pretrained(folder)
    unlearner = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[3]))
    report = unlearner.unlearn(model, codebook=codebook, eval_dataset=digits[1])
    assert report.details["lineage"] == {"base_model": PRETRAINED}
    out = unlearner.save_pretrained(folder.parent / "vit-digits-no3", model)
    card = ModelCard.load(os.path.join(out, "README.md"))
    assert card.data.base_model == PRETRAINED and card.data.base_model_relation == "finetune"
    assert "`vit-digits`" in card.text and f"[`{PRETRAINED}`](/{PRETRAINED})" in card.text
    texts = _folder_texts(out)
    assert {"README.md", "unlearning_report.json", "mnemonic_codebook.json"} <= set(texts)
    for name, text in texts.items():
        assert "/home/alice" not in text and str(tmp_path) not in text, f"{name} holds a local path"
    assert json.loads(texts["unlearning_report.json"])["details"]["lineage"]["base_model"] == PRETRAINED
    # a second forgetting from the unlearned folder keeps the lineage (read from the folder's report and codes)
    again = ViTForImageClassification.from_pretrained(out)
    fives = digits[0].filter(lambda labels: labels == 5, input_columns="labels")
    unlearner = FisherUnlearner(
        UnlearningConfig(method="logit_suppression", forget_classes=[5], allow_incomplete=True)
    )
    report = unlearner.unlearn(again, forget_dataset=fives)
    assert report.details["lineage"] == {"base_model": PRETRAINED}


def test_python_saved_folder_keeps_the_processor_and_works_with_evaluate(trained, digits, tmp_path, capsys):
    from hf_unlearn.cli import main

    folder, _ = trained
    model = ViTForImageClassification.from_pretrained(folder).eval()
    unlearner = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[3]))
    unlearner.unlearn(model, codebook=MnemonicCodebook.from_pretrained(folder))
    # no processing_class given: it is taken from the folder the model was loaded from
    out = unlearner.save_pretrained(tmp_path / "saved", model)
    assert os.path.isfile(os.path.join(out, "preprocessor_config.json"))
    code = main(["evaluate", "--model_dir", str(out), "--dataset", "digits", "--forget_classes", "3"])
    stdout = capsys.readouterr().out
    assert code == 0 and "3 (forgotten)" in stdout
    # an explicit processing_class wins
    other = _processor()
    other.image_mean = [0.25]
    out = unlearner.save_pretrained(tmp_path / "explicit", model, processing_class=other)
    assert list(ViTImageProcessor.from_pretrained(out).image_mean) == [0.25]


def test_cli_train_records_base_model_and_forget_card_names_it(tmp_path, capsys):
    """hf-unlearn train --base_model <hub id> -> forget: the unlearned card's YAML names the id, and no card or JSON
    file of either folder holds the local path."""
    from hf_unlearn.cli import main

    root = tmp_path / "home" / "bob"
    trained, forgot = root / "vit", root / "vit-no3"
    root.mkdir(parents=True)
    code = main(["train", "--model", "tiny-vit", "--dataset", "digits", "--output_dir", str(trained),
                 "--base_model", PRETRAINED, "--num_train_epochs", "8", "--learning_rate", "2e-3",
                 "--per_device_train_batch_size", "32", "--mnemonic_mix_ratio", "0.3", "--max_train_samples", "512",
                 "--tiny_vit_hidden_size", "32", "--disable_tqdm", "true"])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    assert json.loads((trained / "mnemonic_codebook.json").read_text())["metadata"]["base_model"] == PRETRAINED
    code = main(["forget", "--model_dir", str(trained), "--dataset", "digits", "--forget_classes", "3",
                 "--output_dir", str(forgot), "--allow_incomplete", "true"])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    card = ModelCard.load(forgot / "README.md")
    assert card.data.base_model == PRETRAINED and card.data.base_model_relation == "finetune"
    for folder in (trained, forgot):
        for name, text in _folder_texts(folder).items():
            assert "/home/bob" not in text and str(tmp_path) not in text, f"{folder.name}/{name} holds a local path"
    assert main(["train", "--output_dir", str(root / "x"), "--base_model", str(root)]) == 2
    assert "--base_model" in capsys.readouterr().err  # a local path is refused, naming the flag
