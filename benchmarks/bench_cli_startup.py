"""Start-up time of the ``hf-unlearn`` command: the wall time of ``--help`` for the command and each subcommand.

Each is run ``--repeats`` times (default 5) in a fresh process (``python -m hf_unlearn.cli``, the same code as the
console script), and once more to record which heavy libraries it imports. ``hf-unlearn --help`` imports none and
has a 1 s target; a subcommand's ``--help`` builds its parser (``HfUnlearnParser``, a ``transformers.HfArgumentParser``)
and so imports transformers, and ``train``'s flags are ``TrainingArguments``, which imports torch: their times are
reported, without a target. Written to benchmarks/results/cli_startup.md and .json.

    python benchmarks/bench_cli_startup.py
    python benchmarks/bench_cli_startup.py --repeats 3 --no_write
    python benchmarks/bench_cli_startup.py --render-from benchmarks/results/cli_startup.json   # .md only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench_common import REPO_ROOT, environment, loadavg, log, md_header, md_table, rerender, verdict

from hf_unlearn.scripts import COMMANDS as SCRIPTS

COMMANDS = ["", *SCRIPTS]  # "" is `hf-unlearn --help` itself
TARGET_S = 1.0  # of `hf-unlearn --help`
HEAVY = ("torch", "transformers", "datasets", "accelerate")
IMPORTS = (
    "import contextlib, io, sys\n"
    "from hf_unlearn.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    main(sys.argv[1:])\n"
    f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
)


def heavy_imports(command: str) -> list[str]:
    argv = [sys.executable, "-c", IMPORTS, *([command] if command else []), "--help"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=True)
    return result.stdout.split()


def time_help(command: str, repeats: int) -> list[float]:
    argv = [sys.executable, "-m", "hf_unlearn.cli", *([command] if command else []), "--help"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
        times.append(time.perf_counter() - t0)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr[-2000:]}")
    return times


def render_md(result: dict) -> str:
    lines = [
        *md_header("`hf-unlearn --help` start-up time", result, "python benchmarks/bench_cli_startup.py"),
        f"Median of {result['repeats']} fresh processes per command (`python -m hf_unlearn.cli <command> --help`), "
        f"target < {TARGET_S:g} s for `hf-unlearn --help` (a command's --help may import transformers: no target).",
        "",
    ]
    rows = []
    for row in result["rows"]:
        name = f"`hf-unlearn {row['command']} --help`".replace("  ", " ")
        target = verdict(row["median_s"] < TARGET_S) if not row["command"] else "-"
        imports = ", ".join(row["imports"]) or "none of " + "/".join(HEAVY)
        times = [f"{x:.3f}" for x in (row["median_s"], min(row["times_s"]), max(row["times_s"]))]
        rows.append([name, *times, imports, target])
    header = ["command", "median (s)", "min (s)", "max (s)", "imports", "target"]
    return "\n".join([*lines, *md_table(header, rows, "lrrr"), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="Fresh processes per command (median taken).")
    parser.add_argument("--no_write", action="store_true", help="Print only; do not write benchmarks/results.")
    parser.add_argument("--render-from", metavar="JSON", help="measure nothing: re-render the .md from this JSON")
    args = parser.parse_args(argv)
    if args.render_from:
        rerender(args.render_from, render_md)
        return 0
    before = loadavg()
    rows = []
    for command in COMMANDS:
        times = time_help(command, args.repeats)
        rows.append(
            {
                "command": command,
                "times_s": [round(t, 4) for t in times],
                "median_s": statistics.median(times),
                "imports": heavy_imports(command),
            }
        )
        log(f"hf-unlearn {command} --help: median {rows[-1]['median_s']:.3f} s over {args.repeats}")
    result = {"repeats": args.repeats, "rows": rows, "loadavg_before": before, "loadavg_after": loadavg()}
    result["environment"] = environment()
    md = render_md(result)
    print(md)
    if not args.no_write:
        out = os.path.join(REPO_ROOT, "benchmarks", "results")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "cli_startup.md"), "w", encoding="utf-8") as f:
            f.write(md)
        with open(os.path.join(out, "cli_startup.json"), "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0 if rows[0]["median_s"] < TARGET_S and not rows[0]["imports"] else 1


if __name__ == "__main__":
    sys.exit(main())
