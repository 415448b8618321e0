"""Where a model comes from: the pretrained checkpoint its training started from, as a Hub id.

``MnemonicTrainer`` records the starting checkpoint in the codebook's metadata (``metadata["base_model"]``), saved
beside the codes; forgetting carries it into ``unlearning_report.json`` (``details["lineage"]``) and the model card
names it as ``base_model``. Only a Hub id is ever recorded: a local folder is traced back to the Hub id it was
downloaded as (a ``huggingface_hub`` cache snapshot) or to the lineage recorded inside it, and is otherwise left out.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .card import is_hub_id

BASE_MODEL_KEY = "base_model"
# A snapshot folder of the huggingface_hub cache: .../models--<namespace>--<name>/snapshots/<revision>
_CACHE_SNAPSHOT = re.compile(r"(?:^|[/\\])models--(?P<repo>[^/\\]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$")


def hub_id_of(name: str | os.PathLike | None) -> str | None:
    """``name`` when it is a Hub id; the repository id of a ``huggingface_hub`` cache snapshot folder; else None."""
    if not name:
        return None
    s = str(name)
    if is_hub_id(s):
        return s
    match = _CACHE_SNAPSHOT.search(s)
    if match:
        repo = match.group("repo").replace("--", "/")
        return repo if is_hub_id(repo) else None
    return None


def recorded_base_model(folder: str | os.PathLike | None) -> str | None:
    """The pretrained base recorded inside a local model ``folder`` by hf_unlearn (its codebook, then its
    ``unlearning_report.json``), or None."""
    if not folder or not os.path.isdir(str(folder)):
        return None
    from ..mnemonic.codebook import CODES_CONFIG_FILE
    from ..report import REPORT_FILE

    readers = (
        (CODES_CONFIG_FILE, lambda d: (d.get("metadata") or {}).get(BASE_MODEL_KEY)),
        (REPORT_FILE, lambda d: ((d.get("details") or {}).get("lineage") or {}).get(BASE_MODEL_KEY)),
    )
    for file, read in readers:
        path = os.path.join(str(folder), file)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                value = read(json.load(f))
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, str) and is_hub_id(value):
            return value
    return None


def _name_of(model: Any) -> str | None:
    model = getattr(model, "get_base_model", lambda: model)()  # a PEFT model: the model it wraps
    for name in (getattr(model, "name_or_path", None), getattr(getattr(model, "config", None), "_name_or_path", None)):
        if name:
            return str(name)
    return None


def starting_checkpoint(model: Any, base_model: str | None = None) -> str | None:
    """The Hub id of the pretrained checkpoint ``model`` starts from, or None when it cannot be told.

    ``base_model`` (given explicitly) wins; else ``model.name_or_path`` / ``config._name_or_path`` when it is a Hub id
    or a ``huggingface_hub`` cache snapshot; else the base model recorded inside that local folder by hf_unlearn.
    """
    if base_model:
        return str(base_model)
    name = _name_of(model)
    return hub_id_of(name) or recorded_base_model(name)


def check_base_model(base_model: Any, argument: str = "base_model") -> None:
    """Refuses a ``base_model`` that is not a Hub model id (a local path would be published on the card)."""
    if base_model is None:
        return
    if not isinstance(base_model, str) or not is_hub_id(base_model):
        raise ValueError(
            f"`{argument}` must be the Hub id of the pretrained checkpoint training starts from (e.g. "
            f"'google/vit-base-patch16-224-in21k'), got {base_model!r}: a local path is never published."
        )


def lineage_of(model: Any, codebook: Any = None) -> dict[str, str]:
    """``{"base_model": hub id}`` for a model about to be edited: from its codebook's metadata, else from the folder
    it was loaded from; ``{}`` when unknown or when that base is the model itself."""
    base = None
    metadata = getattr(codebook, "metadata", None)
    if isinstance(metadata, dict) and is_hub_id(metadata.get(BASE_MODEL_KEY) or ""):
        base = metadata[BASE_MODEL_KEY]
    name = _name_of(model)
    base = base or recorded_base_model(name)
    if not base or base == name:
        return {}
    return {BASE_MODEL_KEY: base}


# Files that say a folder holds an image processor or a tokenizer (what ``from_pretrained`` reads).
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.txt")


def source_processing_class(model: Any) -> Any:
    """The image processor or tokenizer saved in the local folder ``model`` was loaded from (``name_or_path`` /
    ``config._name_or_path``), or None when that is no local folder or holds none. Nothing is downloaded."""
    folder = _name_of(model)
    if not folder or not os.path.isdir(folder):
        return None
    files = set(os.listdir(folder))
    if files.intersection(_PROCESSOR_FILES) and getattr(model, "main_input_name", None) == "pixel_values":
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    if files.intersection(_TOKENIZER_FILES):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return None
