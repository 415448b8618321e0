"""Helpers shared by the benchmark scripts: logging, load average, mean/std, the machine/version record and the
markdown every script renders its JSON into (one header, one table format; ``--render-from`` re-renders)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from hf_unlearn.utils import library_versions

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample std of the values that are not None or NaN (NaN, NaN when none are)."""
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return float("nan"), float("nan")
    return float(np.mean(xs)), (float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0)


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def environment() -> dict[str, Any]:
    """Date, git commit (and uncommitted library changes), machine and package versions of a benchmark run."""
    import datasets
    import sklearn

    def git(*a: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *a], cwd=REPO_ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return None

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "library_uncommitted_changes": git("status", "--porcelain", "--", "src"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "versions": {
            **library_versions(),
            "datasets": datasets.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }


def training_args(
    cfg: dict[str, Any],
    outdir: str,
    seed: int,
    *,
    mnemonic: bool,
    epochs: float | None = None,
    max_steps: int | None = None,
    lr: float | None = None,
    mix: float | None = None,
):
    """The benchmarks' CPU training arguments from a recipe ``cfg`` (epochs, batch_size, lr, weight_decay,
    warmup_steps, lr_scheduler_type, t_mix): ``MnemonicConfig`` with codes when ``mnemonic``, else
    ``TrainingArguments``. No checkpoints, logging, evaluation or progress bars."""
    from transformers import TrainingArguments

    from hf_unlearn import MnemonicConfig

    kwargs = dict(
        output_dir=outdir,
        num_train_epochs=cfg["epochs"] if epochs is None else epochs,
        max_steps=-1 if max_steps is None else max_steps,
        per_device_train_batch_size=cfg["batch_size"],
        learning_rate=cfg["lr"] if lr is None else lr,
        weight_decay=cfg["weight_decay"],
        warmup_steps=cfg["warmup_steps"],
        lr_scheduler_type=cfg["lr_scheduler_type"],
        seed=seed,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    if mnemonic:
        return MnemonicConfig(**kwargs, mnemonic_mix_ratio=cfg["t_mix"] if mix is None else mix, mnemonic_seed=seed)
    return TrainingArguments(**kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# Markdown


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> list[str]:
    """Lines of a markdown table: ``header``, the separator (``align``: one ``l`` or ``r`` per column, left where
    not given) and one line per row of already formatted cells (an empty cell is ``| |``)."""
    sep = "|" + "|".join("---:" if i < len(align) and align[i] == "r" else "---" for i in range(len(header))) + "|"
    line = lambda cells: "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"  # noqa: E731
    return [line(header), sep, *(line(row) for row in rows)]


def _load_of(result: dict[str, Any]) -> tuple[Any, Any]:
    for start, end in (
        ("loadavg_start", "loadavg_end"),
        ("loadavg_before", "loadavg_after"),
        ("load_start", "load_end"),
    ):
        if start in result:
            return result[start], result.get(end)
    load = result.get("loadavg") or {}
    return load.get("start"), load.get("end")


def provenance(result: dict[str, Any], command: str) -> list[str]:
    """The header every benchmark's markdown opens with: the command, date, commit and wall time, then the machine
    (CPU, cores, torch threads), the load average at start and end, and the versions; from ``result["environment"]``
    (``environment()``) and the run's ``command`` / load / ``total_wall_s`` or ``wall_s`` entries.
    """
    env = result["environment"]
    command = str(result.get("command") or command).strip()
    date = env.get("date") or result.get("started")
    dirty = ", with uncommitted library changes" if env.get("library_uncommitted_changes") else ""
    wall = result.get("total_wall_s", result.get("wall_s"))
    wall = f", total wall time {wall / 60:.1f} min" if wall is not None else ""
    threads = env.get("torch_num_threads", env.get("torch_threads", result.get("threads")))
    start, end = _load_of(result)
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    return [
        f"Generated by `{command}` on {date} (git `{(env.get('git_commit') or '?')[:10]}`{dirty}){wall}.",
        "",
        f"Machine: {env.get('cpu')}, {env.get('cpu_count')} CPU cores shared with other processes, torch threads "
        f"{threads}; load average (1/5/15 min) at start {start}, at end {end}. Versions: {versions}.",
        "",
    ]


def md_header(title: str, result: dict[str, Any], command: str) -> list[str]:
    """The opening lines of every benchmark's markdown: the title, a warning for ``--quick`` runs, [`provenance`]."""
    quick = ["> **Quick smoke configuration (`--quick`)**: tiny budgets, numbers are not meaningful.", ""]
    return [f"# {title}", "", *(quick if result.get("quick") else []), *provenance(result, command)]


def rerender(json_path: str, render: Callable[[dict[str, Any]], str]) -> str:
    """``--render-from``: renders the saved ``json_path`` again into the ``.md`` beside it (measures nothing)."""
    with open(json_path, encoding="utf-8") as f:
        text = render(json.load(f)).rstrip("\n") + "\n"
    md_path = os.path.splitext(json_path)[0] + ".md"
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(text)
    log(f"re-rendered {md_path}")
    return md_path
