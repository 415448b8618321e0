"""The one data reader (hf_unlearn.data_utils): the same answers for every kind of data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_unlearn.data_utils import (
    dataset_size,
    forward_input_names,
    iterate_batches,
    label_column,
    labels_of,
    logits_from_outputs,
    shard_indices,
    split_by_classes,
)

LABELS = [0, 1, 2, 1, 0, 2, 1]


class RowDataset(torch.utils.data.Dataset):
    def __init__(self, columns):
        self.columns = columns

    def __len__(self):
        return len(self.columns["labels"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.columns.items()}


def kinds():
    x = torch.arange(len(LABELS) * 4, dtype=torch.float32).reshape(len(LABELS), 4)
    cols = {"pixel_values": x, "labels": torch.tensor(LABELS)}
    plain = Dataset.from_dict({"pixel_values": x.tolist(), "label": LABELS, "text": ["t"] * len(LABELS)})
    return {"dict": cols, "hf": plain, "hf_torch": plain.with_format("torch"), "torch": RowDataset(cols)}, x


class Net(torch.nn.Module):
    def forward(self, pixel_values, labels=None, return_dict=None):
        return SequenceClassifierOutput(logits=pixel_values)


@pytest.mark.parametrize("kind", ["dict", "hf", "hf_torch", "torch"])
def test_every_kind_reads_the_same(kind):
    data, x = kinds()
    ds = data[kind]
    assert dataset_size(ds) == len(LABELS)
    np.testing.assert_array_equal(labels_of(ds), LABELS)
    forget, retain = split_by_classes(ds, [1])
    np.testing.assert_array_equal(labels_of(forget), [1, 1, 1])
    np.testing.assert_array_equal(labels_of(retain), [0, 2, 0, 2])
    # rank 1 of 2 reads samples 1, 3, 5 in batches of 2; columns the forward does not take (text) are dropped
    batches = list(iterate_batches(Net(), ds, batch_size=2, rank=1, world_size=2))
    assert [sorted(b) for b in batches] == [["labels", "pixel_values"]] * 2
    torch.testing.assert_close(torch.cat([b["pixel_values"] for b in batches]), x[[1, 3, 5]], rtol=0, atol=0)
    assert torch.cat([b["labels"] for b in batches]).tolist() == [LABELS[i] for i in (1, 3, 5)]


def test_shards_cover_every_sample_once():
    shards = [shard_indices(10, r, 3, max_samples=8) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert shard_indices(2, 3, 4) == []  # more ranks than samples


def test_label_column_and_inputs_and_logits():
    assert label_column(["text", "label"]) == "label" and label_column(["labels", "label"]) == "labels"
    with pytest.raises(ValueError, match="`train_dataset` has no `labels`"):
        label_column(["text"], "train_dataset")
    assert forward_input_names(Net()) == {"pixel_values", "return_dict"}
    logits = torch.ones(2, 3)
    for out in (logits, SequenceClassifierOutput(logits=logits), {"logits": logits}, (logits, None)):
        assert logits_from_outputs(out) is logits


def test_ragged_rows_without_a_collator_say_what_to_do():
    ds = Dataset.from_dict({"input_ids": [[1, 2], [1, 2, 3]], "labels": [0, 1]})

    class Text(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, labels=None):
            return input_ids

    with pytest.raises(ValueError, match="data_collator"):
        list(iterate_batches(Text(), ds, batch_size=2))
