"""Every unlearning method on every architecture family, audited against models retrained without the class.

For each family of ``hf_unlearn.testing_utils.FAMILIES`` a tiny classifier (``tiny_classifier``, random init) is
trained with ``MnemonicTrainer`` (codes): vision families on scikit-learn digits (8x8x1), text families on the six
TREC coarse classes (``/work/shared/data/trec`` or ``--trec-dir``) tokenized with the pretrained MiniLM's tokenizer
(``hf_unlearn.data.minilm_path()``; the model itself is tiny and random, only the vocabulary is MiniLM's). Text
families are skipped with a recorded reason when TREC or the tokenizer is absent. ``--refs`` models are then
trained with the same recipe on the training data without the forget class (full label space), and every method
runs on a copy of the original, audited with ``audit_forgetting`` against those references.

``--split validation`` (the default, for development) holds out a stratified 20% of the *training* data as the
evaluation split; ``--split test`` uses the real test split (digits' fixed 450 images, TREC_10).

Trained models are cached on disk under ``benchmarks/.cache/architectures/`` (git-ignored), keyed by family, task,
split, seed, forgotten classes and a hash of the recipe, so reruns and other scripts reuse them. Stable API (other
scripts import it)::

    from bench_architectures import train_family, load_task
    model_dir = train_family("swin", forget_classes=(), seed=0, split="validation", with_codes=True)
    task = load_task("swin", split="validation")  # task.train / task.eval / task.collator / task.id2label
    model = AutoModelFor...from_pretrained(model_dir); codebook = MnemonicCodebook.from_pretrained(model_dir)

``train_family(family, *, forget_classes=(), seed=0, split="validation", with_codes=True, epochs=None) -> str``
returns the folder (``save_pretrained`` of the model, the codes when ``with_codes``, ``recipe.json``); a folder
is written atomically (temporary folder renamed) so a concurrent reader never sees half a model.

Run: ``flock /tmp/hf_unlearn_bench.lock python benchmarks/bench_architectures.py --split test``
(``--families vit,bert --methods mnemonic,logit_suppression`` for a quick subset).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import REPO_ROOT, loadavg, training_args  # noqa: E402

CACHE_DIR = os.path.join(REPO_ROOT, "benchmarks", ".cache", "architectures")
RESULTS_DIR = os.path.join(REPO_ROOT, "benchmarks", "results")
DEFAULT_TREC_DIR = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "trec"))
METHODS = ("mnemonic", "mnemonic_head", "fisher_mask", "ssd", "fisher_noise", "logit_suppression")
CODE_METHODS = ("mnemonic", "mnemonic_head")

# One recipe per task (bench_common.training_args keys); the recipe is part of the cache key.
RECIPES: dict[str, dict[str, Any]] = {
    "digits": dict(
        epochs=20, batch_size=32, lr=2e-3, weight_decay=0.01, warmup_steps=0.05, lr_scheduler_type="cosine", t_mix=0.1
    ),
    "trec": dict(
        epochs=8,
        batch_size=32,
        lr=2e-3,
        weight_decay=0.01,
        warmup_steps=0.05,
        lr_scheduler_type="cosine",
        t_mix=0.1,
        max_length=32,
        train_size=3000,
    ),
}
MODEL_SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
VALIDATION_FRACTION = 0.2


# ------------------------------------------------------------------------------------------------------------ data
@dataclass
class Task:
    """The data of one family's task: ``train`` / ``eval`` datasets (``labels`` column), collator, labels."""

    name: str
    split: str
    train: Any
    eval: Any
    collator: Any
    processing_class: Any
    id2label: dict[int, str]
    description: str


_TASKS: dict[tuple[str, str, str], Task] = {}


def task_name(family: str) -> str:
    from hf_unlearn.testing_utils import TEXT_FAMILIES, VISION_FAMILIES

    if family in VISION_FAMILIES:
        return "digits"
    if family in TEXT_FAMILIES:
        return "trec"
    raise ValueError(f"`family` must be one of the testing_utils FAMILIES, got {family!r}")


def _validation_split(train: Any, seed: int = 0) -> tuple[Any, Any]:
    """A stratified ``VALIDATION_FRACTION`` of the training rows as the evaluation split (development only)."""
    from sklearn.model_selection import train_test_split

    from hf_unlearn.data_utils import labels_of

    y = labels_of(train)
    idx = np.arange(len(y))
    tr, va = train_test_split(idx, test_size=VALIDATION_FRACTION, random_state=seed, stratify=y)
    return train.select(sorted(tr.tolist())), train.select(sorted(va.tolist()))


def load_task(family: str, split: str = "validation", trec_dir: str | None = None) -> Task:
    """The task ``family`` is trained on (cached in memory). Raises ``FileNotFoundError`` / ``ImportError`` when
    TREC or the MiniLM tokenizer is not available (text families)."""
    if split not in ("validation", "test"):
        raise ValueError(f"`split` must be 'validation' or 'test', got {split!r}")
    name = task_name(family)
    trec_dir = trec_dir or DEFAULT_TREC_DIR
    key = (name, split, trec_dir if name == "trec" else "")
    if key in _TASKS:
        return _TASKS[key]
    if name == "digits":
        from hf_unlearn.data import digits_datasets, digits_id2label

        train, test = digits_datasets(seed=0)
        if split == "validation":
            train, test = _validation_split(train)
        task = Task(
            name, split, train, test, None, None, digits_id2label(), "scikit-learn digits 8x8x1, 1,347 / 450 split"
        )
    else:
        from transformers import AutoTokenizer, DataCollatorWithPadding

        from hf_unlearn.data import minilm_path, trec_datasets, trec_id2label

        recipe = RECIPES["trec"]
        train, test = trec_datasets(trec_dir)
        tok = AutoTokenizer.from_pretrained(minilm_path())
        if split == "validation":
            train, test = _validation_split(train)
        if recipe.get("train_size") and recipe["train_size"] < len(train):
            train = train.shuffle(seed=0).select(range(recipe["train_size"]))

        def tokenize(b: dict[str, Any]) -> dict[str, Any]:
            return tok(b["text"], truncation=True, max_length=recipe["max_length"])

        train = train.map(tokenize, batched=True, remove_columns=["text"])
        test = test.map(tokenize, batched=True, remove_columns=["text"])
        task = Task(
            name,
            split,
            train,
            test,
            DataCollatorWithPadding(tok),
            tok,
            trec_id2label(),
            f"TREC coarse (6 classes), {len(train)} training questions (shuffle seed 0), MiniLM tokenizer, "
            f"max_length {recipe['max_length']}",
        )
    _TASKS[key] = task
    return task


def build_model(family: str, task: Task, seed: int) -> Any:
    """A fresh tiny classifier of ``family`` for ``task`` (text: the tokenizer's vocabulary and pad id)."""
    from hf_unlearn.testing_utils import tiny_classifier

    kw: dict[str, Any] = dict(MODEL_SIZE)
    if task.processing_class is not None:
        kw.update(vocab_size=len(task.processing_class), pad_token_id=task.processing_class.pad_token_id)
    return tiny_classifier(family, num_labels=len(task.id2label), id2label=task.id2label, seed=seed, **kw)


# ------------------------------------------------------------------------------------------------------- training
def recipe_key(family: str, epochs: float | None = None) -> tuple[dict[str, Any], str]:
    recipe = dict(RECIPES[task_name(family)])
    if epochs is not None:
        recipe["epochs"] = epochs
    recipe["model"] = MODEL_SIZE
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    return recipe, digest


def model_dir_for(
    family: str,
    *,
    forget_classes: tuple[int, ...] | list[int] = (),
    seed: int = 0,
    split: str = "validation",
    with_codes: bool = True,
    epochs: float | None = None,
) -> str:
    """The cache folder ``train_family`` writes for these arguments (whether or not it exists yet)."""
    _, digest = recipe_key(family, epochs)
    forget = "-".join(str(int(c)) for c in sorted(forget_classes)) or "none"
    leaf = f"seed{seed}_forget-{forget}_{'codes' if with_codes else 'plain'}_{digest}"
    return os.path.join(CACHE_DIR, family, f"{task_name(family)}-{split}", leaf)


def train_family(
    family: str,
    *,
    forget_classes: tuple[int, ...] | list[int] = (),
    seed: int = 0,
    split: str = "validation",
    with_codes: bool = True,
    epochs: float | None = None,
    trec_dir: str | None = None,
) -> str:
    """Trains (or finds in the cache) a tiny ``family`` model on its task without the rows of ``forget_classes``
    (the label space stays full) and returns its folder. ``with_codes``: ``MnemonicTrainer`` (codes saved beside the
    weights), else ``transformers.Trainer``. The folder holds ``recipe.json`` (recipe, seconds, steps, loss)."""
    from transformers import PrinterCallback, Trainer

    from hf_unlearn import MnemonicTrainer
    from hf_unlearn.data_utils import labels_of

    out = model_dir_for(
        family, forget_classes=forget_classes, seed=seed, split=split, with_codes=with_codes, epochs=epochs
    )
    if os.path.isfile(os.path.join(out, "recipe.json")):
        return out
    task = load_task(family, split, trec_dir)
    recipe, digest = recipe_key(family, epochs)
    train = task.train
    if forget_classes:
        keep = np.flatnonzero(~np.isin(labels_of(train), list(forget_classes)))
        train = train.select(keep.tolist())
    model = build_model(family, task, seed)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp_", dir=os.path.dirname(out))
    try:
        args = training_args(recipe, os.path.join(tmp, "trainer"), seed, mnemonic=with_codes)
        cls = MnemonicTrainer if with_codes else Trainer
        kw = {"data_collator": task.collator} if task.collator is not None else {}
        if task.processing_class is not None:
            kw["processing_class"] = task.processing_class
        trainer = cls(model=model, args=args, train_dataset=train, **kw)
        trainer.remove_callback(PrinterCallback)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = trainer.train()
        seconds = time.perf_counter() - t0
        trainer.save_model(tmp)
        shutil.rmtree(os.path.join(tmp, "trainer"), ignore_errors=True)
        info = {
            "family": family,
            "task": task.name,
            "split": split,
            "seed": seed,
            "forget_classes": [int(c) for c in sorted(forget_classes)],
            "with_codes": with_codes,
            "recipe": recipe,
            "recipe_hash": digest,
            "train_rows": len(train),
            "train_seconds": seconds,
            "steps": int(trainer.state.global_step),
            "train_loss": float(result.training_loss),
            "loadavg": loadavg(),
        }
        with open(os.path.join(tmp, "recipe.json"), "w") as f:
            json.dump(info, f, indent=1)
        del trainer
        if os.path.isdir(out):  # another process finished the same model first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_trained(model_dir: str) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, codebook or None, recipe.json)`` of a folder written by ``train_family``."""
    from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForSequenceClassification

    from hf_unlearn import MnemonicCodebook

    with open(os.path.join(model_dir, "recipe.json")) as f:
        info = json.load(f)
    config = AutoConfig.from_pretrained(model_dir)
    auto = AutoModelForImageClassification if info["task"] == "digits" else AutoModelForSequenceClassification
    if config.model_type == "deit":
        from transformers import DeiTForImageClassification

        model = DeiTForImageClassification.from_pretrained(model_dir)
    else:
        model = auto.from_pretrained(model_dir)
    model.eval()
    codebook = MnemonicCodebook.from_pretrained(model_dir) if info["with_codes"] else None
    return model, codebook, info
