"""Kill ``hf-unlearn train --overwrite_output_dir`` and ``hf-unlearn forget --overwrite_output_dir`` at random moments
and check that nothing the user had is lost: after every kill the previous folder is byte-identical (or, when the run
finished before the kill, the new folder is complete), and after the next run's first step (``check_output_dir``,
which every save and training run makes before any work) no temporary folder of the killed run is left beside it.

A tiny ViT on 400 digits images keeps each run to seconds. The moments are drawn uniformly over the duration of an
uninterrupted run of the same command (measured first), so they fall in the loading, the training or edit, and the
save alike; whether a staging folder existed at the kill (the run had started writing) is recorded per kill.
Written to benchmarks/results/kill.md and .json.

    flock /tmp/hf_unlearn_bench.lock python benchmarks/bench_kill.py               # 10 kills per command
    python benchmarks/bench_kill.py --kills 3 --signal SIGINT --no_write
    python benchmarks/bench_kill.py --render-from benchmarks/results/kill.json   # .md only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import REPO_ROOT, environment, loadavg, log, md_header, md_table, rerender, verdict

TRAIN = [
    "--num_train_epochs", "3", "--learning_rate", "3e-3", "--per_device_train_batch_size", "16",
    "--mnemonic_mix_ratio", "0.3", "--tiny_vit_hidden_size", "16", "--tiny_vit_num_hidden_layers", "1",
    "--max_train_samples", "400", "--max_eval_samples", "100", "--save_strategy", "epoch",
    "--logging_strategy", "no", "--disable_tqdm", "true", "--report_to", "none",
]  # fmt: skip


LOCK = "/tmp/hf_unlearn_bench.lock"  # the benchmarks' shared lock


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip


def cli(*argv) -> list[str]:
    return [sys.executable, "-m", "hf_unlearn.cli", *map(str, argv)]


def folder_bytes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def strays(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name and folder.name in p.name)


def next_run_check(folder: Path) -> None:
    """What the next ``train`` / ``forget`` / save does first: the output check, which tidies what killed runs left."""
    code = f"from hf_unlearn.hub import check_output_dir; check_output_dir({str(folder)!r}, overwrite_output_dir=True)"
    subprocess.run([sys.executable, "-c", code], check=True, env=env(), capture_output=True)


def kill_once(cmd: list[str], folder: Path, at: float, sig: int, *, in_writing: bool = False) -> dict:
    """Kills ``cmd`` ``at`` seconds after its start or, with ``in_writing``, ``at`` seconds after its staging folder
    appears (the run has begun writing its new folder)."""
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    t0 = time.perf_counter()
    if in_writing:
        while child.poll() is None and not any(".tmp-" in s for s in strays(folder)):
            time.sleep(0.002)
    time.sleep(at)
    at = time.perf_counter() - t0
    staging = any(".tmp-" in s for s in strays(folder))  # is the run writing its new folder?
    if child.poll() is None:
        child.send_signal(sig)
    code = child.wait(timeout=300)
    return {"at_s": round(at, 2), "exit": code, "staging_at_kill": staging}


def run_command(name: str, cmd: list[str], folder: Path, kills: int, rng: random.Random, sig: int) -> dict:
    # an uninterrupted run: its duration, and when its staging folder exists (the window where it writes)
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    seen = []
    while child.poll() is None:
        if any(".tmp-" in s for s in strays(folder)):
            seen.append(time.perf_counter() - t0)
        time.sleep(0.02)
    duration = time.perf_counter() - t0
    assert child.returncode == 0, f"{name} failed"
    window = (min(seen), max(seen)) if seen else (0.0, duration)
    expected = set(folder_bytes(folder))  # the files of a complete folder
    log(
        f"{name}: an uninterrupted run takes {duration:.1f} s, writing its staging folder {window[0]:.1f}-{window[1]:.1f} s"
    )
    rows = []
    for i in range(kills):
        before = folder_bytes(folder)
        # every other kill lands while the run writes (a random moment after its staging folder appears, within the
        # length of the writing window), the rest anywhere in the run
        if i % 2:
            row = kill_once(cmd, folder, rng.uniform(0.0, window[1] - window[0]), sig, in_writing=True)
        else:
            row = kill_once(cmd, folder, rng.uniform(0.0, duration), sig)
        after = folder_bytes(folder)
        row["identical"] = after == before
        if row["exit"] == 0 or not row["identical"]:  # the swap was done before the kill landed: the new folder
            row["outcome"] = "finished first" if row["exit"] == 0 else "killed after the swap"
            row["ok"] = set(after) == expected  # whole: every file an uninterrupted run writes, nothing else
        else:
            row["outcome"] = "killed"
            row["ok"] = True
        row["strays_after_kill"] = strays(folder)
        next_run_check(folder)
        row["strays_after_next_run"] = strays(folder)
        row["ok"] = row["ok"] and not row["strays_after_next_run"]
        rows.append(row)
        log(f"{name} kill {i + 1}/{kills}: {row}")
    # finally a real next run to completion: the folder is whole, nothing beside it
    subprocess.run(cmd, check=True, env=env(), capture_output=True)
    final_ok = not strays(folder) and "model.safetensors" in folder_bytes(folder)
    return {"command": name, "uninterrupted_s": round(duration, 2), "writing_window_s": [round(w, 2) for w in window],
            "kills": rows, "final_run_clean": final_ok}  # fmt: skip


def render_md(record: dict) -> str:
    results = record["results"]
    kills = len(results[0]["kills"])
    command = f"bench_kill.py --kills {kills} --seed {record['seed']} --signal {record['signal']}"
    lines = [
        *md_header("Killing train and forget at random moments", record, f"flock {LOCK} python benchmarks/{command}"),
        "Each command is run once uninterrupted (its duration, and the window in which its staging folder exists, "
        "i.e. it writes), then killed at moments drawn uniformly over the run (even kills) or, once its staging "
        "folder appears, uniformly over the length of the writing window (odd kills). After every kill: the previous "
        "folder byte-identical (or, if the run finished first, a complete "
        "new folder), and after the next run's first step no temporary folder beside it.",
        "",
    ]
    header = ["command", "uninterrupted run (writing)", "kills", "killed before the swap", "of which while writing",
              "previous folder byte-identical", "killed after the swap (new folder whole)", "finished first",
              "strays after the next run", "all ok"]  # fmt: skip
    rows = []
    for r in results:
        killed = [k for k in r["kills"] if k["outcome"] == "killed"]
        intact = sum(k["identical"] for k in killed)
        swapped = sum(k["outcome"] == "killed after the swap" and k["ok"] for k in r["kills"])
        stray = sum(bool(k["strays_after_next_run"]) for k in r["kills"])
        ok = all(k["ok"] for k in r["kills"]) and r["final_run_clean"]
        window = f"{r['uninterrupted_s']} s ({r['writing_window_s'][0]}-{r['writing_window_s'][1]} s)"
        finished = sum(k["outcome"] == "finished first" for k in r["kills"])
        rows.append([f"`{r['command']}`", window, len(r["kills"]), len(killed),
                     sum(k["staging_at_kill"] for k in killed), f"{intact}/{len(killed)}", swapped, finished, stray,
                     verdict(ok)])  # fmt: skip
    lines += md_table(header, rows)
    lines += ["", "Kill moments (s) and exit status:", ""]
    for r in results:
        moments = ", ".join(f"{k['at_s']} ({k['exit']})" for k in r["kills"])
        lines.append(f"- `{r['command']}`: {moments}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="Kills per command.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill moments.")
    parser.add_argument("--signal", default="SIGKILL", choices=["SIGKILL", "SIGINT", "SIGTERM"])
    parser.add_argument("--no_write", action="store_true", help="Do not write benchmarks/results/kill.*")
    parser.add_argument("--render-from", metavar="JSON", help="measure nothing: re-render the .md from this JSON")
    args = parser.parse_args()
    if args.render_from:
        rerender(args.render_from, render_md)
        return
    sig = getattr(signal, args.signal)
    rng = random.Random(args.seed)
    load_before = loadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_kill-") as work:
        work = Path(work)
        model = work / "vit"
        subprocess.run(cli("train", "--output_dir", model, *TRAIN), check=True, env=env(), capture_output=True)
        train_cmd = cli("train", "--output_dir", model, "--overwrite_output_dir", "true", *TRAIN)
        results = [run_command("train --overwrite_output_dir", train_cmd, model, args.kills, rng, sig)]
        no3 = work / "vit-no3"
        forget_cmd = cli("forget", "--model_dir", model, "--forget_classes", "3", "--method", "mnemonic_head",
                         "--allow_incomplete", "true", "--output_dir", no3, "--overwrite_output_dir")  # fmt: skip
        subprocess.run(forget_cmd, check=True, env=env(), capture_output=True)  # the previous folder
        results.append(run_command("forget --overwrite_output_dir", forget_cmd, no3, args.kills, rng, sig))
    record = {
        "signal": args.signal,
        "seed": args.seed,
        "results": results,
        "wall_s": round(time.perf_counter() - t0, 1),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "environment": environment(),
    }
    text = render_md(record)
    print(text)
    if not args.no_write:
        out = Path(REPO_ROOT) / "benchmarks" / "results"
        (out / "kill.md").write_text(text)
        (out / "kill.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
