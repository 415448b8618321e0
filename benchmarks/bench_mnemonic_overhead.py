#!/usr/bin/env python
"""Benchmark: the training-time overhead of MnemonicTrainer over plain Trainer, measured to resist machine noise.

``bench_mnemonic_training.py`` times whole training runs (30 s for digits, 3-4 min for TREC), one pair per seed.
On a shared machine the speed of the cores drifts by 20-30% over minutes, and process CPU time drifts with it
(a busy sibling hyper-thread slows every instruction). A few long runs then give overheads that move with the
drift rather than with the trainer. This script instead runs many *short* pairs back to back, in ABBA order
(plain, mnemonic, mnemonic, plain, ...). Both members of a pair see nearly the same machine state. It reports the
median over pairs of the paired ratio (mnemonic / plain), on wall time and on CPU time of ``trainer.train()``.

Per pair: the same seed (model init, data order), the same steps, the same hyper-parameters as the main
benchmark; only the trainer differs.

Usage (from the repository root)::

    python benchmarks/bench_mnemonic_overhead.py                 # digits 16 pairs + TREC 8 pairs (~10 min)
    python benchmarks/bench_mnemonic_overhead.py --scenarios digits --pairs 8

Writes ``<output-dir>/mnemonic_overhead.json`` and ``<output-dir>/mnemonic_overhead.md``.
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

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_mnemonic_training as base  # noqa: E402
from bench_common import md_header, md_table, rerender, verdict  # noqa: E402

TARGET_OVERHEAD = base.TARGET_OVERHEAD


TITLE = "MnemonicTrainer training-time overhead: many short ABBA pairs"


def timed_train(scn, kind: str, seed: int, outdir: str, max_steps: int) -> tuple[float, float]:
    trainer = base.make_trainer(scn, kind, seed, outdir, max_steps=max_steps)
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    trainer.train()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    del trainer
    return wall, cpu


def run_pairs(scn, pairs: int, max_steps: int, tmp: str) -> dict[str, Any]:
    timed_train(scn, "plain", 0, os.path.join(tmp, "warm_p"), 3)  # one-off costs hit neither side
    timed_train(scn, "mnemonic", 0, os.path.join(tmp, "warm_m"), 3)
    rows = []
    for i in range(pairs):
        order = ("plain", "mnemonic") if i % 2 == 0 else ("mnemonic", "plain")
        got = {}
        for kind in order:
            got[kind] = timed_train(scn, kind, i, os.path.join(tmp, f"{kind}_{i}"), max_steps)
        row = {
            "seed": i,
            "order": list(order),
            "plain_wall_s": got["plain"][0],
            "plain_cpu_s": got["plain"][1],
            "mnemonic_wall_s": got["mnemonic"][0],
            "mnemonic_cpu_s": got["mnemonic"][1],
            "wall_ratio": got["mnemonic"][0] / got["plain"][0],
            "cpu_ratio": got["mnemonic"][1] / got["plain"][1],
            "loadavg": base.loadavg(),
        }
        rows.append(row)
        base.log(
            f"  {scn.name} pair {i}: plain {row['plain_wall_s']:.2f} s, mnemonic {row['mnemonic_wall_s']:.2f} s, "
            f"ratio wall {row['wall_ratio']:.3f} cpu {row['cpu_ratio']:.3f}"
        )

    def quartiles(xs: list[float]) -> list[float]:
        return [float(q) for q in statistics.quantiles(xs, n=4)] if len(xs) > 1 else [xs[0]] * 3

    wall = [r["wall_ratio"] for r in rows]
    cpu = [r["cpu_ratio"] for r in rows]
    plain_wall = [r["plain_wall_s"] for r in rows]
    summary = {
        "median_paired_wall_overhead": statistics.median(wall) - 1,
        "median_paired_cpu_overhead": statistics.median(cpu) - 1,
        "wall_ratio_quartiles": quartiles(wall),
        "cpu_ratio_quartiles": quartiles(cpu),
        "median_of_medians_wall_overhead": statistics.median(r["mnemonic_wall_s"] for r in rows)
        / statistics.median(plain_wall)
        - 1,
        "pairs_slower": sum(1 for x in wall if x > 1),
        "plain_wall_spread": [min(plain_wall), max(plain_wall)],
    }
    summary["pass"] = summary["median_paired_wall_overhead"] <= TARGET_OVERHEAD
    return {"max_steps": max_steps, "pairs": rows, "summary": summary}


def render_md(result: dict[str, Any]) -> str:
    L = [
        *md_header(TITLE, result, "python benchmarks/bench_mnemonic_overhead.py"),
        "Each pair trains the same model (same seed, data order, hyper-parameters and steps) once with plain "
        "`Trainer` and once with `MnemonicTrainer`. Consecutive pairs alternate which trainer goes first. The "
        "statistic is the median over pairs of mnemonic / plain time. It is robust to the core speed drifting "
        "over minutes on a shared machine, which dominates whole-run comparisons.",
        "",
    ]
    rows = []
    for name, sc in result["scenarios"].items():
        s = sc["summary"]
        q = ", ".join(f"{x:.3f}" for x in s["wall_ratio_quartiles"])
        rows.append([name, sc["max_steps"], len(sc["pairs"]), f"{100 * s['median_paired_wall_overhead']:+.1f}%",
                     f"{100 * s['median_paired_cpu_overhead']:+.1f}%", q, f"{s['pairs_slower']}/{len(sc['pairs'])}",
                     f"{s['plain_wall_spread'][0]:.2f}-{s['plain_wall_spread'][1]:.2f}", verdict(s["pass"])])  # fmt: skip
    header = ["scenario", "steps per run", "pairs", "median paired overhead, wall", "median paired overhead, CPU",
              "wall ratio quartiles", "pairs where mnemonic was slower", "plain run time range (s)", "target <= 5%"]  # fmt: skip
    L += [*md_table(header, rows), ""]
    for name, sc in result["scenarios"].items():
        rows = [
            [r["seed"], " then ".join(r["order"]), f"{r['plain_wall_s']:.2f}", f"{r['mnemonic_wall_s']:.2f}",
             f"{r['wall_ratio']:.3f}", f"{r['cpu_ratio']:.3f}"]
            for r in sc["pairs"]
        ]  # fmt: skip
        header = ["seed", "order", "plain wall (s)", "mnemonic wall (s)", "wall ratio", "CPU ratio"]
        L += [f"## `{name}` pairs", "", *md_table(header, rows), ""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default="digits,trec")
    ap.add_argument("--pairs", type=int, default=16, help="pairs for digits")
    ap.add_argument("--pairs-trec", type=int, default=8, help="pairs for trec")
    ap.add_argument("--steps-digits", type=int, default=168, help="steps per run (168 = 4 epochs)")
    ap.add_argument("--steps-trec", type=int, default=60, help="steps per run")
    ap.add_argument("--trec-dir", default=base.DEFAULT_TREC_DIR)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--output-dir", default=os.path.join(base.REPO_ROOT, "benchmarks", "results"))
    ap.add_argument("--render-from", metavar="JSON", help="measure nothing: re-render the .md from this JSON")
    args = ap.parse_args(argv)
    if args.render_from:
        rerender(args.render_from, render_md)
        return 0

    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    import datasets

    datasets.disable_progress_bars()
    torch.set_num_threads(args.threads)
    env = base.environment()
    env["torch_threads"] = torch.get_num_threads()
    result: dict[str, Any] = {
        "benchmark": "mnemonic_overhead",
        "command": "python "
        + " ".join([os.path.relpath(__file__, base.REPO_ROOT)] + (argv if argv is not None else sys.argv[1:])),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": env,
        "loadavg_start": base.loadavg(),
        "target_overhead": TARGET_OVERHEAD,
        "scenarios": {},
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
            if name == "digits":
                # the main benchmark's configuration (its schedule spans 30 epochs; each run stops early)
                cfg = dict(epochs=30, batch_size=32, lr=2e-3, weight_decay=0.01, warmup_steps=0.05)
                cfg.update(lr_scheduler_type="cosine", t_mix=0.1)
                scn = base.DigitsScenario(cfg)
                result["scenarios"][name] = run_pairs(scn, args.pairs, args.steps_digits, tmp)
            elif name == "trec":
                trec_dir = os.path.abspath(args.trec_dir)
                if not os.path.isfile(os.path.join(trec_dir, "train_5500.label")):
                    base.log(f"scenario trec skipped: TREC data not found in {trec_dir}")
                    continue
                cfg = dict(epochs=2, batch_size=16, lr=5e-5, weight_decay=0.01, warmup_steps=0.1)
                cfg.update(lr_scheduler_type="linear", t_mix=0.1, max_length=64)
                scn = base.TrecScenario(cfg, trec_dir)
                result["scenarios"][name] = run_pairs(scn, args.pairs_trec, args.steps_trec, tmp)
            else:
                ap.error(f"unknown scenario {name!r}")
    result["loadavg_end"] = base.loadavg()
    result["total_wall_s"] = time.perf_counter() - t0
    os.makedirs(args.output_dir, exist_ok=True)
    jpath = os.path.join(args.output_dir, "mnemonic_overhead.json")
    mpath = os.path.join(args.output_dir, "mnemonic_overhead.md")
    with open(jpath, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")
    with open(mpath, "w", encoding="utf-8") as f:
        f.write(render_md(result) + "\n")
    for name, sc in result["scenarios"].items():
        s = sc["summary"]
        base.log(
            f"{name}: median paired overhead wall {100 * s['median_paired_wall_overhead']:+.1f}%, "
            f"CPU {100 * s['median_paired_cpu_overhead']:+.1f}% ({'PASS' if s['pass'] else 'FAIL'})"
        )
    base.log(f"wrote {jpath} and {mpath}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
