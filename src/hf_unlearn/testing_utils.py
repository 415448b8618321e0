"""Tiny classifiers of every architecture family people fine-tune, built from their configs (random weights,
nothing downloaded), for tests and benchmarks.

``tiny_classifier(family, num_labels=...)`` returns a ``*ForImageClassification`` (1-channel 8x8 images, the digits)
or a ``*ForSequenceClassification`` (a small vocabulary) of the named family. ``VISION_FAMILIES`` and
``TEXT_FAMILIES`` list what it builds: the sixteen families of ``docs`` / REFERENCE §8 (pre-norm and post-norm
encoders, hierarchical windows, CNNs, a hybrid).
"""

from __future__ import annotations

from typing import Any

VISION_FAMILIES = ("vit", "deit", "beit", "dinov2", "swin", "mobilevit", "convnext", "resnet")
TEXT_FAMILIES = ("bert", "roberta", "xlm-roberta", "electra", "distilbert", "albert", "modernbert", "deberta-v2")
FAMILIES = VISION_FAMILIES + TEXT_FAMILIES


def _vision_config(family: str, image_size: int, num_channels: int, hidden: int, layers: int, heads: int) -> Any:
    import transformers as tf

    half = hidden // 2
    image = dict(image_size=image_size, patch_size=2, num_channels=num_channels)
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    encoder = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, **no_dropout)
    vit_like = dict(image, intermediate_size=2 * hidden, **encoder)
    # family: (config class, keyword arguments)
    table = {
        "vit": ("ViTConfig", vit_like),
        "deit": ("DeiTConfig", vit_like),
        "beit": ("BeitConfig", dict(vit_like, use_relative_position_bias=True, use_mean_pooling=True)),
        "dinov2": ("Dinov2Config", dict(image, **encoder, mlp_ratio=2, layerscale_value=1.0)),
        "swin": (
            "SwinConfig",
            dict(image, embed_dim=half, depths=[1, 1], num_heads=[max(1, heads // 2), heads], window_size=2)
            | dict(mlp_ratio=2.0, drop_path_rate=0.0, **no_dropout),
        ),
        "mobilevit": (
            "MobileViTConfig",
            dict(image, hidden_sizes=[half, half, hidden], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 48])
            | dict(num_attention_heads=heads, mlp_ratio=2.0, classifier_dropout_prob=0.0, output_stride=32)
            | no_dropout,
        ),
        "convnext": (
            "ConvNextConfig",
            dict(image, hidden_sizes=[half, hidden], depths=[1, 1], num_stages=2, layer_scale_init_value=1.0)
            | dict(drop_path_rate=0.0),
        ),
        "resnet": (
            "ResNetConfig",
            dict(num_channels=num_channels, embedding_size=half, hidden_sizes=[half, hidden], depths=[1, 1])
            | dict(layer_type="basic", downsample_in_first_stage=False),
        ),
    }
    name, kwargs = table[family]
    return getattr(tf, name)(**kwargs)


def _text_config(family: str, vocab_size: int, hidden: int, layers: int, heads: int, pad_token_id: int) -> Any:
    import transformers as tf

    common = dict(vocab_size=vocab_size, max_position_embeddings=128, pad_token_id=pad_token_id)
    bert_like = dict(
        common,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    # family: (config class, keyword arguments)
    table = {
        "bert": ("BertConfig", bert_like),
        "roberta": ("RobertaConfig", bert_like),
        "xlm-roberta": ("XLMRobertaConfig", bert_like),
        "electra": ("ElectraConfig", dict(bert_like, embedding_size=hidden)),
        "albert": ("AlbertConfig", dict(bert_like, embedding_size=hidden, classifier_dropout_prob=0.0)),
        "deberta-v2": (
            "DebertaV2Config",
            dict(bert_like, relative_attention=True, pos_att_type=["p2c", "c2p"], max_relative_positions=-1),
        ),
        "distilbert": (
            "DistilBertConfig",
            dict(common, dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=2 * hidden)
            | dict(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0),
        ),
        "modernbert": (
            "ModernBertConfig",
            dict(common, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads)
            | dict(intermediate_size=2 * hidden, global_attn_every_n_layers=1, local_attention=16)
            | dict(bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3, classifier_pooling="cls")
            | dict(attention_dropout=0.0, embedding_dropout=0.0, mlp_dropout=0.0, classifier_dropout=0.0),
        ),
    }
    name, kwargs = table[family]
    return getattr(tf, name)(**kwargs)


def tiny_classifier(
    family: str,
    num_labels: int = 10,
    *,
    id2label: dict[int, str] | None = None,
    image_size: int = 8,
    num_channels: int = 1,
    vocab_size: int = 128,
    pad_token_id: int = 0,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    seed: int = 0,
) -> Any:
    """A freshly initialised classifier of ``family`` (one of ``FAMILIES``) with ``num_labels`` outputs.

    Vision families take ``pixel_values`` of shape ``(B, num_channels, image_size, image_size)``; text families take
    ``input_ids`` / ``attention_mask`` over ``vocab_size`` tokens (``pad_token_id`` pads).
    """
    import torch
    import transformers as tf

    id2label = id2label or {i: str(i) for i in range(num_labels)}
    labels = dict(num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    if family in VISION_FAMILIES:
        config = _vision_config(family, image_size, num_channels, hidden_size, num_hidden_layers, num_attention_heads)
        auto = tf.AutoModelForImageClassification
    elif family in TEXT_FAMILIES:
        config = _text_config(family, vocab_size, hidden_size, num_hidden_layers, num_attention_heads, pad_token_id)
        auto = tf.AutoModelForSequenceClassification
    else:
        raise ValueError(f"`family` must be one of {FAMILIES}, got {family!r}")
    for k, v in labels.items():
        setattr(config, k, v)
    torch.manual_seed(seed)
    if family == "deit":  # the auto class would pick the distillation-token teacher variant, which has no loss
        return tf.DeiTForImageClassification(config)
    return auto.from_config(config)
