"""Shared fixtures: tiny ViT and BERT classifiers built from configs, digits, a keyword text task, a local Hub.

Plain helper functions (parameter snapshots, subprocess environment, free ports) are in tests/helpers.py.

Everything is built offline (no Hub access) and kept tiny: the suite shares two CPU cores with other work.
The default run is ``python -m pytest -m "not slow"``; ``--runslow`` is accepted as a shorthand that also
runs the tests marked ``slow`` when no ``-m`` expression is given.
"""

from __future__ import annotations

import os
import random

# Set before transformers / datasets / huggingface_hub are imported anywhere in the test session.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# A keyword decides the class of a sentence; the filler words carry no signal.
KEYWORDS = [
    ["apple", "banana", "cherry", "grape"],
    ["red", "green", "blue", "yellow"],
    ["dog", "cat", "horse", "bird"],
]
FILLER = [f"w{i}" for i in range(80)]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]"]
TEXT_VOCAB = SPECIAL_TOKENS + [w for group in KEYWORDS for w in group] + FILLER


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    # With an explicit -m expression the user decides; otherwise slow tests need --runslow.
    if config.getoption("--runslow") or config.getoption("markexpr"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def digits():
    """(train, test) digits datasets: ``pixel_values`` (1, 8, 8) in [-1, 1] and ``labels`` (10 classes)."""
    from hf_unlearn.data import digits_datasets

    return digits_datasets()


@pytest.fixture
def tiny_vit_model():
    """A fresh ViT classifier for the digits (hidden 32, one layer, seed 0): cheap enough to build per test."""
    from hf_unlearn.data import tiny_vit

    return tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0)


def make_tiny_bert(vocab_size: int | None = None, num_labels: int = 3, seed: int = 0, **overrides):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size or len(TEXT_VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
        pad_token_id=0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **overrides,
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


@pytest.fixture
def tiny_bert():
    """A fresh BertForSequenceClassification (vocab of the keyword task, hidden 32, one layer, 2 heads, 3 labels)."""
    return make_tiny_bert()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A WordPiece BERT tokenizer over ``TEXT_VOCAB``, built in memory ([PAD]=0, [CLS]=2, [SEP]=3, [unused*])."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab={w: i for i, w in enumerate(TEXT_VOCAB)})


def make_keyword_texts(n: int, seed: int, min_filler: int = 3, max_filler: int = 8) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        c = rng.randrange(len(KEYWORDS))
        words = rng.choices(FILLER, k=rng.randint(min_filler, max_filler))
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(KEYWORDS[c]))
        texts.append(" ".join(words))
        labels.append(c)
    return texts, labels


@pytest.fixture(scope="session")
def keyword_text(tiny_tokenizer):
    """(train, test) datasets of the keyword task: ``text``, ``labels`` and the tokenizer's unpadded columns."""
    from datasets import Dataset

    out = []
    for n, seed in ((600, 0), (150, 1)):
        texts, labels = make_keyword_texts(n, seed)
        ds = Dataset.from_dict({"text": texts, "labels": labels})
        out.append(ds.map(lambda b: tiny_tokenizer(b["text"]), batched=True))
    return out[0], out[1]


@pytest.fixture
def local_hub(monkeypatch):
    """A LocalHub (tests/hub_server.py) on 127.0.0.1 with huggingface_hub and transformers pointed at it, no token."""
    from hub_server import LocalHub, patch_hub_endpoint

    with LocalHub() as server:
        patch_hub_endpoint(monkeypatch, server.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield server


@pytest.fixture
def mnemonic_args(tmp_path):
    """Builds a MnemonicConfig for quiet, CPU-only, single-thread test runs; keyword arguments override."""
    from hf_unlearn import MnemonicConfig

    def build(**overrides):
        kwargs = dict(
            output_dir=str(tmp_path / "out"),
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            save_strategy="no",
            logging_strategy="no",
            per_device_train_batch_size=32,
            per_device_eval_batch_size=64,
            dataloader_num_workers=0,
            seed=0,
        )
        kwargs.update(overrides)
        return MnemonicConfig(**kwargs)

    return build
