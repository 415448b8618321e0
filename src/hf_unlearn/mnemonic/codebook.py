"""MnemonicCodebook: fixed, seeded, class-specific random inputs (mnemonic codes, arXiv 2306.05670).

Image models get one random image per code, drawn on the CPU from a seeded generator and brought to the scale of
the real, normalised inputs: ``distribution="uniform"`` draws U[0, 1) pixels (as the authors' code does) and then
applies the image processor's normalisation ``(u - image_mean) / image_std`` (ViT's default 0.5/0.5 gives
U[-1, 1)); ``"normal"`` draws N(0, 1) (as the paper says), which already matches normalised pixels.

Text models get a fixed random token sequence per code, framed by the tokenizer's special tokens
(``[CLS] t_1 ... t_L [SEP]`` for BERT). Tokens are drawn uniformly from the ordinary vocabulary (special and
``[unused]`` tokens excluded). Why token ids and not random vectors in embedding space: the codes then go through
the model's unmodified forward, tokenizer conventions and embedding matrix like any real text, they are integers
(bit-exact everywhere), and they survive a change of dtype or device without drift.

Codes depend only on the seed and the model's input shape, so every process and machine that builds them with the
same seed holds the same codes; they are also saved beside the model (safetensors + JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..data_utils import forward_input_names
from ..utils import (
    IMAGE,
    TEXT,
    detect_modality,
    id2label_of,
    image_shape,
    library_versions,
    num_labels_of,
    unwrap_model,
)

CODES_FILE = "mnemonic_codes.safetensors"
CODES_CONFIG_FILE = "mnemonic_codebook.json"
DISTRIBUTIONS = ("uniform", "normal")


def _special_and_unused_ids(tokenizer: Any, vocab_size: int) -> set[int]:
    ids: set[int] = set()
    if tokenizer is None:
        return ids
    ids.update(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []) if i is not None)
    try:
        vocab = tokenizer.get_vocab()
    except Exception:  # tokenizers without a vocab dict: keep only the declared specials out
        vocab = {}
    for tok, i in vocab.items():
        if i < vocab_size and tok.startswith("[") and tok.endswith("]"):
            ids.add(int(i))
    return ids


@dataclass
class MnemonicCodebook:
    """One or more fixed random inputs per class, stored with the model.

    Build one with [`MnemonicCodebook.for_model`], save it with [`save_pretrained`], load it back with
    [`from_pretrained`]. ``inputs`` holds model-ready tensors with all codes stacked on the first dimension and
    ``class_ids`` (same length) their labels.

    Args:
        inputs: model inputs for the codes, e.g. ``{"pixel_values": (N, C, H, W)}`` or
            ``{"input_ids": (N, L), "attention_mask": (N, L)}``.
        class_ids: ``(N,)`` long tensor with the class of each code.
        modality: ``"image"`` or ``"text"``.
        seed: the seed the codes were drawn from.
        distribution: ``"uniform"`` or ``"normal"`` (images; text codes are uniform over tokens).
        codes_per_class: codes per class.
        id2label: label names of the model the codes were made for.
        metadata: anything else worth recording (input shape, normalisation, model type, library version).
    """

    inputs: dict[str, torch.Tensor]
    class_ids: torch.Tensor
    modality: str
    seed: int = 0
    distribution: str = "uniform"
    codes_per_class: int = 1
    id2label: dict[int, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.modality not in (IMAGE, TEXT):
            raise ValueError(f"`modality` must be 'image' or 'text', got {self.modality!r}.")
        self.class_ids = torch.as_tensor(self.class_ids, dtype=torch.long)
        n = self.class_ids.shape[0]
        if n == 0:
            raise ValueError("`class_ids` is empty: a codebook needs at least one code.")
        for k, v in self.inputs.items():
            if v.shape[0] != n:
                raise ValueError(f"`inputs[{k!r}]` has {v.shape[0]} rows but `class_ids` has {n}.")
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise ValueError(f"`inputs[{k!r}]` holds NaN or inf.")
        self.id2label = {int(k): str(v) for k, v in self.id2label.items()}

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        *,
        seed: int = 0,
        codes_per_class: int = 1,
        distribution: str = "uniform",
        text_length: int = 16,
        processing_class: Any = None,
        input_shape: Iterable[int] | None = None,
    ) -> MnemonicCodebook:
        """Draws the codes for ``model`` (its ``config.num_labels`` classes, its input shape).

        Args:
            model: a transformers classifier with ``pixel_values`` or ``input_ids`` as main input.
            seed: seed of the generator; the same seed gives the same codes on every process and machine.
            codes_per_class: how many codes each class gets.
            distribution: ``"uniform"`` (U[0,1) pixels then the image processor's normalisation) or ``"normal"``
                (N(0,1) pixels). Ignored for text.
            text_length: random tokens per text code (special tokens are added around them).
            processing_class: image processor (for ``image_mean``/``image_std``) or tokenizer (for special tokens);
                optional.
            input_shape: ``(channels, height, width)`` of the image codes; needed when ``model.config`` has no
                ``image_size`` (ResNet): take the shape of a training example's ``pixel_values``. When the config has
                an ``image_size`` it must agree. Ignored for text.
        """
        if codes_per_class < 1:
            raise ValueError(f"`codes_per_class` must be >= 1, got {codes_per_class}.")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"`distribution` must be one of {DISTRIBUTIONS}, got {distribution!r}.")
        modality = detect_modality(model)
        num_labels = num_labels_of(model)
        config = unwrap_model(model).config
        n = num_labels * codes_per_class
        class_ids = torch.arange(num_labels).repeat_interleave(codes_per_class)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        metadata: dict[str, Any] = {"model_type": getattr(config, "model_type", None), "num_labels": num_labels}
        if modality == IMAGE:
            channels, h, w = _input_shape(config, input_shape)
            if distribution == "uniform":
                x = torch.rand((n, channels, h, w), generator=gen)
                mean, std = _normalisation(processing_class, channels)
                x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
                metadata.update(image_mean=mean.tolist(), image_std=std.tolist())
            else:
                x = torch.randn((n, channels, h, w), generator=gen)
            inputs = {"pixel_values": x.contiguous()}
            metadata["input_shape"] = [channels, h, w]
        else:
            if text_length < 1:
                raise ValueError(f"`text_length` must be >= 1, got {text_length}.")
            vocab_size = int(config.vocab_size)
            excluded = _special_and_unused_ids(processing_class, vocab_size)
            pad_id = getattr(config, "pad_token_id", None)
            if pad_id is not None:
                excluded.add(int(pad_id))
            allowed = torch.tensor([i for i in range(vocab_size) if i not in excluded], dtype=torch.long)
            if allowed.numel() == 0:
                raise ValueError("`processing_class` leaves no ordinary tokens to draw text codes from.")
            body = allowed[torch.randint(0, allowed.numel(), (n, text_length), generator=gen)]
            cls_id = _token_id(processing_class, ("cls_token_id", "bos_token_id"))
            sep_id = _token_id(processing_class, ("sep_token_id", "eos_token_id"))
            parts = []
            if cls_id is not None:
                parts.append(torch.full((n, 1), cls_id, dtype=torch.long))
            parts.append(body)
            if sep_id is not None:
                parts.append(torch.full((n, 1), sep_id, dtype=torch.long))
            ids = torch.cat(parts, dim=1)
            max_pos = getattr(config, "max_position_embeddings", None)
            if max_pos is not None and ids.shape[1] > max_pos:
                raise ValueError(f"`text_length` {text_length} is longer than the model's {max_pos} positions.")
            inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            if "token_type_ids" in forward_input_names(model):
                inputs["token_type_ids"] = torch.zeros_like(ids)
            metadata.update(text_length=text_length, cls_token_id=cls_id, sep_token_id=sep_id, vocab_size=vocab_size)
            distribution = "uniform"
        return cls(
            inputs=inputs,
            class_ids=class_ids,
            modality=modality,
            seed=int(seed),
            distribution=distribution,
            codes_per_class=codes_per_class,
            id2label=id2label_of(model),
            metadata=metadata,
        )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self.class_ids.shape[0])

    def as_inputs(
        self, class_ids: Iterable[int] | None = None, *, with_labels: bool = False
    ) -> dict[str, torch.Tensor]:
        """Model-ready inputs for the codes of ``class_ids`` (all codes when ``None``), batch first.

        With ``with_labels=True`` the dict also holds ``labels`` (the codes' classes), ready for ``model(**inputs)``.
        """
        if class_ids is None:
            idx = torch.arange(len(self))
        else:
            wanted = torch.as_tensor(sorted({int(c) for c in class_ids}), dtype=torch.long)
            unknown = set(wanted.tolist()) - set(self.class_ids.tolist())
            if unknown:
                raise ValueError(f"`class_ids` {sorted(unknown)} have no code in this codebook.")
            idx = torch.nonzero(torch.isin(self.class_ids, wanted)).flatten()
        out = {k: v[idx].clone() for k, v in self.inputs.items()}
        if with_labels:
            out["labels"] = self.class_ids[idx].clone()
        return out

    def codes_for_labels(
        self, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """One code per entry of ``labels`` (a random one of the class's codes when there are several)."""
        labels = labels.to("cpu", torch.long)
        pick = torch.zeros_like(labels)
        if self.codes_per_class > 1:
            pick = torch.randint(0, self.codes_per_class, labels.shape, generator=generator)
        # codes are stored class-major: row = class * codes_per_class + k
        rows = labels * self.codes_per_class + pick
        return {k: v[rows] for k, v in self.inputs.items()}

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for k in sorted(self.inputs):
            h.update(k.encode())
            t = self.inputs[k].detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the (exact) float32 values
                t = t.float()
            h.update(t.numpy().tobytes())
        h.update(self.class_ids.numpy().tobytes())
        return h.hexdigest()

    def equals(self, other: MnemonicCodebook) -> bool:
        return (
            set(self.inputs) == set(other.inputs)
            and all(torch.equal(self.inputs[k], other.inputs[k]) for k in self.inputs)
            and torch.equal(self.class_ids, other.class_ids)
        )

    # ------------------------------------------------------------------ checks
    def check_compatible(self, model: nn.Module, argument: str = "codebook") -> None:
        """Raises ``ValueError`` naming ``argument`` if the codes cannot be fed to ``model`` as its classes."""
        modality = detect_modality(model)
        if modality != self.modality:
            raise ValueError(f"`{argument}` holds {self.modality} codes but the model takes {modality} inputs.")
        num_labels = num_labels_of(model)
        if set(self.class_ids.tolist()) != set(range(num_labels)):
            raise ValueError(
                f"`{argument}` has codes for classes {sorted(set(self.class_ids.tolist()))} but the model has "
                f"{num_labels} classes; build the codebook for this model (MnemonicCodebook.for_model)."
            )
        config = unwrap_model(model).config
        if modality == IMAGE:
            x = self.inputs["pixel_values"]
            # a config without image_size (ResNet) takes the shape the codes were drawn for
            expected = image_shape(config, default=self.metadata.get("input_shape") or tuple(x.shape[1:]))
            if tuple(x.shape[1:]) != expected:
                raise ValueError(
                    f"`{argument}` holds codes of shape {tuple(x.shape[1:])} but the model expects {expected}."
                )
        else:
            ids = self.inputs["input_ids"]
            if int(ids.max()) >= int(config.vocab_size):
                raise ValueError(
                    f"`{argument}` uses token id {int(ids.max())} beyond the model's vocabulary ({config.vocab_size})."
                )

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Writes ``mnemonic_codes.safetensors`` and ``mnemonic_codebook.json`` into ``save_directory``."""
        os.makedirs(save_directory, exist_ok=True)
        tensors = {f"inputs.{k}": v.contiguous() for k, v in self.inputs.items()}
        tensors["class_ids"] = self.class_ids.contiguous()
        save_file(tensors, os.path.join(save_directory, CODES_FILE), metadata={"format": "pt"})
        record = {
            "modality": self.modality,
            "seed": self.seed,
            "distribution": self.distribution,
            "codes_per_class": self.codes_per_class,
            "class_ids": self.class_ids.tolist(),
            "id2label": {str(k): v for k, v in sorted(self.id2label.items())},
            "shapes": {k: list(v.shape) for k, v in self.inputs.items()},
            "metadata": self.metadata,
            "fingerprint": self.fingerprint(),
            "hf_unlearn_version": library_versions()["hf_unlearn"],
        }
        with open(os.path.join(save_directory, CODES_CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, sort_keys=True)
            f.write("\n")

    @classmethod
    def from_pretrained(cls, pretrained_directory: str | os.PathLike) -> MnemonicCodebook:
        """Loads a codebook written by [`save_pretrained`]."""
        cfg_path = os.path.join(pretrained_directory, CODES_CONFIG_FILE)
        codes_path = os.path.join(pretrained_directory, CODES_FILE)
        if not (os.path.isfile(cfg_path) and os.path.isfile(codes_path)):
            raise FileNotFoundError(
                f"`pretrained_directory` {str(pretrained_directory)!r} holds no mnemonic codebook "
                f"({CODES_FILE} + {CODES_CONFIG_FILE}); was the model trained with MnemonicTrainer?"
            )
        try:
            with open(cfg_path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError) as e:  # ValueError: broken JSON or encoding
            raise ValueError(f"{CODES_CONFIG_FILE} in {str(pretrained_directory)!r} could not be read ({e}).") from e
        try:
            tensors = load_file(codes_path)
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error type on a truncated file
            raise ValueError(f"{CODES_FILE} in {str(pretrained_directory)!r} could not be read ({e}).") from e
        inputs = {k[len("inputs.") :]: v for k, v in tensors.items() if k.startswith("inputs.")}
        try:
            book = cls(
                inputs=inputs,
                class_ids=tensors["class_ids"],
                modality=record["modality"],
                seed=record["seed"],
                distribution=record["distribution"],
                codes_per_class=record["codes_per_class"],
                id2label={int(k): v for k, v in record.get("id2label", {}).items()},
                metadata=record.get("metadata", {}),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(
                f"The codebook in {str(pretrained_directory)!r} lacks {e} ({CODES_FILE} / {CODES_CONFIG_FILE} are "
                "incomplete or from another tool)."
            ) from e
        if record.get("fingerprint") and record["fingerprint"] != book.fingerprint():
            raise ValueError(f"The codebook in {str(pretrained_directory)!r} does not match its recorded fingerprint.")
        return book

    @staticmethod
    def exists(directory: str | os.PathLike) -> bool:
        return os.path.isfile(os.path.join(directory, CODES_FILE)) and os.path.isfile(
            os.path.join(directory, CODES_CONFIG_FILE)
        )


def _input_shape(config: Any, input_shape: Iterable[int] | None) -> tuple[int, int, int]:
    if input_shape is None:
        if getattr(config, "image_size", None) is None:
            raise ValueError(
                "`input_shape` is needed: `model.config` has no `image_size` (e.g. ResNet); give the "
                "(channels, height, width) of a training example's pixel_values."
            )
        return image_shape(config)
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(hasattr(v, "__index__") and not isinstance(v, bool) and v > 0 for v in shape):
        raise ValueError(f"`input_shape` must be three positive ints (channels, height, width), got {shape!r}.")
    shape = tuple(int(v) for v in shape)
    if getattr(config, "image_size", None) is not None and image_shape(config) != shape:
        raise ValueError(
            f"`input_shape` {shape} disagrees with the model's config, which expects {image_shape(config)}."
        )
    return shape  # type: ignore[return-value]


def _normalisation(processing_class: Any, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean = getattr(processing_class, "image_mean", None)
    std = getattr(processing_class, "image_std", None)
    if processing_class is not None and not getattr(processing_class, "do_normalize", True):
        mean, std = [0.0] * channels, [1.0] * channels  # the processor leaves pixels in [0, 1]: so do the codes
    elif processing_class is None or mean is None or std is None:
        mean, std = [0.5] * channels, [0.5] * channels  # ViTImageProcessor's default
    mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
    std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
    if mean_t.numel() == 1:
        mean_t = mean_t.repeat(channels)
    if std_t.numel() == 1:
        std_t = std_t.repeat(channels)
    return mean_t, std_t


def _token_id(tokenizer: Any, names: tuple[str, ...]) -> int | None:
    for name in names:
        v = getattr(tokenizer, name, None)
        if v is not None:
            return int(v)
    return None
