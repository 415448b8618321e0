"""Retrained references: the model trained again without the forgotten rows, as unlearning is judged against.

[`retrain_without`] fine-tunes from the same starting checkpoint with the same recipe as the trained model, on its
training data without the rows of the forgotten classes, keeping the full label space (the forgotten classes stay in
the head, untrained, so the audit compares logits class by class), once per seed. What it needs comes from the
trained model's folder when recorded there:

- the recipe: ``training_args.json``, written beside the weights by ``MnemonicTrainer.save_model`` (the fields that
  shape training: learning rate, epochs or steps, batch size, schedule, optimiser, seed, the mnemonic settings; no
  paths), else the ``training_args.bin`` transformers' ``Trainer`` pickles there (read only from a local folder,
  since unpickling runs code), else given as ``recipe``;
- the starting checkpoint: given as ``base_model``, else the one ``hf-unlearn train`` recorded in
  ``training_args.json`` (a built-in model, or a Hub id), else the Hub id recorded with the codes
  (``mnemonic_codebook.json``'s ``metadata["base_model"]``). A local starting folder is never recorded (it would be
  published): give it as ``base_model``.

Seed ``i`` (``seed-i`` folders, ``i = 0 .. num_seeds - 1``) trains with the recipe's seed plus ``i``: seed 0 is the
run the trained model had, minus the forgotten rows. Results are cached by a fingerprint of (starting checkpoint and
label space, training data, forgotten classes, recipe): a ``seed-i`` folder holding the same fingerprint in its
``retrain_info.json`` is reused without training (logged), so the audits of several unlearning methods share one
set of references.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

from .utils import get_logger, is_hub_id

logger = get_logger(__name__)

RECIPE_FILE = "training_args.json"
RETRAIN_INFO_FILE = "retrain_info.json"
RECIPE_FORMAT = "hf_unlearn.training_args/1"
BUILTIN_STARTS = ("tiny-vit", "minilm")
# The TrainingArguments fields that shape what training produces (the mnemonic_* fields are added to them). Paths,
# logging, saving, evaluation and Hub settings are left out: they change no weight.
RECIPE_KEYS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "warmup_ratio",
    "optim",
    "optim_args",
    "label_smoothing_factor",
    "seed",
    "data_seed",
    "bf16",
    "fp16",
    "gradient_checkpointing",
    "neftune_noise_alpha",
    "dataloader_drop_last",
    "train_sampling_strategy",
    "full_determinism",
    "average_tokens_across_devices",
    "remove_unused_columns",  # changes no weight, but a dataset read through a transform needs its columns kept
)


# ------------------------------------------------------------------------------------------------------- recipes
def _jsonable(value: Any) -> Any:
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):  # enums
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def training_recipe(args: Any) -> dict[str, Any]:
    """The fields of a ``TrainingArguments`` / ``MnemonicConfig`` (or of a dict of them) that shape training."""
    values = args if isinstance(args, Mapping) else args.to_dict() if hasattr(args, "to_dict") else vars(args)
    keys = [k for k in RECIPE_KEYS if k in values] + sorted(k for k in values if k.startswith("mnemonic_"))
    return {k: _jsonable(values[k]) for k in keys}


def save_training_recipe(
    folder: str | os.PathLike, args: Any, start: Mapping[str, Any] | None = None, train_rows: int | None = None
) -> None:
    """Writes ``training_args.json`` in ``folder``: the recipe of ``args``, the starting checkpoint when known and
    the number of training rows (checked by [`retrain_without`])."""
    record = {
        "format": RECIPE_FORMAT,
        "recipe": training_recipe(args),
        "start": dict(start) if start else None,
        "train_rows": train_rows,
    }
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, RECIPE_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")


def read_training_recipe(model_dir: str | os.PathLike) -> tuple[dict | None, dict | None, str | None]:
    """``(recipe, start, source)`` recorded in a trained model's folder (``training_args.json``, else a local
    ``training_args.bin``); ``(None, None, None)`` when neither is there.

    Raises:
        ValueError: naming ``model_dir`` when the file is there but cannot be read.
    """
    folder = str(model_dir)
    path = os.path.join(folder, RECIPE_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            return dict(record["recipe"]), record.get("start") or None, RECIPE_FILE
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"`model_dir` {folder!r}: {RECIPE_FILE} could not be read ({e}).") from e
    path = os.path.join(folder, "training_args.bin")
    if os.path.isfile(path):
        import torch

        try:
            args = torch.load(path, weights_only=False)  # the user's own training run: a pickled TrainingArguments
        except Exception as e:  # noqa: BLE001 - a pickle of classes this install lacks, a truncated file
            raise ValueError(f"`model_dir` {folder!r}: training_args.bin could not be read ({e}).") from e
        return training_recipe(args), None, "training_args.bin"
    return None, None, None


# ----------------------------------------------------------------------------------------------- fingerprints
def _hash_array(h: Any, value: Any) -> None:
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.dtype != object:
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple, np.ndarray)):
        h.update(f"[{len(value)}".encode())
        for v in value:
            _hash_array(h, v)
        h.update(b"]")
    else:
        h.update(repr(value).encode())


def dataset_fingerprint(dataset: Any) -> str:
    """A hash of a data set's contents (every column, every row, in order): the same rows give the same hash in
    every process, whatever files or transforms produced them."""
    from .data_utils import is_hf_dataset

    h = hashlib.sha256()
    if is_hf_dataset(dataset):
        ds = dataset.with_format("numpy")
        names = sorted(ds.column_names)
        h.update(json.dumps(names).encode())
        for start in range(0, len(ds), 1024):
            batch = ds[start : start + 1024]
            for name in names:
                _hash_array(h, batch[name])
    elif isinstance(dataset, Mapping):
        for name in sorted(dataset):
            h.update(name.encode())
            _hash_array(h, dataset[name])
    else:
        for i in range(len(dataset)):
            row = dataset[i]
            for name in sorted(row):
                h.update(name.encode())
                _hash_array(h, row[name])
    return h.hexdigest()


def _files_digest(folder: str) -> str:
    """A hash of a model folder's config and weights (the files that make the model)."""
    h = hashlib.sha256()
    names = sorted(
        n for n in os.listdir(folder) if n == "config.json" or n.endswith((".safetensors", ".bin")) and "model" in n
    )
    for name in names:
        if name.startswith(("mnemonic_", "training_args")):
            continue
        h.update(name.encode())
        with open(os.path.join(folder, name), "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def retrain_fingerprint(
    start: Mapping[str, Any], id2label: Mapping[int, str], data: str, forget: Iterable[int], recipe: Mapping[str, Any]
) -> str:
    """The cache key of a set of retrained references."""
    key = {
        "start": dict(start),
        "id2label": {str(k): str(v) for k, v in sorted(id2label.items())},
        "data": data,
        "forget": sorted(int(c) for c in forget),
        "recipe": dict(recipe),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- starting point
def resolve_start(model_dir: str, base_model: str | None, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
    """Where the references start from: ``{"model": name}`` (a built-in model, a Hub id or a local folder).

    Raises:
        ValueError: naming ``base_model`` when none is given nor recorded, or the given one cannot be found.
    """
    if base_model is not None:
        if base_model in BUILTIN_STARTS or os.path.isdir(base_model):
            return {"model": base_model}
        if os.path.exists(base_model) or not is_hub_id(base_model) or base_model.startswith((".", "/", "~")):
            raise ValueError(f"`base_model` {base_model!r} is neither a model folder, a Hub id nor {BUILTIN_STARTS}.")
        return {"model": base_model}
    if recorded and recorded.get("model"):
        return dict(recorded)
    if recorded and recorded.get("local"):  # trained from a local folder, recorded without its path
        raise ValueError(
            f"`base_model` is needed: `model_dir` {model_dir!r} was trained from a local folder, which is not "
            "recorded (it would be published); give that folder."
        )
    from .mnemonic.codebook import CODES_CONFIG_FILE

    path = os.path.join(model_dir, CODES_CONFIG_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                name = (json.load(f).get("metadata") or {}).get("base_model")
        except (OSError, ValueError, AttributeError):
            name = None
        if isinstance(name, str) and is_hub_id(name):
            return {"model": name}
    raise ValueError(
        f"`base_model` is needed: `model_dir` {model_dir!r} records no starting checkpoint (a model trained from a "
        "local folder does not record it); give the folder or Hub id training started from."
    )


def _start_identity(start: Mapping[str, Any]) -> dict[str, Any]:
    name = str(start["model"])
    if name in BUILTIN_STARTS:
        return {"model": name}
    if os.path.isdir(name):  # a local folder: what it holds, not where it is
        return {"model_files": _files_digest(name)}
    return {"model": name}


def _build_start(start: Mapping[str, Any], model_dir: str, id2label: Mapping[int, str], seed: int, modality: str):
    """The starting model for one seed, with the full label space of the trained model."""
    import transformers

    transformers.set_seed(seed)
    label_kw = dict(
        num_labels=len(id2label),
        id2label={int(k): v for k, v in id2label.items()},
        label2id={v: int(k) for k, v in id2label.items()},
    )
    name = str(start["model"])
    auto = (
        transformers.AutoModelForImageClassification
        if modality == "image"
        else transformers.AutoModelForSequenceClassification
    )
    if name == "tiny-vit":  # built from a config with random weights: the trained model's config, seed-drawn
        config = transformers.AutoConfig.from_pretrained(model_dir)
        return auto.from_config(config)
    if name == "minilm":
        from .data import minilm_path

        name = minilm_path()
    try:
        return auto.from_pretrained(name, ignore_mismatched_sizes=True, **label_kw)
    except (OSError, ValueError) as e:  # not found, offline, another kind of model
        reason = " ".join(str(e).split())[:300]
        raise ValueError(f"`base_model` {start['model']!r} could not be loaded ({type(e).__name__}: {reason}).") from e


# ------------------------------------------------------------------------------------------------------ retrain
def retrain_without(
    model_dir: str | os.PathLike,
    train_dataset: Any,
    forget_classes: int | str | Iterable[int | str],
    output_dir: str | os.PathLike,
    *,
    num_seeds: int = 3,
    base_model: str | None = None,
    recipe: Mapping[str, Any] | None = None,
    data_collator: Any = None,
    processing_class: Any = None,
    data_fingerprint: str | None = None,
    overwrite_output_dir: bool = False,
    trainer_kwargs: Mapping[str, Any] | None = None,
) -> list[str]:
    """Fine-tunes ``num_seeds`` references without ``forget_classes``; returns their folders (``output_dir/seed-i``).

    Args:
        model_dir: the trained model's folder: its label space, its recipe (``training_args.json`` /
            ``training_args.bin``) and its starting checkpoint are read from it (see the module docstring).
        train_dataset: the training data as model inputs with ``labels`` (the same rows the model was trained on);
            the rows of ``forget_classes`` are dropped.
        forget_classes: class ids or label names of the model.
        output_dir: folder of the references, one ``seed-i`` folder per seed.
        num_seeds: how many references.
        base_model: the starting checkpoint (folder, Hub id, ``"tiny-vit"`` or ``"minilm"``) when ``model_dir`` does
            not record it, or to override it.
        recipe: ``MnemonicConfig`` fields; they override the recorded recipe (and are the whole recipe when none is
            recorded).
        data_collator: the collator the inputs need (e.g. padding for text).
        processing_class: saved with each reference (default: the one saved in ``model_dir``).
        data_fingerprint: the data's part of the cache key (default: a hash of ``train_dataset``'s contents).
        overwrite_output_dir: replace ``seed-i`` folders that hold references of another fingerprint.
        trainer_kwargs: more ``MnemonicConfig`` fields that change no weight (e.g. ``disable_tqdm``).

    Raises:
        ValueError: naming the argument, before anything is trained or written.
    """
    import torch

    from .data_utils import LABEL_COLUMNS, check_dataset, encode_labels, label_column, split_by_classes
    from .mnemonic import MnemonicConfig, MnemonicTrainer
    from .utils import detect_modality, resolve_classes

    model_dir = str(model_dir)
    output_dir = str(output_dir)
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"`num_seeds` must be an int >= 1, got {num_seeds!r}.")
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise ValueError(f"`model_dir` {model_dir!r} holds no config.json: give the trained model's folder.")
    if os.path.isfile(output_dir):
        raise ValueError(f"`output_dir` {output_dir!r} is a file; give a folder.")
    import transformers

    config = transformers.AutoConfig.from_pretrained(model_dir)
    arch = (getattr(config, "architectures", None) or [""])[0]
    modality = "image" if arch.endswith("ForImageClassification") else "text"
    if not arch.endswith(("ForImageClassification", "ForSequenceClassification")):
        raise ValueError(f"`model_dir` {model_dir!r} holds a {arch or config.model_type} model, not a classifier.")
    n = int(config.num_labels)
    raw_names = getattr(config, "id2label", None) or {}
    id2label = {i: str(raw_names.get(i, raw_names.get(str(i), f"LABEL_{i}"))) for i in range(n)}
    forget = resolve_classes(forget_classes, id2label, "forget_classes")
    if len(forget) >= n:
        raise ValueError("`forget_classes` names every class: nothing would be left to train on.")
    size = check_dataset(train_dataset, "train_dataset")
    columns = getattr(train_dataset, "column_names", None)
    if columns is not None and any(c in columns for c in LABEL_COLUMNS):  # label names -> the model's class ids
        train_dataset = encode_labels(train_dataset, label_column(columns, "train_dataset"), id2label, "train_dataset")
    recorded, start_rec, source = read_training_recipe(model_dir)
    trained_rows = _recorded_rows(model_dir)
    if trained_rows is not None and trained_rows != size:
        logger.warning(
            "`train_dataset` has %d rows but %s was trained on %d: the references are not the model minus the "
            "forgotten rows unless the same data is given (same files, splits and max_train_samples).",
            size,
            os.path.basename(os.path.normpath(model_dir)),
            trained_rows,
        )
    if recorded is None and not recipe:
        raise ValueError(
            f"`recipe` is needed: `model_dir` {model_dir!r} holds no {RECIPE_FILE} nor training_args.bin; give the "
            "training arguments (learning_rate, num_train_epochs, per_device_train_batch_size, ...)."
        )
    full_recipe = dict(recorded or {})
    full_recipe.update({str(k): _jsonable(v) for k, v in (recipe or {}).items()})
    unknown = sorted(k for k in full_recipe if k not in MnemonicConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"`recipe` holds fields MnemonicConfig does not have: {unknown}.")
    start = resolve_start(model_dir, base_model, start_rec)
    forget_ds, retain = split_by_classes(train_dataset, forget, "train_dataset")
    if check_dataset(retain, "train_dataset") == 0:
        raise ValueError("`train_dataset` holds only rows of `forget_classes`.")
    data_key = data_fingerprint or dataset_fingerprint(train_dataset)
    key = retrain_fingerprint(_start_identity(start), id2label, data_key, forget, full_recipe)
    if processing_class is None:
        processing_class = _saved_processing_class(model_dir)

    base_seed = int(full_recipe.get("seed", 42))
    folders = [os.path.join(output_dir, f"seed-{i}") for i in range(num_seeds)]
    todo = []
    for i, folder in enumerate(folders):
        info = _read_info(folder)
        if info is not None and info.get("fingerprint") == key:
            logger.info("Retrained reference %s is cached (fingerprint %s): not trained again.", folder, key[:16])
            continue
        if os.path.exists(folder) and (os.listdir(folder) if os.path.isdir(folder) else True):
            if not overwrite_output_dir:
                what = "references of another model, data, forget set or recipe" if info else "other files"
                raise ValueError(
                    f"`output_dir` {output_dir!r}: {folder!r} holds {what}; give another folder or set "
                    "`overwrite_output_dir`."
                )
        todo.append(i)
    logger.info(
        "Retraining %d of %d references without classes %s (%d of %d training rows kept; recipe from %s; start %s)",
        len(todo),
        num_seeds,
        [id2label[c] for c in forget],
        size - len(forget_ds) if hasattr(forget_ds, "__len__") else size,
        size,
        source or "`recipe`",
        start["model"] if not os.path.isdir(str(start["model"])) else os.path.basename(str(start["model"])),
    )
    run_only = dict(
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        load_best_model_at_end=False,
        push_to_hub=False,
        use_cpu=not torch.cuda.is_available(),
    )
    run_only.update(trainer_kwargs or {})
    for i in todo:
        seed = base_seed + i
        folder = folders[i]
        staging = folder + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        fields = {k: v for k, v in full_recipe.items() if k != "seed"}
        args = MnemonicConfig(output_dir=staging, seed=seed, **fields, **run_only)
        model = _build_start(start, model_dir, id2label, seed, modality)
        if detect_modality(model) != modality:
            raise ValueError(f"`base_model` {start['model']!r} takes other inputs than `model_dir`'s {modality}s.")
        trainer = MnemonicTrainer(
            model=model,
            args=args,
            train_dataset=retain,
            data_collator=data_collator,
            processing_class=processing_class,
        )
        trainer.train()
        trainer.save_model(staging)
        info = {
            "fingerprint": key,
            "seed": seed,
            "seed_index": i,
            "forget_classes": [id2label[c] for c in forget],
            "num_labels": n,
            "train_rows": len(retain) if hasattr(retain, "__len__") else None,
            "train_rows_of_model": trained_rows,
            "recipe": full_recipe,
            "recipe_source": source or "recipe",
            "start": _start_identity(start) if os.path.isdir(str(start["model"])) else dict(start),
        }
        with open(os.path.join(staging, RETRAIN_INFO_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2, sort_keys=True)
            f.write("\n")
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.replace(staging, folder)
    return folders


def _recorded_rows(model_dir: str) -> int | None:
    try:
        with open(os.path.join(model_dir, RECIPE_FILE), encoding="utf-8") as f:
            rows = json.load(f).get("train_rows")
    except (OSError, ValueError, AttributeError):
        return None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


def _saved_processing_class(model_dir: str) -> Any:
    import transformers

    if os.path.isfile(os.path.join(model_dir, "preprocessor_config.json")):
        return transformers.AutoImageProcessor.from_pretrained(model_dir)
    if os.path.isfile(os.path.join(model_dir, "tokenizer_config.json")):
        return transformers.AutoTokenizer.from_pretrained(model_dir)
    return None


def _read_info(folder: str) -> dict | None:
    path = os.path.join(folder, RETRAIN_INFO_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
