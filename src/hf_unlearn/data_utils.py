"""Reading labelled data the same way everywhere: size, labels, the model's inputs, batches, shards, class splits.

Every part of hf_unlearn that reads a data set (the Fisher passes, the evaluation, the codebook, the scripts) goes
through this module. It accepts three kinds of data set:

- a ``datasets.Dataset`` (torch-formatted or not);
- a map-style torch ``Dataset`` whose rows are dicts;
- a dict of columns, e.g. ``{"pixel_values": (N, C, H, W) tensor, "labels": (N,) tensor}`` (what
  ``MnemonicCodebook.as_inputs(with_labels=True)`` returns).

Labels live in ``labels`` (or ``label``); every other column the model's ``forward`` does not accept (raw ``text``,
ids, ...) is dropped before collating. With several processes, rank ``r`` of ``w`` reads samples ``r, r + w, ...``
([`shard_indices`]), so that gathering the shards row-major restores the original order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .utils import unwrap_model

LABEL_COLUMNS = ("labels", "label")

__all__ = [
    "LABEL_COLUMNS",
    "DatasetReader",
    "check_dataset",
    "dataset_size",
    "default_label_names",
    "encode_labels",
    "forward_input_names",
    "is_hf_dataset",
    "iterate_batches",
    "label_column",
    "labels_of",
    "logits_from_outputs",
    "shard_indices",
    "split_by_classes",
    "subset",
]


# ------------------------------------------------------------------------------------------------------------ model
def _forward_owner(model: nn.Module) -> nn.Module:
    """The module whose ``forward`` signature tells the accepted inputs: a PEFT wrapper passes them on to its base
    model (``PeftModelForSequenceClassification.forward`` does not name ``token_type_ids``, BERT's does)."""
    from .peft_utils import is_peft_model

    model = unwrap_model(model)
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) and is_peft_model(model) else model


def forward_input_names(model: nn.Module) -> set[str]:
    """Names of the inputs the model's ``forward`` takes by name, ``labels`` excluded (``**kwargs`` not counted)."""
    params = inspect.signature(_forward_owner(model).forward).parameters
    return {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "labels"}


def _accepted_inputs(model: nn.Module) -> set[str] | None:
    """:func:`forward_input_names`, or ``None`` (anything goes) for a bare ``forward(**kwargs)``."""
    names = forward_input_names(model)
    params = inspect.signature(_forward_owner(model).forward).parameters
    if not names and any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return None
    return names


def logits_from_outputs(outputs: Any) -> torch.Tensor:
    """The logits in what a classifier's forward returned: a ``ModelOutput``, a dict, a tuple or a tensor."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if hasattr(outputs, "logits"):
        return outputs.logits
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    return outputs[0]


# ---------------------------------------------------------------------------------------------------------- dataset
def is_hf_dataset(dataset: Any) -> bool:
    try:
        from datasets import Dataset
    except ImportError:  # pragma: no cover - datasets is a dependency
        return False
    return isinstance(dataset, Dataset)


def dataset_size(dataset: Any) -> int:
    """Number of samples: the length of ``labels`` (or of the first column) for a dict, ``len()`` otherwise."""
    if isinstance(dataset, Mapping):
        if not dataset:
            return 0
        return len(dataset["labels"]) if "labels" in dataset else len(next(iter(dataset.values())))
    return len(dataset)


def check_dataset(dataset: Any, argument: str) -> int:
    """Checks that ``dataset`` is a data set of a kind this module reads and holds samples; returns its size.

    Raises:
        ValueError / TypeError naming ``argument``.
    """
    if dataset is None:
        raise ValueError(f"`{argument}` is None; give a datasets.Dataset, a torch Dataset or a dict of tensors.")
    if type(dataset).__name__ in ("DatasetDict", "IterableDatasetDict"):
        raise ValueError(f"`{argument}` is a {type(dataset).__name__}; pass one split, e.g. `ds['test']`.")
    if isinstance(dataset, dict):
        if not dataset:
            raise ValueError(f"`{argument}` is an empty dict; give columns such as `pixel_values` and `labels`.")
        lengths = {k: len(v) for k, v in dataset.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"`{argument}` columns have different lengths: {lengths}.")
        n = next(iter(lengths.values()))
    elif hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        n = len(dataset)
    else:
        raise TypeError(
            f"`{argument}` must be a datasets.Dataset, a map-style torch Dataset or a dict of tensors, got "
            f"{type(dataset).__name__} (iterable datasets have no length to shard and order by)."
        )
    if n == 0:
        raise ValueError(f"`{argument}` is empty; it needs at least one labelled sample.")
    return n


def label_column(columns: Iterable[str], argument: str = "dataset") -> str:
    """The label column among ``columns``: ``labels``, else ``label``."""
    columns = list(columns)
    for name in LABEL_COLUMNS:
        if name in columns:
            return name
    raise ValueError(f"`{argument}` has no `labels` (or `label`) column; its columns are {columns}.")


def default_label_names(id2label: Mapping[int, str]) -> bool:
    """Whether a model's label names are transformers' placeholders (``LABEL_0`` ...) or its ids (``"0"`` ...)."""
    return all(str(v) in (f"LABEL_{k}", str(k)) for k, v in id2label.items())


def encode_labels(
    dataset: Any, column: str, id2label: Mapping[int, str], argument: str = "label_column", shown: str | None = None
) -> Any:
    """``dataset`` with the label names of ``column`` (strings, or a ``ClassLabel``'s names) turned into the model's
    class ids by its ``id2label``; integer labels are left as they are.

    A ``ClassLabel`` column keeps its ids when its names are the model's in the same order, or when the model's
    names are placeholders (``LABEL_0``, ``"0"``, ...) and some of its names are unknown to the model. Only a
    ``datasets.Dataset`` is read; anything else is returned unchanged. Its format (torch, a transform) is kept.

    Raises:
        ValueError: naming ``argument`` (and the column as ``shown``, default ``column``) and the unknown names, when
            the column holds names the model does not have.
    """
    if not is_hf_dataset(dataset) or column not in dataset.column_names:
        return dataset
    from datasets import ClassLabel, Value

    feature = dataset.features[column]
    label2id = {str(v): int(k) for k, v in id2label.items()}
    if isinstance(feature, ClassLabel):
        names = list(feature.names)
        unknown = [n for n in names if n not in label2id]
        if unknown and default_label_names(id2label):
            return dataset  # the model has no label names to match: the ids are the classes
        table: Any = {i: label2id.get(n) for i, n in enumerate(names)}
        if not unknown and all(table[i] == i for i in table):
            return dataset
    elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        values = set(dataset.with_format(None)[column])
        unknown = sorted(values - set(label2id), key=str)
        table = label2id
    else:
        return dataset
    if unknown:
        listed = ", ".join(repr(n) for n in unknown[:10]) + (
            f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        )
        raise ValueError(
            f"`{argument}` {shown or column!r} holds label names the model does not have ({listed}); the model's "
            f"labels (config.label2id): {sorted(label2id)}."
        )
    features = dataset.features.copy()
    features[column] = ClassLabel(names=[str(id2label[i]) for i in sorted(id2label)])
    fmt = dataset.format
    out = dataset.with_format(None).map(  # reads the label column only (images stay undecoded)
        lambda values: {column: [table[v] for v in values]}, input_columns=column, batched=True, features=features
    )
    out.set_format(type=fmt["type"], columns=fmt["columns"], output_all_columns=fmt["output_all_columns"],
                   **fmt["format_kwargs"])  # fmt: skip
    return out


def _columns_of(dataset: Any) -> list[str] | None:
    if is_hf_dataset(dataset):
        return list(dataset.column_names)
    if isinstance(dataset, Mapping):
        return list(dataset)
    return None  # a torch Dataset: columns are known only per row


def labels_of(dataset: Any, argument: str = "dataset") -> np.ndarray:
    """All labels of ``dataset`` as an int64 array, without running any model."""
    columns = _columns_of(dataset)
    if columns is not None:
        col = label_column(columns, argument)
        values = dataset.with_format(None)[col] if is_hf_dataset(dataset) else dataset[col]
    else:
        values = []
        for i in range(len(dataset)):
            row = dataset[i]
            values.append(row[label_column(row, argument)])
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy().astype(np.int64)
    return np.asarray([int(v) for v in values], dtype=np.int64)


def subset(dataset: Any, indices: Sequence[int]) -> Any:
    """The samples at ``indices``, as a data set of the same kind (a ``Subset`` for torch datasets)."""
    indices = [int(i) for i in indices]
    if is_hf_dataset(dataset):
        return dataset.select(indices)
    if isinstance(dataset, Mapping):
        out = {}
        for k, v in dataset.items():
            out[k] = v[indices] if isinstance(v, (torch.Tensor, np.ndarray)) else [v[i] for i in indices]
        return out
    return torch.utils.data.Subset(dataset, indices)


def split_by_classes(dataset: Any, classes: Iterable[int], argument: str = "dataset") -> tuple[Any, Any]:
    """``(forget, retain)``: the samples whose label is in ``classes`` and the others, each in the original order."""
    labels = labels_of(dataset, argument)
    is_forget = np.isin(labels, [int(c) for c in classes])
    return subset(dataset, np.flatnonzero(is_forget).tolist()), subset(dataset, np.flatnonzero(~is_forget).tolist())


def shard_indices(n: int, rank: int = 0, world_size: int = 1, max_samples: int | None = None) -> list[int]:
    """Indices of rank ``rank``'s shard of the first ``min(n, max_samples)`` samples: ``rank, rank + world_size, ...``."""
    if max_samples is not None:
        n = min(n, max_samples)
    return list(range(rank, n, world_size))


def _to_tensor(values: Any) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values
    if isinstance(values, (list, tuple)) and values and isinstance(values[0], torch.Tensor):
        return torch.stack(list(values))
    if isinstance(values, np.ndarray):
        return torch.from_numpy(values)
    if isinstance(values, (list, tuple)) and values and isinstance(values[0], np.ndarray):
        return torch.from_numpy(np.stack(values))
    return torch.as_tensor(values)


class DatasetReader:
    """Fetches batches of model inputs plus ``labels`` by index, keeping only what the model's forward accepts.

    Args:
        dataset: any kind of data set this module reads.
        model: the model whose ``forward`` decides which columns are kept.
        argument: the name of ``dataset`` in error messages.
        allow_empty: accept a data set without samples (callers that check the size themselves).
    """

    def __init__(self, dataset: Any, model: nn.Module, argument: str = "dataset", allow_empty: bool = False):
        self.dataset = dataset
        self.argument = argument
        self.n = (
            dataset_size(dataset) if allow_empty and dataset_size(dataset) == 0 else check_dataset(dataset, argument)
        )
        self.accepted = _accepted_inputs(model)
        self.is_hf = is_hf_dataset(dataset)
        columns = _columns_of(dataset)
        if columns is not None and self.n:
            self.label_col = label_column(columns, argument)
            self.keep = [c for c in columns if self.accepts(c)]
            if not self.keep:
                raise ValueError(
                    f"`{argument}` has no column that the model's forward accepts (columns {columns}, forward takes "
                    f"{sorted(self.accepted or [])}); tokenize or preprocess it first."
                )
            if self.is_hf:
                self.dataset = dataset.select_columns(self.keep + [self.label_col])

    def accepts(self, name: str) -> bool:
        """Whether column ``name`` is a model input (labels are not)."""
        return name not in LABEL_COLUMNS and (self.accepted is None or name in self.accepted)

    def _row(self, row: Any) -> dict[str, Any]:
        if not isinstance(row, Mapping):
            raise TypeError(
                f"`{self.argument}` must yield dicts of model inputs and `labels`, got {type(row).__name__}."
            )
        out = {k: v for k, v in row.items() if self.accepts(k)}
        out["labels"] = row[label_column(row, self.argument)]
        return out

    def rows(self, indices: list[int]) -> list[dict[str, Any]]:
        if self.is_hf or isinstance(self.dataset, Mapping):
            cols = self.columns(indices)
            return [{k: v[j] for k, v in cols.items()} for j in range(len(indices))]
        return [self._row(self.dataset[i]) for i in indices]

    def columns(self, indices: list[int]) -> dict[str, Any]:
        if self.is_hf:
            batch = self.dataset[indices]
        elif isinstance(self.dataset, Mapping):
            batch = subset({k: self.dataset[k] for k in self.keep + [self.label_col]}, indices)
        else:
            rows = self.rows(indices)
            return {k: [r[k] for r in rows] for k in rows[0]}
        batch = dict(batch)
        batch["labels"] = batch.pop(self.label_col)
        return batch

    def lengths(self, indices: list[int], data_collator: Callable | None) -> torch.Tensor | None:
        """The ``input_ids`` length of each row at ``indices``, or ``None`` where batches are not padded to their
        rows' lengths: without a collator, without an ``input_ids`` column, or for a map-style torch data set
        (reading the lengths there would read every row twice)."""
        if data_collator is None or "input_ids" not in getattr(self, "keep", ()):
            return None
        if self.is_hf:
            column = self.dataset.select(indices)["input_ids"]
        elif isinstance(self.dataset, Mapping):
            column = [self.dataset["input_ids"][i] for i in indices]
        else:
            return None
        return torch.tensor([len(x) for x in column], dtype=torch.long)

    def by_length(self, indices: list[int], data_collator: Callable | None) -> tuple[list[int], torch.Tensor | None]:
        """``(order, back)``: ``indices`` ordered by the rows' ``input_ids`` length (stable), so that a padding
        collator pads each batch to about its rows' own length (as ``group_by_length`` does for ``Trainer``), and
        the positions that put results computed in that order back in the order of ``indices`` (``None``: the order
        is unchanged, as where [`DatasetReader.lengths`] is ``None``)."""
        lengths = self.lengths(indices, data_collator) if len(indices) > 1 else None
        if lengths is None:
            return indices, None
        perm = torch.argsort(lengths, stable=True)
        return [indices[k] for k in perm.tolist()], torch.argsort(perm)

    def batch(self, indices: list[int], data_collator: Callable | None = None) -> dict[str, Any]:
        """The samples at ``indices`` collated: model inputs plus ``labels``."""
        if data_collator is not None:
            batch = dict(data_collator(self.rows(indices)))
            if "label" in batch and "labels" not in batch:
                batch["labels"] = batch.pop("label")
            # collators may add keys (e.g. token_type_ids) that this model's forward does not take
            return {k: v for k, v in batch.items() if k == "labels" or self.accepts(k)}
        try:
            return {k: _to_tensor(v) for k, v in self.columns(indices).items()}
        except (ValueError, TypeError, RuntimeError) as e:
            raise ValueError(
                f"Could not stack a batch of `{self.argument}` into tensors ({e}); samples of different lengths (e.g. "
                "tokenized text) need a `data_collator`, such as DataCollatorWithPadding(tokenizer)."
            ) from e


def iterate_batches(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int,
    data_collator: Callable | None = None,
    rank: int = 0,
    world_size: int = 1,
    max_samples: int | None = None,
    argument: str = "dataset",
) -> Iterator[dict[str, Any]]:
    """Yields collated batches (model inputs plus ``labels``) of this rank's shard of ``dataset``."""
    reader = DatasetReader(dataset, model, argument, allow_empty=True)
    idx = shard_indices(reader.n, rank, world_size, max_samples)
    for s in range(0, len(idx), batch_size):
        yield reader.batch(idx[s : s + batch_size], data_collator)
