"""Fisher masking, honestly deep? Variants of *which* weights to mask, *how many* and *where*, measured with the
depth audit on the digits ViT (issue 13, item 3).

Fisher masking (arXiv 2310.05331) zeroes the weights whose Fisher information on the forget data most exceeds their
Fisher information on the remaining data (score ``F_f - F_r``, one global ranking, the top ``ratio``; the library's
``method="fisher_mask"``). On the digits ViT the benchmark found it as shallow as lowering one output bias (probe and
prototype at the original's). This script asks whether a variant faithful to the idea is deeper at the same retained
accuracy:

- ``authors``: the library's recipe (score ``F_f - F_r``, global ranking over every linear / conv weight) at
  ratio 0.02 (the library default) and 0.04 (the benchmark's digits value);
- ``no head``: the same ranking with the classification head left out, so any forgetting has to come from the
  encoder;
- ``ratio score``: ``F_f / F_r`` instead of the difference (SSD's selection, which is not dominated by the head's
  large Fisher values), over the whole network or without the head, globally or per weight matrix.

Decisions are made on a validation split only: the digits TRAIN split (1,347 samples of ``digits_datasets(seed=0)``)
is cut into 1,047 training / 300 validation samples (stratified, random_state 123); the test split is not used. Per
forget case, three models are retrained without the forget classes on the 1,047 (seeds 10, 11, 12) as the audit's
reference; the originals (seeds in ``--seeds``) are trained with mnemonic codes on the 1,047, with the benchmark's
recipe. Every variant starts from a copy of the same original and uses the same two Fisher passes (batched true
Fisher on the forget / remaining training samples). Metrics: ``hf_unlearn.audit_forgetting`` on the validation split.

Usage (from the repository root; about 6 minutes on 2 shared CPU cores)::

    python benchmarks/bench_fisher_mask_variants.py
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import REPO_ROOT, environment, loadavg, log, md_header, md_table, mean_std, rerender  # noqa: E402
from bench_unlearning import DigitsScenario, select_classes, train_with, training_args  # noqa: E402

from hf_unlearn import FisherUnlearner, UnlearningConfig, audit_forgetting, compute_fisher  # noqa: E402
from hf_unlearn.methods.fisher_mask import mask_scores, scored_parameters  # noqa: E402

CASES = ([7], [3], [2, 5])
REF_SEEDS = (10, 11, 12)
# (name, ratio, score, ranking, leave out the head)
VARIANTS = (
    ("authors r0.02", 0.02, "diff", "global", False),
    ("authors r0.04", 0.04, "diff", "global", False),
    ("no head r0.04", 0.04, "diff", "global", True),
    ("no head r0.20", 0.20, "diff", "global", True),
    ("ratio score r0.04", 0.04, "ratio", "global", False),
    ("ratio score, no head r0.05", 0.05, "ratio", "global", True),
    ("ratio score, no head r0.10", 0.10, "ratio", "global", True),
    ("ratio score, no head r0.20", 0.20, "ratio", "global", True),
    ("ratio score, no head, per layer r0.10", 0.10, "ratio", "layer", True),
    ("ratio score, no head, per layer r0.20", 0.20, "ratio", "layer", True),
)
MNEMONIC_ROW = "mnemonic (deep default, codes only; for comparison)"
AUDIT = dict(relearn_steps=[1, 3, 10], relearn_max_steps=30, relearn_lr=1e-3, batch_size=64)
KEYS = ("forget_error", "retain_accuracy", "probe_forget_accuracy", "prototype_forget_accuracy")


TITLE = "Fisher masking variants on the digits ViT: depth against retained accuracy (validation split)"


def split(ds):
    from sklearn.model_selection import train_test_split

    y = np.asarray(ds.with_format(None)["labels"])
    tr, va = train_test_split(np.arange(len(y)), test_size=300, random_state=123, stratify=y)
    return ds.select(sorted(tr.tolist())), ds.select(sorted(va.tolist()))


@torch.no_grad()
def mask_(model, f_forget, f_retain, ratio: float, score: str, ranking: str, no_head: bool) -> int:
    """Zeroes the selected weights of ``model`` in place; returns how many scores were masked."""
    kinds = {
        n: k
        for n, k in scored_parameters(model).items()
        if n in f_forget and not (no_head and n.startswith("classifier."))
    }
    if score == "diff":
        scores = mask_scores(f_forget, f_retain, kinds)
    else:
        scores = {}
        for n, kind in kinds.items():
            s = f_forget[n] / (f_retain[n] + 1e-12 * float(f_retain[n].mean()) + 1e-30)
            scores[n] = s.flatten(2).mean(-1) if kind == "conv" and s.dim() > 2 else s
    if ranking == "global":
        flat = torch.cat([s.flatten() for s in scores.values()])
        k = max(1, int(round(ratio * flat.numel())))
        top = torch.topk(flat, k).indices
        chosen = torch.zeros_like(flat, dtype=torch.bool)
        chosen[top] = True
        sel, off = {}, 0
        for n, s in scores.items():
            sel[n] = chosen[off : off + s.numel()].view_as(s)
            off += s.numel()
    else:
        sel = {}
        for n, s in scores.items():
            k = max(1, int(round(ratio * s.numel())))
            m = torch.zeros(s.numel(), dtype=torch.bool)
            m[torch.topk(s.flatten(), k).indices] = True
            sel[n] = m.view_as(s)
    params = dict(model.named_parameters())
    for n, m in sel.items():
        p = params[n]
        if kinds[n] == "conv" and p.dim() > 2:
            m = m.view(*m.shape, *([1] * (p.dim() - 2))).expand_as(p)
        p.masked_fill_(m, 0.0)
    return int(sum(int(m.sum()) for m in sel.values()))


def _mean_of(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The retrained models' mean of the rendered metrics (their JS is leave-one-out)."""
    out: dict[str, Any] = {k: float(np.mean([r[k] for r in records])) for k in (*KEYS, "js_to_retrained")}
    out["relearn_forget_accuracy"] = {
        10: float(np.mean([_relearn10(r) for r in records if _relearn10(r) is not None]))
    }
    return out


def _relearn10(r: dict[str, Any]) -> float | None:
    rl = r.get("relearn_forget_accuracy") or {}
    return rl.get(10, rl.get("10"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1", help="seeds of the original models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, one seed, one case")
    ap.add_argument("--output-dir", default=os.path.join(REPO_ROOT, "benchmarks", "results", "digits"))
    ap.add_argument("--render-from", metavar="JSON", help="measure nothing: re-render the .md from this JSON")
    args = ap.parse_args(argv)
    if args.render_from:
        rerender(args.render_from, render)
        return 0
    torch.set_num_threads(args.threads)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("hf_unlearn").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    import datasets

    datasets.disable_progress_bars()
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = dict(
        epochs=30, batch_size=32, lr=2e-3, weight_decay=0.01, warmup_steps=0.05, lr_scheduler_type="cosine", t_mix=0.1
    )
    cases = list(CASES)
    if args.quick:
        cfg["epochs"], seeds, cases = 2, seeds[:1], cases[:1]
    scn = DigitsScenario({**cfg, "cases": cases})
    train, val = split(scn.train_ds)
    result: dict[str, Any] = {
        "benchmark": "fisher_mask_variants",
        "command": "python benchmarks/bench_fisher_mask_variants.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "environment": environment(),
        "loadavg_start": loadavg(),
        "n_train": len(train),
        "n_val": len(val),
        "seeds": seeds,
        "cases": {},
    }
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_fm_variants_") as tmp:
        originals = {}
        for seed in seeds:
            model = scn.build_model(seed)
            trainer = train_with(
                scn, model, train, training_args(cfg, os.path.join(tmp, f"o{seed}"), seed, mnemonic=True)
            )[0]
            originals[seed] = (model.eval(), trainer.codebook)
            log(f"original seed {seed} trained")
        for forget in cases:
            key = ",".join(map(str, forget))
            retain_train = select_classes(train, forget, keep=False)
            forget_train = select_classes(train, forget, keep=True)
            refs = []
            for s in REF_SEEDS:
                m = scn.build_model(s)
                train_with(scn, m, retain_train, training_args(cfg, os.path.join(tmp, f"r{s}"), s, mnemonic=True))
                refs.append(m.eval())
            case: dict[str, Any] = {"seeds": {}}
            for seed in seeds:
                orig, codebook = originals[seed]
                audit_kw = dict(
                    forget_classes=forget,
                    train_dataset=train,
                    eval_dataset=val,
                    seed=seed,
                    show_progress=False,
                    **AUDIT,
                )
                ref = audit_forgetting(orig, original=orig, retrained=refs, **audit_kw)
                rows = {"original": ref.original, "retrained (mean of 3)": _mean_of(ref.retrained)}
                t0 = time.perf_counter()
                fkw = dict(kind="batch_true", batch_size=16, show_progress=False)
                f_forget = compute_fisher(orig, forget_train, **fkw)
                f_retain = compute_fisher(orig, retain_train, **fkw)
                t_fisher = time.perf_counter() - t0
                for name, ratio, score, ranking, no_head in VARIANTS:
                    m = copy.deepcopy(orig)
                    n = mask_(m, f_forget, f_retain, ratio, score, ranking, no_head)
                    a = audit_forgetting(m, reference=ref, **audit_kw)
                    rows[name] = {**a.metrics, "masked": n}
                    log(
                        f"  {key} seed {seed} {name:40s} E_F {a.metrics['forget_error']:.3f} A_R "
                        f"{a.metrics['retain_accuracy']:.3f} probe {a.metrics['probe_forget_accuracy']:.3f} "
                        f"proto {a.metrics['prototype_forget_accuracy']:.3f}"
                    )
                # for comparison: the deep one-shot default from the codes alone (no data)
                m = copy.deepcopy(orig)
                FisherUnlearner(
                    UnlearningConfig(method="mnemonic", forget_classes=forget, seed=seed, allow_incomplete=args.quick)
                ).unlearn(m, codebook=codebook)
                rows[MNEMONIC_ROW] = audit_forgetting(m, reference=ref, **audit_kw).metrics
                case["seeds"][seed] = {
                    "fisher_s": t_fisher,
                    "js_retrained_reference": ref.js_retrained_reference,
                    "rows": rows,
                }
            result["cases"][key] = case
    result["loadavg_end"] = loadavg()
    result["total_wall_s"] = time.perf_counter() - t_start
    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.join(args.output_dir, "fisher_mask_variants" + ("_quick" if args.quick else ""))
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(render(result) + "\n")
    log(f"done in {result['total_wall_s'] / 60:.1f} min; wrote {stem}.md and .json")
    return 0


def render(result: dict[str, Any]) -> str:
    names = ["original", "retrained (mean of 3)"] + [v[0] for v in VARIANTS] + [MNEMONIC_ROW]
    out = [
        *md_header(TITLE, result, "python benchmarks/bench_fisher_mask_variants.py"),
        f"{result['n_train']} training / {result['n_val']} validation samples of the digits TRAIN split (the test "
        f"split is not used); originals seeds "
        f"{result['seeds']}, 3 models retrained without the forget classes per case (seeds 10-12). See the script's "
        "docstring for the variants. Mean ± std over the cases and seeds (each case x seed is one value); "
        "validation accuracies on the forget classes (probe, prototype) and the remaining classes (A_R).",
        "",
    ]
    rows = []
    for name in names:
        vals: dict[str, list[float]] = {k: [] for k in (*KEYS, "relearn10", "js")}
        for case in result["cases"].values():
            for s in case["seeds"].values():
                r = s["rows"][name]
                for k in KEYS:
                    vals[k].append(r[k])
                vals["relearn10"].append(_relearn10(r))
                vals["js"].append(r.get("js_to_retrained"))
        cells = []
        for k in (*KEYS, "relearn10", "js"):
            mu, sd = mean_std([float(x) for x in vals[k] if x is not None])
            cells.append("n/a" if np.isnan(mu) else f"{mu:.3f} ± {sd:.3f}")
        rows.append([name, *cells])
    out += md_table(["variant", "E_F", "A_R", "probe", "prototype", "relearn@10", "JS to retrained"], rows)
    out += ["", "Per case and seed: `fisher_mask_variants.json`."]
    out += [line for note in result.get("notes", []) for line in ("", note)]  # readings added after the run
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
