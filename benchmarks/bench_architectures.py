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

import argparse
import copy
import gc
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import REPO_ROOT, environment, loadavg, log, training_args  # noqa: E402

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


# ------------------------------------------------------------------------------------------------------ the runs
AUDIT = dict(relearn_steps=[1, 3, 10], relearn_max_steps=10, batch_size=64, max_probe_samples=2000)
# relearn lr chosen on the validation split (originals vs one retrained model, 10 steps after the head reset):
# 1e-3 relearns nothing on most tiny models (uninformative), 1e-2 relearns the retrained models too; 3e-3 separates
# them on BERT (0.87 vs 0.00), ConvNeXt (0.93 vs 0.00), ResNet (0.71 vs 0.21), not on ViT or RoBERTa
RELEARN_LR = {"digits": 3e-3, "trec": 3e-3}
FISHER_CAPS = {
    "fisher_mask": {"max_forget_samples": 256, "max_retain_samples": 256},
    "fisher_noise": {"max_retain_samples": 64},
}


def _select(ds: Any, classes: list[int], keep: bool) -> Any:
    from hf_unlearn.data_utils import labels_of

    return ds.select(np.flatnonzero(np.isin(labels_of(ds), classes) == keep).tolist())


def _audit(task: Task, model: Any, forget: list[int], seed: int, reference: Any = None, **models: Any) -> Any:
    from hf_unlearn import audit_forgetting

    return audit_forgetting(
        model,
        forget_classes=forget,
        train_dataset=task.train,
        eval_dataset=task.eval,
        data_collator=task.collator,
        seed=seed,
        reference=reference,
        show_progress=False,
        relearn_lr=RELEARN_LR[task.name],
        **AUDIT,
        **models,
    )


def _row(audit: Any, original_ar: float | None) -> dict[str, Any]:
    m = audit.metrics
    return {
        "forget_error": m["forget_error"],
        "retain_accuracy": m["retain_accuracy"],
        "ar_drop": None if original_ar is None else original_ar - m["retain_accuracy"],
        "probe": m["probe_forget_accuracy"],
        "prototype": m["prototype_forget_accuracy"],
        "relearn10": m["relearn_forget_accuracy"].get(10),
        "reset_relearn10": m["reset_relearn_forget_accuracy"].get(10),
        "js": m.get("js_to_retrained"),
        "distinguisher": m.get("distinguisher_accuracy"),
        "two_sided": {k: v["verdict"] for k, v in audit.two_sided.items()},
        "indistinguishable": audit.indistinguishable,
        "audit_s": audit.timings["model"],
    }


def run_method(task: Task, original: Any, codebook: Any, method: str, forget: list[int], seed: int) -> tuple:
    """Runs ``method`` on a copy of ``original``; returns ``(model, report)``."""
    from hf_unlearn import FisherUnlearner, UnlearningConfig

    model = copy.deepcopy(original)
    cfg = UnlearningConfig(
        method=method, forget_classes=forget, seed=seed, allow_incomplete=True, **FISHER_CAPS.get(method, {})
    )
    unlearner = FisherUnlearner(cfg)
    forget_train = _select(task.train, forget, keep=True)
    if method in CODE_METHODS:
        unlearner.unlearn(model, codebook=codebook)
    elif method == "logit_suppression":
        unlearner.unlearn(model, codebook=codebook, forget_dataset=forget_train, data_collator=task.collator)
    else:
        retain_train = _select(task.train, forget, keep=False)
        unlearner.unlearn(model, forget_dataset=forget_train, retain_dataset=retain_train, data_collator=task.collator)
    return model, unlearner.report


def run_case(family: str, forget: list[int], seed: int, args: argparse.Namespace) -> dict[str, Any]:
    import transformers

    task = load_task(family, args.split, args.trec_dir)
    case: dict[str, Any] = {
        "family": family,
        "task": task.name,
        "seed": seed,
        "forget_classes": forget,
        "forget_labels": [task.id2label[c] for c in forget],
        "methods": {},
    }
    tag = f"{family} seed {seed} forget {case['forget_labels']}"
    try:
        orig_dir = train_family(family, seed=seed, split=args.split, epochs=args.epochs, trec_dir=args.trec_dir)
        ref_dirs = [
            train_family(
                family,
                forget_classes=forget,
                seed=1000 * (j + 1) + seed,
                split=args.split,
                epochs=args.epochs,
                trec_dir=args.trec_dir,
            )
            for j in range(args.refs)
        ]
    except Exception as e:  # noqa: BLE001 - a family that cannot be trained is a result
        log(f"{tag}: training FAILED: {type(e).__name__}: {e}")
        case["error"] = f"training: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
        return case
    transformers.set_seed(seed)
    original, codebook, info = load_trained(orig_dir)
    refs = [load_trained(d)[0] for d in ref_dirs]
    retrain_s = [load_trained(d)[2]["train_seconds"] for d in ref_dirs]
    case.update(original_train_s=info["train_seconds"], retrain_s=retrain_s, task_description=task.description)
    try:
        ref_audit = _audit(task, original, forget, seed, original=original, retrained=refs)
    except Exception as e:  # noqa: BLE001
        log(f"{tag}: reference audit FAILED: {type(e).__name__}: {e}")
        case["error"] = f"reference audit: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
        return case
    ar0 = ref_audit.original["retain_accuracy"]
    case["original"] = {k: ref_audit.original[k] for k in ("forget_accuracy", "retain_accuracy", "test_accuracy")}
    case["original"].update(
        probe=ref_audit.original["probe_forget_accuracy"],
        prototype=ref_audit.original["prototype_forget_accuracy"],
        reset_relearn10=ref_audit.original["reset_relearn_forget_accuracy"].get(10),
        distinguisher=ref_audit.original.get("distinguisher_accuracy"),
    )
    case["retrained_range"] = ref_audit.retrained_range
    case["two_sided_bounds"] = {k: [v["low"], v["high"]] for k, v in ref_audit.two_sided.items()}
    case["js_retrained_reference"] = ref_audit.js_retrained_reference
    case["distinguisher_reference"] = ref_audit.distinguisher_reference
    case["distinguisher_reference_protocol"] = ref_audit.distinguisher_reference_protocol
    rr = ref_audit.retrained_range
    log(
        f"{tag}: original A_test {case['original']['test_accuracy']:.3f}; retrained probe "
        f"{rr['probe_forget_accuracy']['min']:.2f}-{rr['probe_forget_accuracy']['max']:.2f}, prototype "
        f"{rr['prototype_forget_accuracy']['min']:.2f}-{rr['prototype_forget_accuracy']['max']:.2f}, reset@10 "
        f"{rr['reset_relearn_forget_accuracy@10']['min']:.2f}-{rr['reset_relearn_forget_accuracy@10']['max']:.2f}, "
        f"distinguisher {ref_audit.distinguisher_reference:.2f}; load {loadavg()}"
    )
    for method in args.methods:
        try:
            model, report = run_method(task, original, codebook, method, forget, seed)
            audit = _audit(task, model, forget, seed, reference=ref_audit)
            row = _row(audit, ar0)
            fallback = (report.hyperparameters or {}).get("deep_fallback") or (report.details or {}).get(
                "deep_fallback"
            )
            row.update(
                time_s=report.timings.get("total"),
                time_share_of_retrain=report.timings.get("total") / float(np.mean(retrain_s)),
                deep_fallback=fallback,
                alpha=(report.hyperparameters or {}).get("alpha"),
                num_parameters_changed=report.num_parameters_changed,
            )
            case["methods"][method] = row
            log(
                f"  {method:17s} E_F {row['forget_error']:.3f} dA_R {100 * row['ar_drop']:+5.1f} probe "
                f"{row['probe']:.2f} proto {row['prototype']:.2f} reset@10 {row['reset_relearn10']:.2f} dist "
                f"{row['distinguisher']:.2f} time {row['time_s']:.2f} s{' FALLBACK' if fallback else ''}"
            )
            del model
        except Exception as e:  # noqa: BLE001 - a refusal or a crash is a result
            msg = str(e).splitlines()[0][:300] if str(e) else ""
            case["methods"][method] = {"error": f"{type(e).__name__}: {msg}", "traceback": traceback.format_exc()}
            log(f"  {method:17s} FAILED: {type(e).__name__}: {msg}")
        gc.collect()
    return case


def _f(x: Any, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _mark(row: dict[str, Any], key: str) -> str:
    """``*`` after a value outside its two-sided target (above: kept; below: forgets more than retraining)."""
    verdict = row.get("two_sided", {}).get(key)
    if verdict is None or verdict == "within":
        return ""
    return "↑" if verdict.startswith("above") else "↓"


def render_md(result: dict[str, Any]) -> str:
    lines = [
        "# Every method on every architecture family, audited against retraining",
        "",
        f"Command: `{result['command']}`  ",
        f"Date {result['environment']['date']}, commit {result['environment']['git_commit']}, "
        f"{result['environment']['cpu']} ({result['environment']['cpu_count']} cores, shared; torch threads "
        f"{result['environment']['torch_num_threads']}), load at start {result['loadavg_start']}, at end "
        f"{result['loadavg_end']}; wall {result['wall_s'] / 60:.1f} min.",
        "",
        f"Split: **{result['split']}**. {result['protocol']}",
        "",
        "Columns: E_F = forget error; A_R drop = retained accuracy of the original minus the method's (points; "
        "negative: higher than the original); probe / prototype / "
        "reset@10 = forget-class accuracy of the linear probe, the prototype head-rewrite attack and 10 relearn "
        "steps after the forgotten head rows are reset to the mean retained row (retrained range in the family's "
        "`retrained` row); dist = distinguisher accuracy (unlearned vs retrained; target <= the retrained models' "
        "own + 0.1, shown in the `retrained` row); ↑ / ↓ = above / below the two-sided target (mean ± max(2 std, "
        "0.03) of the retrained models; ↓ = forgets more than retraining); deep = the deep edit ran (`fallback` = "
        "output-only edit; a = the share of the shared readout direction it removed); time = the method's own seconds (share of one retraining).",
        "",
        "| family | method | E_F | A_R drop | probe | prototype | reset@10 | dist | deep | time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in result["cases"]:
        fam = f"{case['family']} ({case['task']}, forget {','.join(case['forget_labels'])}, seed {case['seed']})"
        if "error" in case:
            lines.append(f"| {fam} | — | {case['error']} | | | | | | | |")
            continue
        o, rr = case["original"], case["retrained_range"]

        def span(key: str, rr: dict = rr) -> str:
            r = rr.get(key)
            return "n/a" if r is None else f"{r['min']:.2f}-{r['max']:.2f}"

        lines.append(
            f"| {fam} | original | {1 - o['forget_accuracy']:.3f} | (A_R {o['retain_accuracy']:.3f}) | "
            f"{_f(o['probe'])} | {_f(o['prototype'])} | {_f(o['reset_relearn10'])} | {_f(o['distinguisher'])} | | |"
        )
        lines.append(
            f"| | retrained ({len(case['retrain_s'])}) | {span('forget_error')} | | {span('probe_forget_accuracy')} | "
            f"{span('prototype_forget_accuracy')} | {span('reset_relearn_forget_accuracy@10')} | "
            f"{_f(case['distinguisher_reference'])} | | {np.mean(case['retrain_s']):.1f} s |"
        )
        for method, row in case["methods"].items():
            if "error" in row:
                lines.append(f"| | {method} | refused/failed: {row['error'][:160].replace('|', '/')} | | | | | | | |")
                continue
            deep = "" if method not in ("mnemonic",) else ("fallback" if row["deep_fallback"] else "deep")
            if deep == "deep" and row.get("alpha") is not None:
                deep += f" a={row['alpha']:g}"
            lines.append(
                f"| | {method} | {row['forget_error']:.3f} | {100 * row['ar_drop']:+.1f} | "
                f"{_f(row['probe'])}{_mark(row, 'probe_forget_accuracy')} | "
                f"{_f(row['prototype'])}{_mark(row, 'prototype_forget_accuracy')} | "
                f"{_f(row['reset_relearn10'])}{_mark(row, 'reset_relearn_forget_accuracy@10')} | "
                f"{_f(row['distinguisher'])}{_mark(row, 'distinguisher_accuracy')} | {deep} | "
                f"{row['time_s']:.2f} s ({100 * row['time_share_of_retrain']:.1f}%) |"
            )
    lines += ["", "## Summary", ""]
    for line in result["summary"]:
        lines.append(f"- {line}")
    return "\n".join(lines) + "\n"


def summarise(cases: list[dict[str, Any]], methods: list[str]) -> list[str]:
    out = []
    done = [c for c in cases if "error" not in c]
    skipped = [f"{c['family']} ({c['error']})" for c in cases if "error" in c]
    if skipped:
        out.append(f"not run: {'; '.join(skipped)}")
    for method in methods:
        rows = [c["methods"].get(method, {}) for c in done]
        ok = [r for r in rows if "error" not in r and r]
        failed = [c["family"] for c in done if "error" in c["methods"].get(method, {"error": 1})]
        within = [r for r in ok if r.get("indistinguishable")]
        text = (
            f"`{method}`: ran on {len(ok)} of {len(done)} family runs"
            + (f" (refused/failed: {', '.join(failed)})" if failed else "")
            + f"; E_F >= 0.99 on {sum(r['forget_error'] >= 0.99 for r in ok)}; every two-sided target met on "
            f"{len(within)}"
        )
        if method == "mnemonic":
            deep = [c["family"] for c in done if method in c["methods"] and not c["methods"][method].get("error")
                    and not c["methods"][method].get("deep_fallback")]  # fmt: skip
            text += f"; deep edit ran on {len(deep)} ({', '.join(deep)})"
        out.append(text)
    return out


def main(argv: list[str] | None = None) -> int:
    from hf_unlearn.testing_utils import FAMILIES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated (default: all 16)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: all six)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds of the originals")
    ap.add_argument(
        "--forget-classes",
        default="digits:3;trec:LOC",
        help="cases per task, `;`-separated `task:label[,label...]` (default digits:3;trec:LOC)",
    )
    ap.add_argument("--split", choices=("validation", "test"), default="validation")
    ap.add_argument("--epochs", type=float, default=None, help="override every task's training epochs")
    ap.add_argument("--refs", type=int, default=3, help="retrained references per case (the distinguisher's "
                    "retrained-vs-retrained baseline is measured across models with 3 or more)")  # fmt: skip
    ap.add_argument("--trec-dir", default=DEFAULT_TREC_DIR)
    ap.add_argument("--output-stem", default="architectures")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(families) - set(FAMILIES)
    if unknown:
        ap.error(f"--families: unknown {sorted(unknown)}; choose from {FAMILIES}")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if set(args.methods) - set(METHODS):
        ap.error(f"--methods: unknown {sorted(set(args.methods) - set(METHODS))}; choose from {METHODS}")
    cases_by_task: dict[str, list[list[str]]] = {}
    for part in args.forget_classes.split(";"):
        if part.strip():
            name, _, labels = part.partition(":")
            cases_by_task.setdefault(name.strip(), []).append([x.strip() for x in labels.split(",") if x.strip()])
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    load0 = loadavg()
    env = environment()  # at the start: the commit the run used
    if os.environ.get("HF_UNLEARN_LIBRARY_SNAPSHOT"):  # the library imported from a snapshot of that commit
        env["library_snapshot"] = os.environ["HF_UNLEARN_LIBRARY_SNAPSHOT"]
    cases = []
    for family in families:
        name = task_name(family)
        if name == "trec":
            try:
                task = load_task(family, args.split, args.trec_dir)
            except (FileNotFoundError, ImportError, OSError) as e:
                log(f"{family}: skipped, TREC or the MiniLM tokenizer is not available ({e})")
                cases.append({"family": family, "task": name, "seed": None, "forget_labels": [], "error": f"skipped: "
                              f"{type(e).__name__}: {e}"})  # fmt: skip
                continue
        else:
            task = load_task(family, args.split)
        label2id = {v: k for k, v in task.id2label.items()}
        for labels in cases_by_task.get(name, []):
            forget = sorted(label2id[x] if x in label2id else int(x) for x in labels)
            for seed in seeds:
                cases.append(run_case(family, forget, seed, args))
    protocol = (
        f"Tiny models ({MODEL_SIZE}, `hf_unlearn.testing_utils.tiny_classifier`, random init) trained with "
        f"`MnemonicTrainer` (codes): digits {RECIPES['digits']}; TREC {RECIPES['trec']} (MiniLM tokenizer, tiny "
        f"random model). {args.refs} references per case retrained with the same recipe without the forget class "
        f"(full label space, seeds 1000+, 2000+, ...). Audit: `audit_forgetting` {AUDIT}, relearn lr "
        f"{RELEARN_LR}; Fisher caps {FISHER_CAPS}; every method at its library defaults otherwise. Eval split: "
        + (
            "a stratified 20% of the training data (models trained on the other 80%)."
            if args.split == "validation"
            else "the real test split."
        )  # fmt: skip
    )
    result = {
        "benchmark": "architectures",
        "command": "python benchmarks/bench_architectures.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "environment": env,
        "split": args.split,
        "protocol": protocol,
        "loadavg_start": load0,
        "loadavg_end": loadavg(),
        "wall_s": time.perf_counter() - t0,
        "cases": cases,
        "summary": summarise(cases, args.methods),
    }
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"{args.output_stem}.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    with open(os.path.join(RESULTS_DIR, f"{args.output_stem}.md"), "w") as f:
        f.write(render_md(result))
    log(f"wrote {os.path.join(RESULTS_DIR, args.output_stem)}.md/.json in {result['wall_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
