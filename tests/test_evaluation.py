"""Tests for hf_unlearn.evaluation and the evaluate modules shipped in hf_unlearn/metrics.

Most tests use a hand-made classifier whose logits are its input, so every expected accuracy is exact.
"""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import PretrainedConfig
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_unlearn.evaluation import (
    Timer,
    evaluate_unlearning,
    membership_inference_auc,
    metric_path,
    mia_auc_on_forget,
    per_class_accuracy,
    predict,
    unlearning_metrics,
)

torch.set_num_threads(1)

ID2LABEL = {0: "cat", 1: "dog", 2: "bird", 3: "fish"}
# A known prediction table: per class 0: 1/4, 1: 2/2, 2: 2/3, 3: 0/1; overall 5/10.
LABELS = [0, 0, 0, 0, 1, 1, 2, 2, 2, 3]
PREDS = [0, 1, 1, 1, 1, 1, 2, 0, 2, 1]


class EchoClassifier(nn.Module):
    """Returns its input as logits: ``pixel_values`` of shape (B, C) are the logits, so predictions are chosen."""

    main_input_name = "pixel_values"

    def __init__(self, id2label=None):
        super().__init__()
        id2label = id2label or ID2LABEL
        self.config = PretrainedConfig(id2label=id2label, label2id={v: k for k, v in id2label.items()})
        self.scale = nn.Parameter(torch.ones(()))
        self.dropout = nn.Dropout(0.5)  # proves eval mode: in train mode it would scramble the logits
        self.calls = 0

    def forward(self, pixel_values, labels=None):
        self.calls += 1
        return SequenceClassifierOutput(logits=self.dropout(pixel_values * self.scale))


def one_hot_logits(preds, num_labels=4, high=5.0):
    x = torch.zeros(len(preds), num_labels)
    x[torch.arange(len(preds)), torch.tensor(preds)] = high
    return x


def known_dict():
    return {"pixel_values": one_hot_logits(PREDS), "labels": torch.tensor(LABELS)}


class RowDataset(torch.utils.data.Dataset):
    def __init__(self, columns):
        self.columns = columns

    def __len__(self):
        return len(self.columns["labels"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.columns.items()}


def known_datasets():
    cols = known_dict()
    plain = Dataset.from_dict(
        {
            "pixel_values": cols["pixel_values"].tolist(),
            "label": LABELS,  # the other common name
            "text": [f"sample {i}" for i in range(len(LABELS))],  # not a forward argument: must be dropped
        }
    )
    return {
        "dict": cols,
        "hf": plain,
        "hf_torch": plain.with_format("torch"),
        "torch": RowDataset(cols),
    }


@pytest.fixture
def model():
    return EchoClassifier()


# ----------------------------------------------------------------------------------------------------------------------
# per_class_accuracy


def test_per_class_accuracy_from_logits_and_preds():
    expected = {0: 0.25, 1: 1.0, 2: pytest.approx(2 / 3), 3: 0.0}
    assert per_class_accuracy(np.array(PREDS), np.array(LABELS), 4) == expected
    assert per_class_accuracy(one_hot_logits(PREDS), torch.tensor(LABELS), 4) == expected


def test_per_class_accuracy_omits_absent_classes():
    acc = per_class_accuracy([0, 2, 2], [0, 2, 0], num_labels=5)
    assert acc == {0: 0.5, 2: 1.0}
    assert all(not np.isnan(v) for v in acc.values())


def test_per_class_accuracy_errors():
    with pytest.raises(ValueError, match="`labels`"):
        per_class_accuracy([0, 1], [0, 7], num_labels=4)
    with pytest.raises(ValueError, match="`logits_or_preds`"):
        per_class_accuracy([0, 1, 1], [0, 1], num_labels=4)


# ----------------------------------------------------------------------------------------------------------------------
# predict


@pytest.mark.parametrize("kind", ["dict", "hf", "hf_torch", "torch"])
def test_predict_every_dataset_kind(model, kind):
    logits, labels = predict(model, known_datasets()[kind], batch_size=3)
    assert logits.shape == (10, 4) and logits.dtype == np.float32
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, LABELS)
    np.testing.assert_array_equal(logits.argmax(1), PREDS)
    assert model.calls == 4  # ceil(10 / 3) batches


def test_predict_restores_modes_of_every_submodule(model):
    model.train()
    model.dropout.eval()  # mixed modes must come back exactly, not as a blanket model.train()
    predict(model, known_dict())
    assert model.training and not model.dropout.training
    model.eval()
    predict(model, known_dict())
    assert not model.training and not model.dropout.training


def test_predict_restores_mode_after_an_error():
    class Broken(EchoClassifier):
        def forward(self, pixel_values, labels=None):
            assert not self.training
            raise RuntimeError("boom")

    broken = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        predict(broken, known_dict())
    assert broken.training and broken.dropout.training


def test_predict_runs_without_grad(model):
    class Probe(EchoClassifier):
        def forward(self, pixel_values, labels=None):
            self.grad_enabled = torch.is_grad_enabled()
            return super().forward(pixel_values)

    probe = Probe()
    predict(probe, known_dict())
    assert probe.grad_enabled is False


def test_predict_errors(model):
    with pytest.raises(ValueError, match="`dataset` is empty"):
        predict(model, {"pixel_values": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)})
    with pytest.raises(ValueError, match="`dataset` is empty"):
        predict(model, Dataset.from_dict({"pixel_values": [], "labels": []}))
    with pytest.raises(ValueError, match="`dataset` has no `labels`"):
        predict(model, {"pixel_values": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="`dataset` holds labels"):
        predict(model, {"pixel_values": torch.zeros(2, 4), "labels": torch.tensor([0, 4])})
    with pytest.raises(ValueError, match="`batch_size`"):
        predict(model, known_dict(), batch_size=0)
    nan = known_dict()
    nan["pixel_values"][3, 1] = float("nan")
    with pytest.raises(ValueError, match="`model` produced NaN"):
        predict(model, nan)


def test_predict_tiny_vit_matches_direct_forward():
    from hf_unlearn.data import digits_datasets, tiny_vit

    vit = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    _, test = digits_datasets()
    test = test.select(range(40))
    logits, labels = predict(vit, test, batch_size=16)
    batch = test[:]
    with torch.no_grad():
        expected = vit.eval()(pixel_values=batch["pixel_values"]).logits.numpy()
    assert logits.shape == (40, 10)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, batch["labels"].numpy())


def test_predict_text_with_padding_collator_drops_raw_text():
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer, DataCollatorWithPadding

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "is", "a", "cat", "dog", "where", "the"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)})
    config = BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=3,
    )  # fmt: skip
    torch.manual_seed(0)
    bert = BertForSequenceClassification(config)
    texts = ["what is a cat", "dog", "where is the dog", "a cat", "the"]
    ds = Dataset.from_dict({"text": texts, "label": [0, 1, 2, 1, 0]})
    ds = ds.map(lambda b: tokenizer(b["text"]), batched=True)  # keeps `text`: predict must drop it
    logits, labels = predict(bert, ds, data_collator=DataCollatorWithPadding(tokenizer), batch_size=2)
    assert logits.shape == (5, 3)
    np.testing.assert_array_equal(labels, [0, 1, 2, 1, 0])
    bert.eval()
    with torch.no_grad():
        for i, text in enumerate(texts):  # padding must not change any sample's logits
            expected = bert(**tokenizer(text, return_tensors="pt")).logits[0].numpy()
            np.testing.assert_allclose(logits[i], expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="data_collator"):
        predict(bert, ds)


def test_predict_batches_text_rows_by_length_and_keeps_their_order(tiny_bert, tiny_tokenizer, keyword_text):
    from transformers import DataCollatorWithPadding

    _, test = keyword_text
    ds = test.select(range(24))
    padding = DataCollatorWithPadding(tiny_tokenizer)
    seen = []

    def collator(rows):  # records how long each batch is padded to
        batch = padding(rows)
        seen.append(batch["input_ids"].shape[1])
        return batch

    logits, labels = predict(tiny_bert, ds, data_collator=collator, batch_size=8)
    lengths = sorted(len(x) for x in ds["input_ids"])
    assert seen == [lengths[7], lengths[15], lengths[23]]  # each batch padded to its own rows' longest
    np.testing.assert_array_equal(labels, ds["labels"])
    one, _ = predict(tiny_bert, ds, data_collator=padding, batch_size=1)  # rows one by one, nothing reordered
    np.testing.assert_allclose(logits, one, rtol=1e-4, atol=1e-5)
    columns = {k: ds[k] for k in ("input_ids", "attention_mask", "labels")}  # a dict of columns too
    from_dict, _ = predict(tiny_bert, columns, data_collator=padding, batch_size=8)
    np.testing.assert_allclose(from_dict, one, rtol=1e-4, atol=1e-5)


class ThreadAccelerator:
    """Enough of accelerate.Accelerator for predict(): ranks are threads and gather() concatenates their tensors."""

    def __init__(self, rank, world, shared):
        self.process_index, self.num_processes, self.shared = rank, world, shared
        self.device = torch.device("cpu")

    def gather(self, tensor):
        box, barrier = self.shared["box"], self.shared["barrier"]
        barrier.wait()
        box[self.process_index] = tensor.clone()
        barrier.wait()
        out = torch.cat([box[r] for r in range(self.num_processes)])
        barrier.wait()
        return out


def test_unwrap_model_strips_parallel_and_compile_wrappers_in_any_order():
    from hf_unlearn.utils import unwrap_model

    net = EchoClassifier()
    assert unwrap_model(net) is net
    assert unwrap_model(torch.compile(net)) is net
    assert unwrap_model(nn.DataParallel(torch.compile(net))) is net  # compile inside the parallel wrapper
    assert unwrap_model(torch.compile(nn.DataParallel(net))) is net
    assert unwrap_model("model") == "model"  # not a module: returned as given, for the caller's own error


@pytest.mark.parametrize("world", [2, 3])
def test_predict_shards_and_gathers_in_original_order(world):
    n = 7  # not a multiple of the world size: shards differ in length and need padding
    x = torch.randn(n, 4)
    data = {"pixel_values": x, "labels": torch.arange(n) % 4}
    shared = {"box": {}, "barrier": threading.Barrier(world)}
    results, calls = {}, {}

    def run(rank):
        rank_model = EchoClassifier()
        results[rank] = predict(rank_model, data, batch_size=2, accelerator=ThreadAccelerator(rank, world, shared))
        calls[rank] = rank_model.calls

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == list(range(world))
    for logits, labels in results.values():  # every rank holds the full arrays, in order
        np.testing.assert_array_equal(logits, x.numpy())
        np.testing.assert_array_equal(labels, data["labels"].numpy())
    assert sum(calls.values()) == sum(-(-len(range(r, n, world)) // 2) for r in range(world))  # each rank its shard


# ----------------------------------------------------------------------------------------------------------------------
# unlearning_metrics


@pytest.mark.parametrize("kind", ["dict", "hf", "hf_torch", "torch"])
def test_unlearning_metrics_exact(model, kind):
    m = unlearning_metrics(model, known_datasets()[kind], [0], batch_size=4)
    assert m["forget_accuracy"] == 0.25
    assert m["forget_error"] == 0.75
    assert m["retain_accuracy"] == pytest.approx(4 / 6)
    assert m["test_accuracy"] == 0.5
    assert m["per_class_accuracy"] == {"cat": 0.25, "dog": 1.0, "bird": pytest.approx(2 / 3), "fish": 0.0}
    assert m["num_forget_samples"] == 4 and m["num_retain_samples"] == 6
    assert m["forget_classes"] == [0]
    json.dumps(m)  # stored in UnlearningReport


def test_unlearning_metrics_accepts_label_names(model):
    by_name = unlearning_metrics(model, known_dict(), ["fish", "cat"])
    by_id = unlearning_metrics(model, known_dict(), [3, 0])
    assert by_name == by_id
    assert by_name["forget_accuracy"] == pytest.approx(1 / 5) and by_name["retain_accuracy"] == pytest.approx(4 / 5)
    assert unlearning_metrics(model, known_dict(), "dog")["forget_error"] == 0.0


def test_unlearning_metrics_errors(model):
    with pytest.raises(ValueError, match="`forget_classes`.*'horse'"):
        unlearning_metrics(model, known_dict(), ["horse"])
    with pytest.raises(ValueError, match="`forget_classes`.*class id 9"):
        unlearning_metrics(model, known_dict(), [9])
    assert model.calls == 0  # classes are checked before the prediction pass
    with pytest.raises(ValueError, match="`dataset` is empty"):
        unlearning_metrics(model, Dataset.from_dict({"pixel_values": [], "labels": []}), [0])
    nan = known_dict()
    nan["pixel_values"][0, 0] = float("nan")
    with pytest.raises(ValueError, match="`model`"):
        unlearning_metrics(model, nan, [0])


def test_unlearning_metrics_without_forget_samples_warns(model, caplog):
    data = {"pixel_values": one_hot_logits([1, 2]), "labels": torch.tensor([1, 2])}
    with caplog.at_level("WARNING", logger="hf_unlearn"):
        m = unlearning_metrics(model, data, [0])
    assert m["forget_accuracy"] is None and m["forget_error"] is None and m["retain_accuracy"] == 1.0
    assert "forget classes" in caplog.text


# ----------------------------------------------------------------------------------------------------------------------
# Membership inference


def confident(labels, logit):
    """Logits with ``logit`` on the true class: a larger value means a lower loss and a lower entropy."""
    return one_hot_logits(labels, high=logit)


def test_mia_auc_perfect_separation_and_chance(model):
    members = {"pixel_values": confident([0, 1, 2, 3, 0], 8.0), "labels": torch.tensor([0, 1, 2, 3, 0])}
    nonmembers = {"pixel_values": confident([0, 1, 2], 0.5), "labels": torch.tensor([0, 1, 2])}
    assert membership_inference_auc(model, members, nonmembers) == 1.0
    assert membership_inference_auc(model, members, nonmembers, score="entropy") == 1.0
    assert membership_inference_auc(model, nonmembers, members) == 0.0
    assert membership_inference_auc(model, members, members) == 0.5  # identical distributions
    with pytest.raises(ValueError, match="`score`"):
        membership_inference_auc(model, members, nonmembers, score="margin")
    with pytest.raises(ValueError, match="`nonmember_dataset` is empty"):
        membership_inference_auc(model, members, {"pixel_values": torch.zeros(0, 4), "labels": torch.zeros(0)})


def test_mia_auc_on_forget_filters_forget_classes(model):
    # forget class 0: its training samples are remembered (confident), its test samples are not. The other classes
    # are arranged the opposite way, so without the filtering the AUC would be far from 1.
    train_labels = [0, 0, 1, 1, 1]
    train_logits = torch.cat([confident([0, 0], 8.0), confident([1, 1, 1], 0.1)])
    test_labels = [0, 0, 0, 2, 2]
    test_logits = torch.cat([confident([0, 0, 0], 1.0), confident([2, 2], 9.0)])
    train = Dataset.from_dict({"pixel_values": train_logits.tolist(), "labels": train_labels}).with_format("torch")
    test = {"pixel_values": test_logits, "labels": torch.tensor(test_labels)}
    assert mia_auc_on_forget(model, train, test, ["cat"]) == 1.0
    assert membership_inference_auc(model, train, test) < 0.5
    with pytest.raises(ValueError, match="`test_dataset` holds no sample"):
        mia_auc_on_forget(model, train, test, [1])

    report = evaluate_unlearning(model, test, "cat", train_dataset=train)
    assert report["mia_auc"] == 1.0 and report["mia_score"] == "loss"
    assert report["forget_accuracy"] == 1.0 and report["retain_accuracy"] == 1.0
    assert "mia_auc" not in evaluate_unlearning(model, test, "cat")


# ----------------------------------------------------------------------------------------------------------------------
# Timer, metric_path and the evaluate modules


def test_timer():
    with Timer() as t:
        time.sleep(0.02)
        inside = t.seconds
    assert 0.02 <= inside <= t.seconds < 2.0
    assert t.seconds == t.seconds  # frozen once the block ends
    with pytest.raises(RuntimeError):
        _ = Timer().seconds


def test_metric_path():
    for name in ("unlearning_accuracy", "membership_inference"):
        path = metric_path(name)
        assert os.path.isfile(os.path.join(path, f"{name}.py"))
        assert not os.path.exists(os.path.join(path, "__init__.py"))
    with pytest.raises(ValueError, match="`name`"):
        metric_path("accuracy")


OFFLINE_SCRIPT = """
import json, sys
import evaluate

acc_path, mia_path, arrays = sys.argv[1:]
preds, labels, members, nonmembers, ce_members, ce_nonmembers = json.loads(arrays)
acc = evaluate.load(acc_path, keep_in_memory=True)
mia = evaluate.load(mia_path, keep_in_memory=True)
print(json.dumps({
    "acc": acc.compute(predictions=preds, references=labels, forget_classes=[0, 3]),
    "mia": mia.compute(member_scores=members, nonmember_scores=nonmembers),
    "mia_same": mia.compute(member_scores=members, nonmember_scores=members),
    "mia_ce": mia.compute(member_scores=ce_members, nonmember_scores=ce_nonmembers),
}))
"""


def test_evaluate_modules_load_offline_and_agree_with_functions(model, tmp_path):
    from sklearn.metrics import roc_auc_score

    members, nonmembers = [-0.1, -0.3, -2.5, -0.2], [-1.0, -4.0, -0.05]
    # -CE scores of a model on two small sets, to check the module's AUC against membership_inference_auc
    m_data = {"pixel_values": confident([0, 1, 2], 3.0), "labels": torch.tensor([0, 1, 1])}
    n_data = {"pixel_values": confident([0, 2], 1.0), "labels": torch.tensor([0, 2])}

    def neg_ce(data):
        logits, labels = predict(model, data)
        return torch.log_softmax(torch.from_numpy(logits), 1)[torch.arange(len(labels)), labels].tolist()

    arrays = [PREDS, LABELS, members, nonmembers, neg_ce(m_data), neg_ce(n_data)]
    # evaluate is imported only in the child, with the Hub switched off; local paths must be enough
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_EVALUATE_OFFLINE="1")
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HOME=str(tmp_path / "hf"))
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # any attempt to reach a Hub fails fast
    paths = [metric_path("unlearning_accuracy"), metric_path("membership_inference")]
    out = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, *paths, json.dumps(arrays)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])

    expected = unlearning_metrics(model, known_dict(), [0, 3])
    for key in ("forget_accuracy", "forget_error", "retain_accuracy", "test_accuracy"):
        assert got["acc"][key] == pytest.approx(expected[key])
    assert got["acc"]["num_forget_samples"] == 5

    assert got["mia"]["auc"] == pytest.approx(roc_auc_score([1] * 4 + [0] * 3, members + nonmembers))
    # best threshold -0.3: members 3/4 above, non-members 2/3 below -> (3/4 + 2/3) / 2
    assert got["mia"]["attack_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert got["mia"]["threshold"] == -0.3
    assert got["mia_same"]["auc"] == 0.5
    assert got["mia_ce"]["auc"] == pytest.approx(membership_inference_auc(model, m_data, n_data))


MULTIPROCESS_SCRIPT = """
import json, sys
import torch
from accelerate import Accelerator
from hf_unlearn.data import tiny_vit
from hf_unlearn.evaluation import predict, unlearning_metrics

torch.set_num_threads(1)
accelerator = Accelerator(cpu=True)  # without cpu=True each process would believe it is alone
vit = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
g = torch.Generator().manual_seed(0)
data = {"pixel_values": torch.randn(13, 1, 8, 8, generator=g), "labels": torch.arange(13) % 10}
logits, labels = predict(vit, data, batch_size=4, accelerator=accelerator)
metrics = unlearning_metrics(vit, data, [0, 3], batch_size=4, accelerator=accelerator)
out = {"world": accelerator.num_processes, "logits": logits.tolist(), "labels": labels.tolist(), "metrics": metrics}
with open(f"{sys.argv[1]}/rank{accelerator.process_index}.json", "w") as f:
    json.dump(out, f)
accelerator.wait_for_everyone()  # both ranks done before the group goes: a rank leaving early can abort the other
torch.distributed.destroy_process_group()  # gloo can abort at exit when the group is left open
"""


@pytest.mark.multiprocess
def test_predict_two_processes_match_one(tmp_path):
    from hf_unlearn.data import tiny_vit

    script = tmp_path / "run.py"
    script.write_text(MULTIPROCESS_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out = subprocess.run([*cmd, str(script), str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["world"] == 2 and ranks[0] == ranks[1]

    vit = tiny_vit(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    g = torch.Generator().manual_seed(0)
    data = {"pixel_values": torch.randn(13, 1, 8, 8, generator=g), "labels": torch.arange(13) % 10}
    logits, labels = predict(vit, data, batch_size=4)
    np.testing.assert_allclose(np.array(ranks[0]["logits"]), logits, rtol=1e-5, atol=1e-6)
    assert ranks[0]["labels"] == labels.tolist()
    assert ranks[0]["metrics"] == unlearning_metrics(vit, data, [0, 3], batch_size=4)
