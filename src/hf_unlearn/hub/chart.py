"""The per-class accuracy chart of a model card: before/after bars, the classes to forget hatched.

matplotlib is optional: without it the chart is skipped with a note in the log and the card simply has no chart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..report import UnlearningReport
from ..utils import get_logger

logger = get_logger(__name__)

CHART_FILE = "unlearning_per_class_accuracy.png"
_PER_CLASS_KEYS = ("per_class_accuracy", "per_class", "class_accuracy")


def _per_class(values: Any, label2id: Mapping[str, int]) -> dict[int, float]:
    """``{class id: accuracy}`` from a mapping keyed by id (int or str) or label name, or a list indexed by id."""
    if not isinstance(values, Mapping):
        return {}
    for key in _PER_CLASS_KEYS:
        pc = values.get(key)
        if isinstance(pc, Mapping):
            out = {}
            for k, v in pc.items():
                cid = label2id.get(str(k), int(k) if str(k).lstrip("-").isdigit() else None)
                if cid is not None and v is not None:
                    out[cid] = float(v)
            return out
        if isinstance(pc, Sequence) and not isinstance(pc, str):
            return {i: float(v) for i, v in enumerate(pc) if v is not None}
    return {}


def plot_per_class_accuracy(report: UnlearningReport, path: str | os.PathLike) -> str | None:
    """Draws per-class accuracy before and after unlearning as grouped bars, the classes to forget marked.

    Args:
        report: the run's record; its ``metrics["before"/"after"]["per_class_accuracy"]`` (a mapping from class id
            or label name to accuracy, or a list indexed by class id) is drawn.
        path: PNG file to write.

    Returns:
        ``path`` as a string, or ``None`` (nothing written) when the report holds no per-class accuracy or
        matplotlib (an optional dependency) is not installed.
    """
    if not report.metrics:
        return None
    names = dict(zip(report.forget_classes, report.forget_labels))
    names.update(zip(report.retain_classes, report.retain_labels))
    label2id = {str(v): k for k, v in names.items()}
    before = _per_class(report.metrics.get("before"), label2id)
    after = _per_class(report.metrics.get("after"), label2id)
    classes = sorted(set(before) | set(after))
    if not classes:
        return None
    try:
        # A bare Figure on an Agg canvas: no display, no pyplot state, and the user's backend is left alone.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        logger.info(
            "matplotlib is not installed: the per-class accuracy chart is skipped (pip install 'hf_unlearn[plot]' "
            "or matplotlib to draw it)."
        )
        return None

    targeted = set(report.forget_classes)
    xs = list(range(len(classes)))
    width = 0.4
    fig = Figure(figsize=(max(4.0, 0.6 * len(classes) + 1.5) + 1.6, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar([x - width / 2 for x in xs], [before.get(c, 0.0) for c in classes], width, color="#9aa5b1")
    bars = ax.bar([x + width / 2 for x in xs], [after.get(c, 0.0) for c in classes], width)
    for bar, c in zip(bars, classes):
        if c in targeted:  # hatch lines are drawn in the edge colour
            bar.set(facecolor="#d1495b", edgecolor="#7a1f2b", hatch="//")
        else:
            bar.set(facecolor="#2e86ab", edgecolor="#2e86ab")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{names.get(c, c)}{'*' if c in targeted else ''}" for c in classes], rotation=0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title("Per-class accuracy (* = class to forget)")
    handles = [
        Patch(color="#9aa5b1", label="before"),
        Patch(color="#2e86ab", label="after, kept"),
        Patch(facecolor="#d1495b", edgecolor="#7a1f2b", hatch="//", label="after, to forget"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    fig.tight_layout()
    path = str(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png")
    return path
