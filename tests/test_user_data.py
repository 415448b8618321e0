"""Data as the user has it: every command reads save_to_disk folders, image folders, CSV/JSON-lines/Parquet files,
with string or ClassLabel labels mapped by the model's label2id; `hf-unlearn retrain` builds the references."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TEXT_VOCAB, make_keyword_texts, make_tiny_bert

from hf_unlearn.cli import main

NAMES = ["fruit", "color", "animal"]  # keyword class i of conftest's text task is NAMES[i]
SORTED = sorted(NAMES)  # string labels are read as a ClassLabel of their sorted names
TRAIN_FLAGS = ["--num_train_epochs", "1", "--learning_rate", "5e-3", "--mnemonic_mix_ratio", "0.5",
               "--per_device_train_batch_size", "16", "--save_strategy", "no", "--disable_tqdm", "true"]  # fmt: skip
FORGET_FLAGS = ["--method", "logit_suppression", "--allow_incomplete", "true"]


def call(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    t, y = make_keyword_texts(n, seed)
    return t, [NAMES[i] for i in y]


@pytest.fixture(scope="module")
def text_base(tmp_path_factory) -> Path:
    """A 'pretrained' tiny BERT folder with its tokenizer (no label names): what text models start from."""
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp("base") / "tiny-bert"
    make_tiny_bert(num_labels=3).save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(TEXT_VOCAB)}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory) -> Path:
    """train.csv / test.csv with `sentence` and string `label` columns (run_classification.py's defaults)."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("csv")
    for split, n, seed in (("train", 60, 0), ("test", 30, 1)):
        t, y = texts(n, seed)
        pd.DataFrame({"sentence": t, "label": y}).to_csv(folder / f"{split}.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def csv_model(tmp_path_factory, text_base, csv_dir) -> Path:
    out = tmp_path_factory.mktemp("models") / "bert-csv"
    assert main(["train", "--model", str(text_base), "--dataset", str(csv_dir), "--output_dir", str(out),
                 *TRAIN_FLAGS]) == 0  # fmt: skip
    return out


def train_forget_evaluate(capsys, tmp_path, model_args, data_args, forget, *, check_names=None):
    """train -> forget -> evaluate on one data form; returns the trained model's folder."""
    model = tmp_path / "model"
    code, _, err = call(capsys, "train", *model_args, *data_args, "--output_dir", model, *TRAIN_FLAGS)
    assert code == 0, err
    config = json.loads((model / "config.json").read_text())
    if check_names is not None:
        assert [config["id2label"][str(i)] for i in range(len(check_names))] == check_names
    code, out, err = call(capsys, "forget", "--model_dir", model, *data_args, "--forget_classes", forget,
                          "--output_dir", tmp_path / "forgot", *FORGET_FLAGS)  # fmt: skip
    assert code == 0, err
    assert f"{forget} (forgotten)" in out
    code, out, err = call(
        capsys, "evaluate", "--model_dir", tmp_path / "forgot", *data_args, "--forget_classes", forget
    )
    assert code == 0, err
    assert f"{forget} (forgotten)" in out and "test accuracy" in out
    return model


# ------------------------------------------------------------------------------------------------ each data form
def test_csv_folder_with_string_labels(capsys, tmp_path, text_base, csv_dir):
    train_forget_evaluate(
        capsys, tmp_path, ["--model", text_base], ["--dataset", csv_dir], "color", check_names=SORTED
    )


def test_json_lines_file_with_test_file_and_own_column_names(capsys, tmp_path, text_base):
    for split, n, seed in (("train", 60, 0), ("test", 30, 1)):
        t, y = texts(n, seed)
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for a, b in zip(t, y):
                f.write(json.dumps({"question": a, "topic": b}) + "\n")
    data = ["--dataset", tmp_path / "train.jsonl", "--test_file", tmp_path / "test.jsonl",
            "--text_column", "question", "--label_column", "topic"]  # fmt: skip
    train_forget_evaluate(capsys, tmp_path, ["--model", text_base], data, "animal", check_names=SORTED)


def test_parquet_file_split_by_test_size(capsys, tmp_path, text_base):
    import pandas as pd

    t, y = texts(80, 2)
    pd.DataFrame({"text": t, "label": [NAMES.index(v) for v in y]}).to_parquet(tmp_path / "data.parquet")
    # integer labels, `text` column (the default falls back to it when there is no `sentence`)
    train_forget_evaluate(capsys, tmp_path, ["--model", text_base], ["--dataset", tmp_path / "data.parquet"], "1")


def write_image_folder(root: Path, per_class: int = 12) -> None:
    """imagefolder layout: root/{train,test}/<class>/<n>.png, digits 0-2 as 8x8 grey PNGs."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    names = ["zero", "one", "two"]
    counts: dict[tuple[str, int], int] = {}
    for img, y in zip(digits.images, digits.target):
        if y > 2:
            continue
        split = "train" if counts.get(("train", y), 0) < per_class else "test"
        if counts.get((split, y), 0) >= per_class:
            continue
        counts[(split, y)] = counts.get((split, y), 0) + 1
        folder = root / split / names[y]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(folder / f"{counts[(split, y)]}.png")


def test_image_folder(capsys, tmp_path):
    write_image_folder(tmp_path / "images")
    model_args = ["--model", "tiny-vit", "--tiny_vit_image_size", "8", "--tiny_vit_hidden_size", "16",
                  "--tiny_vit_num_hidden_layers", "1"]  # fmt: skip
    model = train_forget_evaluate(capsys, tmp_path, model_args, ["--dataset", tmp_path / "images"], "one",
                                  check_names=["one", "two", "zero"])  # fmt: skip
    assert (model / "preprocessor_config.json").is_file()
    # `hf-unlearn train` recorded its built-in starting model: retrain needs no --base_model
    assert json.loads((model / "training_args.json").read_text())["start"] == {"model": "tiny-vit"}
    code, out, err = call(capsys, "retrain", "--model_dir", model, "--dataset", tmp_path / "images",
                          "--forget_classes", "one", "--output_dir", tmp_path / "refs", "--num_seeds", "1",
                          "--disable_tqdm")  # fmt: skip
    assert code == 0, err
    assert "1 trained, 0 reused" in out
    ref = tmp_path / "refs" / "seed-0"
    assert json.loads((ref / "config.json").read_text())["id2label"] == {"0": "one", "1": "two", "2": "zero"}
    assert (ref / "preprocessor_config.json").is_file()


def test_save_to_disk_folder_with_string_labels(capsys, tmp_path):
    from datasets import Dataset

    from hf_unlearn.data import digits_datasets

    train, _ = digits_datasets()
    rows = train.with_format("numpy")[:300]
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    ds = Dataset.from_dict(
        {"pixel_values": rows["pixel_values"].tolist(), "label": [words[y] for y in rows["labels"]]}
    )
    ds.save_to_disk(str(tmp_path / "saved"))
    model_args = ["--model", "tiny-vit", "--tiny_vit_hidden_size", "16", "--tiny_vit_num_hidden_layers", "1"]
    train_forget_evaluate(capsys, tmp_path, model_args, ["--dataset", tmp_path / "saved"], "three",
                          check_names=sorted(words))  # fmt: skip


# ---------------------------------------------------------------------------------------------- refusals
def test_unknown_label_names_refused_naming_the_flag(capsys, tmp_path, csv_model):
    import pandas as pd

    t, y = texts(20, 3)
    y[0] = "vehicle"
    pd.DataFrame({"sentence": t, "label": y}).to_csv(tmp_path / "other.csv", index=False)
    code, _, err = call(capsys, "evaluate", "--model_dir", csv_model, "--dataset", tmp_path / "other.csv",
                        "--forget_classes", "color")  # fmt: skip
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("hf-unlearn evaluate: error:")
    assert "--label_column" in line and "'vehicle'" in line and "animal" in line


@pytest.mark.parametrize("form", ["csv", "save_to_disk", "folder"])
def test_empty_data_refused_in_one_line(capsys, tmp_path, csv_model, form):
    from datasets import Dataset

    if form == "csv":
        path = tmp_path / "empty.csv"
        path.write_text("sentence,label\n")
    elif form == "save_to_disk":
        path = tmp_path / "empty"
        Dataset.from_dict({"sentence": [], "label": []}).save_to_disk(str(path))
    else:
        path = tmp_path / "nothing"
        path.mkdir()
    code, _, err = call(capsys, "evaluate", "--model_dir", csv_model, "--dataset", path, "--forget_classes", "color")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("hf-unlearn evaluate: error: --dataset") and "could not be read" not in line
    assert "no rows" in line or "empty folder" in line


def test_unreadable_file_type_refused(capsys, tmp_path, csv_model):
    (tmp_path / "data.xlsx").write_text("x")
    code, _, err = call(capsys, "evaluate", "--model_dir", csv_model, "--dataset", tmp_path / "data.xlsx",
                        "--forget_classes", "color")  # fmt: skip
    assert code == 2 and ".csv" in err and "--dataset" in err


# -------------------------------------------------------------------------------------------- label mapping
def test_prepare_splits_maps_label_names_by_the_models_label2id(text_base, csv_dir):
    from transformers import AutoTokenizer

    from hf_unlearn.data import load_splits, prepare_splits
    from hf_unlearn.scripts.args import DataArguments

    args = DataArguments(dataset=str(csv_dir))
    raw = load_splits(args)
    assert raw.id2label == dict(enumerate(SORTED)) and raw.label_column == "label"
    model = make_tiny_bert(num_labels=4)  # the model's own order, and one class the data does not have
    model.config.id2label = {0: "animal", 1: "vehicle", 2: "fruit", 3: "color"}
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    tok = AutoTokenizer.from_pretrained(text_base)
    data = prepare_splits(raw, args, model, tok)
    want = {"animal": 0, "vehicle": 1, "fruit": 2, "color": 3}
    raw_labels = raw.train.with_format(None)["labels"]  # the names as the file has them
    assert set(raw_labels) == set(NAMES)
    assert data.train.with_format(None)["labels"] == [want[v] for v in raw_labels]
    assert data.id2label == model.config.id2label


def test_mnemonic_trainer_accepts_string_labels_from_a_csv(tmp_path, csv_dir, mnemonic_args, tiny_tokenizer):
    from datasets import load_dataset
    from transformers import DataCollatorWithPadding

    from hf_unlearn import MnemonicTrainer

    ds = load_dataset("csv", data_files=str(csv_dir / "train.csv"))["train"]
    ds = ds.map(lambda b: tiny_tokenizer(b["sentence"]), batched=True, remove_columns=["sentence"])
    model = make_tiny_bert(num_labels=3)
    model.config.id2label = dict(enumerate(NAMES))
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    trainer = MnemonicTrainer(model=model, args=mnemonic_args(num_train_epochs=1, mnemonic_mix_ratio=0.5),
                              train_dataset=ds, data_collator=DataCollatorWithPadding(tiny_tokenizer))  # fmt: skip
    names = ds["label"]
    assert trainer.train_dataset["label"] == [NAMES.index(v) for v in names]
    trainer.train()
    bad = ds.map(lambda b: {"label": ["vehicle" if i == 0 else v for i, v in enumerate(b["label"])]}, batched=True)
    with pytest.raises(
        ValueError, match=r"`train_dataset` 'label' holds label names the model does not have \('vehicle'\)"
    ):
        MnemonicTrainer(model=model, args=mnemonic_args(), train_dataset=bad)


def test_mnemonic_trainer_refuses_an_empty_train_dataset(tiny_vit_model, mnemonic_args):
    from datasets import Dataset

    from hf_unlearn import MnemonicTrainer

    empty = Dataset.from_dict({"pixel_values": [], "labels": []})
    with pytest.raises(ValueError, match=r"^`train_dataset` is empty \(0 rows\)"):
        MnemonicTrainer(model=tiny_vit_model, args=mnemonic_args(), train_dataset=empty)


# ------------------------------------------------------------------------------------------------- retrain
def test_retrain_command_seed_folders_full_label_space_and_cache(capsys, tmp_path, text_base, csv_dir, csv_model):
    refs = tmp_path / "refs"
    argv = ["retrain", "--model_dir", csv_model, "--dataset", csv_dir, "--forget_classes", "color",
            "--output_dir", refs, "--num_seeds", "2", "--disable_tqdm"]  # fmt: skip
    code, _, err = call(capsys, *argv)
    assert code == 2 and "--base_model is needed" in err.strip().splitlines()[-1]  # a local start is not recorded
    assert not refs.exists()
    code, out, err = call(capsys, *argv, "--base_model", text_base)
    assert code == 0, err
    assert "2 trained, 0 reused" in out
    assert sorted(os.listdir(refs)) == ["seed-0", "seed-1"]
    record = (csv_model / "training_args.json").read_text()
    assert json.loads(record)["start"] == {"local": True} and str(text_base) not in record  # no local path kept
    recipe = json.loads(record)["recipe"]
    for i in range(2):
        config = json.loads((refs / f"seed-{i}" / "config.json").read_text())
        assert config["id2label"] == {str(k): v for k, v in enumerate(SORTED)}
        info = json.loads((refs / f"seed-{i}" / "retrain_info.json").read_text())
        assert info["forget_classes"] == ["color"] and info["seed"] == recipe["seed"] + i
        assert info["train_rows"] == 60 - sum(v == "color" for v in texts(60, 0)[1])
        assert info["recipe"]["learning_rate"] == 5e-3  # the trained model's recipe
    weights = (refs / "seed-0" / "model.safetensors").read_bytes()
    code, out, err = call(capsys, *argv, "--base_model", text_base)
    assert code == 0, err
    assert "0 trained, 2 reused from the cache" in out
    assert (refs / "seed-0" / "model.safetensors").read_bytes() == weights
    # another recipe is another fingerprint: refused rather than mixed with the cached references
    code, _, err = call(capsys, *argv, "--base_model", text_base, "--learning_rate", "1e-3")
    assert code == 2 and "--overwrite_output_dir" in err

    code, out, err = call(capsys, "audit", "--model_dir", csv_model, "--dataset", csv_dir, "--forget_classes",
                          "color", "--retrained", refs / "seed-0", refs / "seed-1", "--relearn_steps", "1",
                          "--output_file", tmp_path / "audit.json")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "audit.json").read_text())


def test_retrain_without_python_reads_the_recipe_and_caches(tmp_path, digits, mnemonic_args, caplog):
    import logging

    from hf_unlearn import MnemonicTrainer
    from hf_unlearn.data import tiny_vit
    from hf_unlearn.retrain import retrain_without

    train = digits[0].select(range(200))
    model = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=0)
    args = mnemonic_args(num_train_epochs=1, mnemonic_mix_ratio=0.8, learning_rate=3e-3, seed=7)
    trainer = MnemonicTrainer(model=model, args=args, train_dataset=train)
    trainer.start_model = {"model": "tiny-vit"}  # what `hf-unlearn train` records for its built-in model
    trainer.train()
    trainer.save_model(str(tmp_path / "vit"))
    refs = retrain_without(tmp_path / "vit", train, [3], tmp_path / "refs", num_seeds=2,
                           trainer_kwargs={"disable_tqdm": True})  # fmt: skip
    assert refs == [str(tmp_path / "refs" / f"seed-{i}") for i in range(2)]
    from safetensors.torch import load_file

    w0, w1 = (load_file(os.path.join(r, "model.safetensors")) for r in refs)
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)  # two seeds, two models
    assert len(json.loads(Path(refs[0], "config.json").read_text())["id2label"]) == 10  # forgotten class kept
    info = json.loads(Path(refs[1], "retrain_info.json").read_text())
    assert info["seed"] == 8 and info["recipe"]["learning_rate"] == 3e-3 and info["start"] == {"model": "tiny-vit"}
    assert info["train_rows"] == 200 - int((train.with_format("numpy")[:]["labels"] == 3).sum())
    assert info["train_rows_of_model"] == 200
    with caplog.at_level(logging.INFO, logger="hf_unlearn.retrain"):
        again = retrain_without(tmp_path / "vit", train, ["3"], tmp_path / "refs", num_seeds=2)
    assert not [r for r in caplog.records if r.name == "hf_unlearn.retrain" and r.levelno >= logging.WARNING]
    assert again == refs
    assert sum("is cached" in r.getMessage() for r in caplog.records) == 2
    assert load_file(os.path.join(refs[0], "model.safetensors"))["classifier.weight"].equal(w0["classifier.weight"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hf_unlearn.retrain"):  # other data than the model's: said so
        retrain_without(tmp_path / "vit", train.select(range(150)), [3], tmp_path / "other", num_seeds=1)
    assert any("has 150 rows but vit was trained on 200" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="`num_seeds`"):
        retrain_without(tmp_path / "vit", train, [3], tmp_path / "refs", num_seeds=0)
    with pytest.raises(ValueError, match="`forget_classes`"):
        retrain_without(tmp_path / "vit", train, [12], tmp_path / "refs")


def test_retrain_without_takes_string_labels(tmp_path, text_base, csv_dir, csv_model, tiny_tokenizer):
    from datasets import load_dataset
    from transformers import DataCollatorWithPadding

    from hf_unlearn.retrain import retrain_without

    ds = load_dataset("csv", data_files=str(csv_dir / "train.csv"))["train"]
    ds = ds.map(lambda b: tiny_tokenizer(b["sentence"]), batched=True, remove_columns=["sentence"])
    (ref,) = retrain_without(csv_model, ds, "color", tmp_path / "refs", num_seeds=1, base_model=str(text_base),
                             data_collator=DataCollatorWithPadding(tiny_tokenizer),
                             trainer_kwargs={"disable_tqdm": True})  # fmt: skip
    info = json.loads(Path(ref, "retrain_info.json").read_text())
    assert info["train_rows"] == sum(v != "color" for v in ds["label"]) and info["forget_classes"] == ["color"]
    with pytest.raises(ValueError, match="`base_model` 'user/no-such-model' could not be loaded"):
        retrain_without(csv_model, ds, "color", tmp_path / "other", num_seeds=1, base_model="user/no-such-model",
                        data_collator=DataCollatorWithPadding(tiny_tokenizer))  # fmt: skip
    assert not (tmp_path / "other" / "seed-0").exists()


def test_prepare_splits_maps_a_classlabel_in_another_order(tmp_path):
    """An imagefolder's ClassLabel (sorted folder names) read for a model whose label2id has another order."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    from hf_unlearn.data import load_splits, prepare_splits, tiny_vit
    from hf_unlearn.scripts.args import DataArguments

    names = ["one", "two", "zero"]
    features = Features({"pixel_values": Sequence(Sequence(Sequence(Value("float32")))),
                         "label": ClassLabel(names=names)})  # fmt: skip
    x = np.zeros((30, 1, 8, 8), dtype=np.float32).tolist()
    Dataset.from_dict({"pixel_values": x, "label": [i % 3 for i in range(30)]}, features=features).save_to_disk(
        str(tmp_path / "d")
    )
    args = DataArguments(dataset=str(tmp_path / "d"))
    raw = load_splits(args)
    model = tiny_vit(num_labels=3, hidden_size=16, num_hidden_layers=1, id2label={0: "zero", 1: "one", 2: "two"})
    data = prepare_splits(raw, args, model, None)
    got = data.train.with_format(None)["labels"]
    want = [{"one": 1, "two": 2, "zero": 0}[names[i]] for i in raw.train.with_format(None)["labels"]]
    assert got == want and set(got) == {0, 1, 2}
    model.config.id2label = {0: "zero", 1: "one", 2: "three"}
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    with pytest.raises(
        ValueError, match=r"`label_column` 'label' holds label names the model does not have \('two'\)"
    ):
        prepare_splits(raw, args, model, None)
