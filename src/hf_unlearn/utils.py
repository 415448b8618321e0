"""Small helpers shared across hf_unlearn: input modality, class ids, image size, versions, Hub ids, formatting."""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - torch is imported by the functions that need it (the CLI's --help does not)
    import torch
    from torch import nn

IMAGE = "image"
TEXT = "text"
# A Hub repository id: ``name`` or ``namespace/name`` (letters, digits, ``-``, ``_``, ``.``).
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strips DDP / FSDP / DeepSpeed / torch.compile wrappers so names and parameters are the model's own.

    Accelerate's ``extract_model_from_parallel`` does the work; it is applied until nothing changes because it strips
    a compile wrapper only outside the parallel one (``DDP(torch.compile(m))`` needs a second pass).
    """
    from accelerate.utils import extract_model_from_parallel
    from torch import nn

    if not isinstance(model, nn.Module):  # callers check the type and name the argument in their own error
        return model
    while True:
        inner = extract_model_from_parallel(model, keep_torch_compile=False)
        if inner is model:
            return model
        model = inner


def detect_modality(model: nn.Module) -> str:
    """Returns ``"image"`` for models whose main input is ``pixel_values`` and ``"text"`` for ``input_ids``.

    Raises:
        ValueError: if the model takes neither (named ``model`` in the message).
    """
    from .data_utils import forward_input_names

    main = getattr(unwrap_model(model), "main_input_name", None)
    params = forward_input_names(model)
    if main == "pixel_values" or (main is None and "pixel_values" in params):
        return IMAGE
    if main == "input_ids" or (main is None and "input_ids" in params):
        return TEXT
    raise ValueError(
        f"`model` ({type(model).__name__}) has no known input modality: hf_unlearn supports models whose main input "
        f"is `pixel_values` (images, e.g. ViT) or `input_ids` (text, e.g. BERT); got main_input_name={main!r}."
    )


def num_labels_of(model: nn.Module) -> int:
    config = getattr(unwrap_model(model), "config", None)
    n = getattr(config, "num_labels", None)
    if not n or n < 2:
        raise ValueError("`model` must be a classifier whose `config.num_labels` is at least 2.")
    return int(n)


def id2label_of(model: nn.Module) -> dict[int, str]:
    config = unwrap_model(model).config
    id2label = getattr(config, "id2label", None) or {}
    n = num_labels_of(model)
    return {i: str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)}


def resolve_classes(
    classes: int | str | Iterable[int | str], id2label: dict[int, str], argument: str = "forget_classes"
) -> list[int]:
    """Maps class ids or label names to sorted unique ids, rejecting unknown ones with an error naming ``argument``."""
    if isinstance(classes, (int, str)):
        classes = [classes]
    label2id = {v: k for k, v in id2label.items()}
    out: list[int] = []
    for c in classes:
        if isinstance(c, bool):
            raise ValueError(f"`{argument}` holds a boolean ({c!r}); give class ids or label names.")
        if isinstance(c, str) and c in label2id:
            cid = label2id[c]
        elif isinstance(c, str) and c.lstrip("-").isdigit():
            cid = int(c)
        elif isinstance(c, (int,)) or (hasattr(c, "__index__") and not isinstance(c, str)):
            cid = int(c)
        else:
            raise ValueError(f"`{argument}` names an unknown class {c!r}; known labels: {sorted(label2id)}.")
        if cid not in id2label:
            raise ValueError(f"`{argument}` holds class id {cid}, outside the model's classes 0..{len(id2label) - 1}.")
        out.append(cid)
    out = sorted(set(out))
    if not out:
        raise ValueError(f"`{argument}` is empty; name at least one class to forget.")
    return out


def check_labels(labels: torch.Tensor, num_labels: int, argument: str = "labels") -> None:
    if labels.numel() == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_labels:
        raise ValueError(
            f"`{argument}` holds class ids in [{lo}, {hi}] but the model has `num_labels`={num_labels} (ids 0.."
            f"{num_labels - 1})."
        )


def image_shape(config: Any, default: Iterable[int] | None = None) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the images a vision model's ``config`` takes (``num_channels`` default 3).

    CNN configs (ResNet) carry no ``image_size``: then ``default`` (e.g. the shape of the training images) is
    returned when given.

    Raises:
        ValueError: if the config has no ``image_size`` and no ``default`` is given.
    """
    size = getattr(config, "image_size", None)
    if size is None:
        if default is not None:
            c, h, w = (int(v) for v in default)
            return c, h, w
        raise ValueError("`model.config` has no `image_size`; cannot tell the shape of its images.")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return int(getattr(config, "num_channels", 3)), int(h), int(w)


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries an unlearned model depends on (those installed), for the record."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"python": platform.python_version(), "hf_unlearn": __version__}
    for dist in ("torch", "transformers", "accelerate", "huggingface_hub"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def is_hub_id(name: str) -> bool:
    """Whether ``name`` is shaped like a Hub repository id (``name`` or ``namespace/name``)."""
    return isinstance(name, str) and HUB_ID_PATTERN.match(name) is not None


def hub_offline() -> bool:
    """Whether the Hugging Face Hub is switched off (``HF_HUB_OFFLINE=1``)."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def is_local_path(path: str) -> bool:
    """Whether ``path`` can only mean a local path (it exists, looks like a path, or is no valid Hub id)."""
    return os.path.exists(path) or path.startswith((".", "/", "~")) or not is_hub_id(path)


def check_hub_repo(repo_id: str, repo_type: str = "model", argument: str = "model", timeout: float = 5.0) -> None:
    """Checks that ``repo_id`` exists on the Hub before anything is downloaded, failing within seconds.

    Without this check an unreachable Hub costs minutes of download retries.

    Raises:
        ValueError: naming ``argument``, when the Hub is off (``HF_HUB_OFFLINE=1``), cannot be reached within
            ``timeout`` seconds, or has no such repository.
    """
    if hub_offline():
        raise ValueError(f"`{argument}` {repo_id!r} is not a local folder, and the Hub is off (HF_HUB_OFFLINE=1).")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().repo_info(repo_id, repo_type=repo_type, timeout=timeout)
    except GatedRepoError:
        return  # exists; the download says what access it needs
    except RepositoryNotFoundError as e:
        raise ValueError(
            f"`{argument}` {repo_id!r} is no {repo_type} on the Hub (or a private one: log in or set HF_TOKEN)."
        ) from e
    except Exception as e:  # noqa: BLE001 - network errors come from several libraries
        raise ValueError(
            f"`{argument}` {repo_id!r} is not a local folder, and the Hub could not be reached "
            f"({type(e).__name__}: {e}); with no network, give a local folder."
        ) from e


def check_push_target(repo_id: str, argument: str = "push_to_hub", timeout: float = 5.0, endpoint: str | None = None):
    """Checks, before any work, that ``repo_id`` can be pushed to: a valid id, the Hub switched on and answering
    within ``timeout`` seconds, and a token (when one is set) that may write.

    Raises:
        ValueError: naming ``argument``.
    """
    if not is_hub_id(repo_id):
        raise ValueError(f"`{argument}` {repo_id!r} is not a Hub repository id ('namespace/name').")
    if hub_offline():
        raise ValueError(f"`{argument}` {repo_id!r}: the Hub is off (HF_HUB_OFFLINE=1); unset it to push.")
    from huggingface_hub import constants, get_session
    from huggingface_hub.utils import build_hf_headers, get_token

    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    token = get_token()
    try:  # any HTTP answer means reachable; whoami also tells a read-only token
        response = get_session().get(
            f"{endpoint}/api/whoami-v2", headers=build_hf_headers(token=token or False), timeout=timeout
        )
    except Exception as e:  # noqa: BLE001 - network errors come from several libraries
        raise ValueError(
            f"`{argument}` {repo_id!r}: the Hub at {endpoint} could not be reached ({type(e).__name__}); nothing was "
            "done. Push later with `hf-unlearn push`, or leave the flag out."
        ) from None
    if token and response.status_code == 200:
        try:
            role = response.json().get("auth", {}).get("accessToken", {}).get("role")
        except ValueError:
            role = None
        if role == "read":
            raise ValueError(f"`{argument}` {repo_id!r}: the Hub token is read-only; use a token that can write.")


def format_value(value: float | None, digits: int = 4, missing: str = "–") -> str:
    """A metric for a table: ``missing`` for None, counts (whole numbers above 1) with thousands separators, else
    ``digits`` decimals."""
    if value is None:
        return missing
    if float(value).is_integer() and abs(value) > 1:
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def _generic_names(names: list[str]) -> bool:
    """Label names that say nothing (``LABEL_3``, ``3``): only the number of classes can be compared."""
    return all(n in (f"LABEL_{i}", str(i)) for i, n in enumerate(names))


def check_dataset_labels(dataset: Any, id2label: dict[int, str], argument: str = "dataset") -> None:
    """Refuses a data set whose label column is a ``ClassLabel`` whose ids name other classes than the model's
    ``id2label``: a name at an id where the model has another name, or more classes than the model. A data set of
    some of the model's classes, each at the model's id, passes. Names that say nothing (``LABEL_i``, ``"i"``) on
    either side are compared by number only; a column of plain integers cannot be checked. (The CLI maps label names
    to the model's ids by name before this check: ``hf_unlearn.data.prepare_splits``.)

    Raises:
        ValueError: naming ``argument``, both label lists, and how to map the data set explicitly.
    """
    from datasets import ClassLabel

    features = getattr(dataset, "features", None)
    if not features:
        return
    for column in ("labels", "label"):
        feature = features.get(column) if hasattr(features, "get") else None
        if isinstance(feature, ClassLabel):
            break
    else:
        return
    names = [str(n) for n in feature.names]
    model_names = [id2label[i] for i in range(len(id2label))]
    if len(names) <= len(model_names) and (
        _generic_names(names) or _generic_names(model_names) or names == model_names[: len(names)]
    ):
        return
    raise ValueError(
        f"`{argument}` has {len(names)} classes {names}, which are not the model's id2label ({len(model_names)}: "
        f"{model_names}); the same id would name another class. Map the data set to the model's labels first "
        f"(datasets: `ds.align_labels_with_mapping(model.config.label2id, {column!r})`, after renaming its names to "
        "the model's), or give the data set the model was trained on."
    )
