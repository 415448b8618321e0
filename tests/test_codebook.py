"""MnemonicCodebook: seeded codes shaped for the model, scaled like its inputs, saved bit-exactly."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import SPECIAL_TOKENS, TEXT_VOCAB, make_tiny_bert
from torch import nn

import hf_unlearn
from hf_unlearn import MnemonicCodebook
from hf_unlearn.data import tiny_vit
from hf_unlearn.mnemonic.codebook import CODES_CONFIG_FILE, CODES_FILE


def vit(**kw):
    kw.setdefault("hidden_size", 32)
    kw.setdefault("num_hidden_layers", 1)
    kw.setdefault("num_attention_heads", 2)
    return tiny_vit(**kw)


# ---------------------------------------------------------------- reproducibility


def test_same_seed_same_codes_other_seed_other_codes(tiny_vit_model):
    a = MnemonicCodebook.for_model(tiny_vit_model, seed=7)
    # another instance (other weights) and a disturbed global RNG: codes depend only on the seed and the shape
    torch.manual_seed(12345)
    b = MnemonicCodebook.for_model(vit(seed=3), seed=7)
    assert torch.equal(a.inputs["pixel_values"], b.inputs["pixel_values"])
    assert a.equals(b) and a.fingerprint() == b.fingerprint()
    c = MnemonicCodebook.for_model(tiny_vit_model, seed=8)
    assert not torch.equal(a.inputs["pixel_values"], c.inputs["pixel_values"])
    assert not a.equals(c) and a.fingerprint() != c.fingerprint()


def test_text_codes_reproducible(tiny_bert, tiny_tokenizer):
    a = MnemonicCodebook.for_model(tiny_bert, seed=1, processing_class=tiny_tokenizer)
    b = MnemonicCodebook.for_model(make_tiny_bert(seed=5), seed=1, processing_class=tiny_tokenizer)
    c = MnemonicCodebook.for_model(tiny_bert, seed=2, processing_class=tiny_tokenizer)
    assert torch.equal(a.inputs["input_ids"], b.inputs["input_ids"])
    assert not torch.equal(a.inputs["input_ids"], c.inputs["input_ids"])


# ---------------------------------------------------------------- shapes and scale


def test_image_codes_shape_and_default_scale(tiny_vit_model):
    book = MnemonicCodebook.for_model(tiny_vit_model, seed=0, codes_per_class=20)
    x = book.inputs["pixel_values"]
    assert x.shape == (200, 1, 8, 8) and x.dtype == torch.float32
    assert book.modality == "image" and book.distribution == "uniform" and len(book) == 200
    # ViT's default normalisation (0.5, 0.5) maps U[0, 1) onto U[-1, 1), like the digits' pixels
    assert x.min() >= -1.0 and x.max() < 1.0
    assert x.min() < -0.99 and x.max() > 0.99
    assert abs(float(x.mean())) < 0.03
    assert book.metadata["input_shape"] == [1, 8, 8]
    assert book.metadata["image_mean"] == [0.5] and book.metadata["image_std"] == [0.5]


def test_image_codes_follow_image_processor_normalisation():
    from transformers import ViTImageProcessor

    model = vit(num_channels=3, image_size=4, patch_size=2)
    processor = ViTImageProcessor(image_mean=[0.2, 0.4, 0.6], image_std=[0.1, 0.2, 0.3])
    book = MnemonicCodebook.for_model(model, seed=0, codes_per_class=30, processing_class=processor)
    x = book.inputs["pixel_values"]
    assert x.shape == (300, 3, 4, 4)
    mean = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    std = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    pixels = x * std + mean  # back to the [0, 1) pixel scale, channel by channel
    assert pixels.min() >= -1e-5 and pixels.max() < 1 + 1e-5
    assert pixels.min() < 0.02 and pixels.max() > 0.98
    for c in range(3):
        assert abs(float(pixels[:, c].mean()) - 0.5) < 0.05
    assert book.metadata["image_mean"] == pytest.approx([0.2, 0.4, 0.6])
    assert book.metadata["image_std"] == pytest.approx([0.1, 0.2, 0.3])


def test_image_processor_without_normalisation_keeps_pixels_in_unit_range():
    from transformers import ViTImageProcessor

    # do_normalize=False: real inputs stay in [0, 1], so must the codes
    book = MnemonicCodebook.for_model(vit(), seed=0, processing_class=ViTImageProcessor(do_normalize=False))
    x = book.inputs["pixel_values"]
    assert x.min() >= 0.0 and x.max() < 1.0


def test_normal_distribution(tiny_vit_model):
    book = MnemonicCodebook.for_model(tiny_vit_model, seed=0, codes_per_class=20, distribution="normal")
    x = book.inputs["pixel_values"]
    assert book.distribution == "normal"
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1.0) < 0.05
    assert x.min() < -2.5 and x.max() > 2.5  # not a bounded uniform
    assert not book.equals(MnemonicCodebook.for_model(tiny_vit_model, seed=0, codes_per_class=20))


def test_text_codes_framed_by_special_tokens(tiny_bert, tiny_tokenizer):
    book = MnemonicCodebook.for_model(tiny_bert, seed=0, text_length=10, processing_class=tiny_tokenizer)
    ids = book.inputs["input_ids"]
    assert book.modality == "text"
    assert ids.shape == (3, 12) and ids.dtype == torch.long
    assert (ids[:, 0] == tiny_tokenizer.cls_token_id).all()
    assert (ids[:, -1] == tiny_tokenizer.sep_token_id).all()
    assert torch.equal(book.inputs["attention_mask"], torch.ones_like(ids))
    assert torch.equal(book.inputs["token_type_ids"], torch.zeros_like(ids))
    assert book.metadata["text_length"] == 10


def test_text_codes_hold_no_special_unused_or_pad_tokens(tiny_bert, tiny_tokenizer):
    book = MnemonicCodebook.for_model(
        tiny_bert, seed=0, text_length=40, codes_per_class=20, processing_class=tiny_tokenizer
    )
    body = book.inputs["input_ids"][:, 1:-1]
    forbidden = {TEXT_VOCAB.index(t) for t in SPECIAL_TOKENS}  # includes [PAD]=0 and the [unused*] tokens
    assert forbidden.isdisjoint(set(body.flatten().tolist()))
    assert int(body.max()) < len(TEXT_VOCAB)
    # drawn over the whole ordinary vocabulary
    assert len(set(body.flatten().tolist())) == len(TEXT_VOCAB) - len(SPECIAL_TOKENS)


def test_text_codes_without_tokenizer_still_avoid_pad(tiny_bert):
    book = MnemonicCodebook.for_model(tiny_bert, seed=0, text_length=50, codes_per_class=10)
    ids = book.inputs["input_ids"]
    assert ids.shape == (30, 50)  # no tokenizer: no special tokens to frame the codes with
    assert (ids != tiny_bert.config.pad_token_id).all()


def test_codes_per_class(tiny_vit_model):
    book = MnemonicCodebook.for_model(tiny_vit_model, seed=0, codes_per_class=3)
    assert len(book) == 30 and book.codes_per_class == 3
    assert book.class_ids.tolist() == [c for c in range(10) for _ in range(3)]
    x = book.inputs["pixel_values"]
    assert len({x[i].numpy().tobytes() for i in range(30)}) == 30  # all distinct
    # one of the class's own codes for every label
    labels = torch.tensor([4, 4, 4, 4, 4, 4, 0, 9])
    gen = torch.Generator().manual_seed(0)
    picked = book.codes_for_labels(labels, generator=gen)["pixel_values"]
    for row, label in zip(picked, labels.tolist()):
        own = book.as_inputs([label])["pixel_values"]
        assert any(torch.equal(row, code) for code in own)
    picked_4 = {picked[i].numpy().tobytes() for i in range(6)}
    assert len(picked_4) > 1  # several codes of class 4 get used


# ---------------------------------------------------------------- access


def test_as_inputs_selects_rows(tiny_vit_model):
    book = MnemonicCodebook.for_model(tiny_vit_model, seed=0, codes_per_class=2)
    x = book.inputs["pixel_values"]
    sel = book.as_inputs([7, 2])
    assert set(sel) == {"pixel_values"}
    assert torch.equal(sel["pixel_values"], x[[4, 5, 14, 15]])  # class-major rows, classes in sorted order
    with_labels = book.as_inputs([7, 2], with_labels=True)
    assert with_labels["labels"].tolist() == [2, 2, 7, 7]
    assert book.class_ids[[4, 5, 14, 15]].tolist() == [2, 2, 7, 7]  # the classes of the rows selected
    everything = book.as_inputs(with_labels=True)
    assert torch.equal(everything["pixel_values"], x) and everything["labels"].tolist() == book.class_ids.tolist()
    # a copy: editing it leaves the codebook alone
    sel["pixel_values"].zero_()
    assert torch.equal(book.inputs["pixel_values"], x) and x.abs().sum() > 0
    with pytest.raises(ValueError, match="class_ids"):
        book.as_inputs([10])


def test_as_inputs_feeds_the_model(tiny_bert, tiny_tokenizer):
    book = MnemonicCodebook.for_model(tiny_bert, seed=0, processing_class=tiny_tokenizer)
    out = tiny_bert(**book.as_inputs(with_labels=True))
    assert out.logits.shape == (3, 3) and torch.isfinite(out.loss)


# ---------------------------------------------------------------- persistence


def test_save_and_load_bit_exact(tmp_path, tiny_vit_model):
    book = MnemonicCodebook.for_model(tiny_vit_model, seed=11, codes_per_class=2, distribution="normal")
    book.save_pretrained(tmp_path / "codes")
    assert MnemonicCodebook.exists(tmp_path / "codes")
    assert (tmp_path / "codes" / CODES_FILE).is_file() and (tmp_path / "codes" / CODES_CONFIG_FILE).is_file()
    loaded = MnemonicCodebook.from_pretrained(tmp_path / "codes")
    assert loaded.equals(book)
    assert loaded.inputs["pixel_values"].numpy().tobytes() == book.inputs["pixel_values"].numpy().tobytes()
    assert loaded.inputs["pixel_values"].dtype == book.inputs["pixel_values"].dtype
    assert (loaded.seed, loaded.distribution, loaded.codes_per_class, loaded.modality) == (11, "normal", 2, "image")
    assert loaded.id2label == book.id2label == {i: str(i) for i in range(10)}
    assert loaded.metadata == book.metadata
    assert loaded.fingerprint() == book.fingerprint()


def test_saved_json_records_how_the_codes_were_made(tmp_path):
    id2label = {i: f"digit-{i}" for i in range(10)}
    book = MnemonicCodebook.for_model(vit(id2label=id2label), seed=3)
    book.save_pretrained(tmp_path)
    record = json.loads((tmp_path / CODES_CONFIG_FILE).read_text())
    assert record["seed"] == 3
    assert record["modality"] == "image" and record["distribution"] == "uniform"
    assert record["codes_per_class"] == 1
    assert record["shapes"] == {"pixel_values": [10, 1, 8, 8]}
    assert record["class_ids"] == list(range(10))
    assert record["id2label"] == {str(i): f"digit-{i}" for i in range(10)}
    assert record["hf_unlearn_version"] == hf_unlearn.__version__
    assert record["metadata"]["num_labels"] == 10 and record["metadata"]["model_type"] == "vit"
    assert record["fingerprint"] == book.fingerprint()


def test_text_codebook_round_trip(tmp_path, tiny_bert, tiny_tokenizer):
    book = MnemonicCodebook.for_model(tiny_bert, seed=4, text_length=5, processing_class=tiny_tokenizer)
    book.save_pretrained(tmp_path)
    loaded = MnemonicCodebook.from_pretrained(tmp_path)
    assert loaded.equals(book) and set(loaded.inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert loaded.inputs["input_ids"].dtype == torch.long
    record = json.loads((tmp_path / CODES_CONFIG_FILE).read_text())
    assert record["shapes"]["input_ids"] == [3, 7]


def test_load_errors(tmp_path, tiny_vit_model):
    with pytest.raises(FileNotFoundError, match="mnemonic"):
        MnemonicCodebook.from_pretrained(tmp_path / "nothing")
    MnemonicCodebook.for_model(tiny_vit_model, seed=0).save_pretrained(tmp_path)
    record = json.loads((tmp_path / CODES_CONFIG_FILE).read_text())
    record["fingerprint"] = "0" * 64
    (tmp_path / CODES_CONFIG_FILE).write_text(json.dumps(record))
    with pytest.raises(ValueError, match="fingerprint"):
        MnemonicCodebook.from_pretrained(tmp_path)


# ---------------------------------------------------------------- compatibility and bad arguments


def test_check_compatible_accepts_own_model(tiny_vit_model, tiny_bert, tiny_tokenizer):
    MnemonicCodebook.for_model(tiny_vit_model).check_compatible(tiny_vit_model)
    MnemonicCodebook.for_model(tiny_bert, processing_class=tiny_tokenizer).check_compatible(tiny_bert)


def test_check_compatible_wrong_num_labels(tiny_vit_model):
    book = MnemonicCodebook.for_model(vit(num_labels=5))
    with pytest.raises(ValueError, match="`codebook`.*classes"):
        book.check_compatible(tiny_vit_model)
    with pytest.raises(ValueError, match="`my_codes`"):
        book.check_compatible(tiny_vit_model, argument="my_codes")


def test_check_compatible_wrong_shape(tiny_vit_model):
    for other in (vit(image_size=16), vit(num_channels=3)):
        with pytest.raises(ValueError, match="`codebook`.*shape"):
            MnemonicCodebook.for_model(other).check_compatible(tiny_vit_model)


def test_check_compatible_wrong_vocab(tiny_bert):
    book = MnemonicCodebook.for_model(make_tiny_bert(vocab_size=1000), seed=0)
    assert int(book.inputs["input_ids"].max()) >= tiny_bert.config.vocab_size
    with pytest.raises(ValueError, match="`codebook`.*vocabulary"):
        book.check_compatible(tiny_bert)


def test_check_compatible_wrong_modality(tiny_vit_model, tiny_bert):
    with pytest.raises(ValueError, match="`codebook`.*image"):
        MnemonicCodebook.for_model(vit(num_labels=3)).check_compatible(tiny_bert)
    with pytest.raises(ValueError, match="`codebook`.*text"):
        MnemonicCodebook.for_model(make_tiny_bert(num_labels=10)).check_compatible(tiny_vit_model)


@pytest.mark.parametrize("distribution", ["gaussian", "Uniform", ""])
def test_bad_distribution(tiny_vit_model, distribution):
    with pytest.raises(ValueError, match="`distribution`"):
        MnemonicCodebook.for_model(tiny_vit_model, distribution=distribution)


@pytest.mark.parametrize("codes_per_class", [0, -1])
def test_bad_codes_per_class(tiny_vit_model, codes_per_class):
    with pytest.raises(ValueError, match="`codes_per_class`"):
        MnemonicCodebook.for_model(tiny_vit_model, codes_per_class=codes_per_class)


def test_bad_text_length(tiny_bert, tiny_tokenizer):
    with pytest.raises(ValueError, match="`text_length`"):
        MnemonicCodebook.for_model(tiny_bert, text_length=0)
    max_pos = tiny_bert.config.max_position_embeddings
    # [CLS] + text_length + [SEP] must fit the position embeddings
    book = MnemonicCodebook.for_model(tiny_bert, text_length=max_pos - 2, processing_class=tiny_tokenizer)
    assert book.inputs["input_ids"].shape[1] == max_pos
    with pytest.raises(ValueError, match="`text_length`.*positions"):
        MnemonicCodebook.for_model(tiny_bert, text_length=max_pos - 1, processing_class=tiny_tokenizer)


class PlainNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x)


class AudioLike(PlainNet):
    """A classifier whose main input is neither pixel_values nor input_ids (like Wav2Vec2's input_values)."""

    main_input_name = "input_values"

    def __init__(self):
        super().__init__()
        from transformers import PretrainedConfig

        self.config = PretrainedConfig(num_labels=3)

    def forward(self, input_values=None, labels=None):
        return self.linear(input_values)


@pytest.mark.parametrize("model_cls", [PlainNet, AudioLike])
def test_model_without_known_modality(model_cls):
    with pytest.raises(ValueError, match="`model`"):
        MnemonicCodebook.for_model(model_cls())


def test_not_a_classifier():
    with pytest.raises(ValueError, match="`model`.*num_labels"):
        MnemonicCodebook.for_model(vit(num_labels=1))


def test_constructor_validates_inputs():
    with pytest.raises(ValueError, match="`modality`"):
        MnemonicCodebook(inputs={"pixel_values": torch.zeros(2, 1, 2, 2)}, class_ids=[0, 1], modality="audio")
    with pytest.raises(ValueError, match="rows"):
        MnemonicCodebook(inputs={"pixel_values": torch.zeros(3, 1, 2, 2)}, class_ids=[0, 1], modality="image")
    with pytest.raises(ValueError, match="NaN"):
        MnemonicCodebook(
            inputs={"pixel_values": torch.full((2, 1, 2, 2), math.nan)}, class_ids=[0, 1], modality="image"
        )
    with pytest.raises(ValueError, match="`class_ids`"):
        MnemonicCodebook(inputs={"pixel_values": torch.zeros(0, 1, 2, 2)}, class_ids=[], modality="image")


def test_fingerprint_float32_bytes_and_bfloat16(tiny_vit_model):
    import dataclasses
    import hashlib

    book = MnemonicCodebook.for_model(tiny_vit_model, seed=0, codes_per_class=2)
    h = hashlib.sha256()  # the float32 fingerprint: sha256 of the names, the raw float32 bytes and the class ids
    for k in sorted(book.inputs):
        h.update(k.encode())
        h.update(book.inputs[k].contiguous().numpy().tobytes())
    h.update(book.class_ids.numpy().tobytes())
    assert book.fingerprint() == h.hexdigest()
    half = dataclasses.replace(book, inputs={k: v.to(torch.bfloat16) for k, v in book.inputs.items()})
    fp = half.fingerprint()  # numpy has no bfloat16: this used to raise
    assert len(fp) == 64 and fp != book.fingerprint()
    widened = dataclasses.replace(book, inputs={k: v.to(torch.bfloat16).float() for k, v in book.inputs.items()})
    assert fp == widened.fingerprint()


def test_config_without_image_size_takes_an_explicit_input_shape():
    from hf_unlearn.testing_utils import tiny_classifier

    resnet = tiny_classifier("resnet", num_labels=10)
    assert getattr(resnet.config, "image_size", None) is None
    with pytest.raises(ValueError, match="`input_shape` is needed"):
        MnemonicCodebook.for_model(resnet)
    book = MnemonicCodebook.for_model(resnet, input_shape=(1, 8, 8))
    assert book.inputs["pixel_values"].shape == (10, 1, 8, 8)
    assert book.metadata["input_shape"] == [1, 8, 8]
    book.check_compatible(resnet)  # no image_size: the stored input shape is the expected one
    with torch.no_grad():
        assert resnet(**book.as_inputs()).logits.shape == (10, 10)
    for bad in [(1, 8), (0, 8, 8), (1.0, 8, 8), (True, 8, 8)]:
        with pytest.raises(ValueError, match="`input_shape` must be three positive ints"):
            MnemonicCodebook.for_model(resnet, input_shape=bad)


def test_explicit_input_shape_must_agree_with_the_config(tiny_vit_model):
    with pytest.raises(ValueError, match="`input_shape` .* disagrees"):
        MnemonicCodebook.for_model(tiny_vit_model, input_shape=(1, 16, 16))
    assert MnemonicCodebook.for_model(tiny_vit_model, input_shape=(1, 8, 8)).equals(
        MnemonicCodebook.for_model(tiny_vit_model)
    )
