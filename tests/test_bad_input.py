"""Bad input to every public Python entry point: one table, each case refused with a one-line error naming the
argument, before any weight or file changes. (The CLI's table is in test_cli.py.)"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from helpers import assert_params_equal, clone_params

from hf_unlearn import FisherUnlearner, MnemonicCodebook, MnemonicConfig, MnemonicTrainer, UnlearningConfig
from hf_unlearn.audit import audit_forgetting
from hf_unlearn.data import tiny_vit


def folder_state(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def setup(digits, tmp_path_factory):
    train, test = digits
    model = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=0).eval()
    codebook = MnemonicCodebook.for_model(model, seed=0)
    folder = tmp_path_factory.mktemp("user_model")
    model.save_pretrained(folder)
    codebook.save_pretrained(folder)
    small = train.select(range(200))
    labels = small.with_format(None)["labels"]
    return dict(
        model=model,
        codebook=codebook,
        folder=folder,
        train=small,
        test=test.select(range(100)),
        forget=small.select([i for i, y in enumerate(labels) if y == 3]),
        retain=small.select([i for i, y in enumerate(labels) if y != 3]),
        four=small.select([i for i, y in enumerate(labels) if y == 4]),
    )


def _unlearn(setup, config_kwargs, **kwargs):
    FisherUnlearner(UnlearningConfig(**config_kwargs)).unlearn(setup["model"], **kwargs)


def _cases(s):
    three = dict(forget_classes=[3])
    data = dict(forget_dataset=s["forget"], retain_dataset=s["retain"])
    return [
        # configuration
        ("config method", lambda: UnlearningConfig(method="nope"), "`method`"),
        ("config scope", lambda: UnlearningConfig(forget_scope="rows"), "`forget_scope`"),
        ("config tolerance", lambda: UnlearningConfig(verification_tolerance=2.0), "`verification_tolerance`"),
        (
            "config mask ratio",
            lambda: UnlearningConfig(method="fisher_mask", method_config={"mask_ratio": 0.0}),
            "`mask_ratio`",
        ),
        # unlearn: classes
        ("no codebook", lambda: _unlearn(s, dict(method="mnemonic", **three)), "`codebook`"),
        ("class id", lambda: _unlearn(s, dict(forget_classes=[10]), codebook=s["codebook"]), "`forget_classes`"),
        ("every class", lambda: _unlearn(s, dict(forget_classes=list(range(10))), codebook=s["codebook"]), "every"),
        (
            "no forget data",
            lambda: _unlearn(s, dict(method="ssd", **three), retain_dataset=s["retain"]),
            "forget_data",
        ),
        (
            "forget rows of another class",
            lambda: _unlearn(
                s, dict(method="fisher_mask", **three), forget_dataset=s["four"], retain_dataset=s["retain"]
            ),
            "`forget_dataset` holds rows of classes \\['4'\\]",
        ),
        (
            "retain rows of the forget class",
            lambda: _unlearn(s, dict(method="ssd", **three), forget_dataset=s["forget"], retain_dataset=s["train"]),
            "`retain_dataset` holds rows of classes \\['3'\\]",
        ),
        (
            "empty eval",
            lambda: _unlearn(s, dict(method="fisher_mask", **three), eval_dataset=s["test"].select([]), **data),
            "`eval_dataset` is empty",
        ),
        ("model type", lambda: FisherUnlearner(UnlearningConfig(**three)).unlearn("model"), "`model`"),
        # unlearn: samples
        (
            "samples with codes",
            lambda: _unlearn(
                s, dict(method="mnemonic", forget_scope="samples"), train_dataset=s["train"], forget_rows=[0]
            ),
            "`forget_scope`",
        ),
        (
            "duplicate rows",
            lambda: _unlearn(
                s, dict(method="fisher_mask", forget_scope="samples"), train_dataset=s["train"], forget_rows=[1, 1]
            ),
            "`forget_rows`",
        ),
        (
            "row outside",
            lambda: _unlearn(
                s, dict(method="fisher_mask", forget_scope="samples"), train_dataset=s["train"], forget_rows=[10**6]
            ),
            "`forget_rows`",
        ),
        # audit
        (
            "audit empty eval",
            lambda: audit_forgetting(
                s["model"], forget_classes=[3], train_dataset=s["train"], eval_dataset=s["test"].select([])
            ),
            "`eval_dataset`",
        ),
        (
            "audit class absent from train",
            lambda: audit_forgetting(
                s["model"], forget_classes=[3], train_dataset=s["retain"], eval_dataset=s["test"]
            ),
            "`train_dataset`",
        ),
        # training with codes that cannot be learned
        (
            "mix ratio 0",
            lambda: MnemonicTrainer(
                model=s["model"],
                args=MnemonicConfig(
                    output_dir=str(s["folder"] / "never"), report_to="none", use_cpu=True, mnemonic_mix_ratio=0.0
                ),
                train_dataset=s["train"],
            ).train(),
            "mnemonic_mix_ratio",
        ),
    ]


def test_every_bad_input_is_refused_naming_the_argument_and_changes_nothing(setup):
    model, folder = setup["model"], setup["folder"]
    before, files = clone_params(model), folder_state(folder)
    for name, call, message in _cases(setup):
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        text = str(info.value)
        assert "\n" not in text.strip(), (name, text)
        assert re.search(message, text), (name, text)
        assert_params_equal(model, before)
        assert folder_state(folder) == files, name
        assert not (folder / "never").exists() or not any((folder / "never").iterdir()), name


def test_save_refuses_the_models_folder_and_a_full_folder_before_writing(setup, tmp_path):
    model = setup["model"]
    before = clone_params(model)
    # an untrained model has nothing of class 3 to forget (unverified): kept with allow_incomplete, this test is
    # about saving
    unlearner = FisherUnlearner(
        UnlearningConfig(method="logit_suppression", forget_classes=[3], allow_incomplete=True)
    )
    copy = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=0).eval()
    copy.load_state_dict(model.state_dict())
    copy.config._name_or_path = str(setup["folder"])
    unlearner.unlearn(copy, forget_dataset=setup["forget"])
    files = folder_state(setup["folder"])
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    for target, message in ((setup["folder"], "output_dir"), (full, "output_dir")):
        with pytest.raises(ValueError, match=message):
            unlearner.save_pretrained(target, copy)
    assert folder_state(setup["folder"]) == files
    assert folder_state(full) == {"keep.txt": hashlib.sha256(b"mine").hexdigest()}
    assert_params_equal(model, before)
