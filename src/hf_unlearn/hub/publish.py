"""Saving an unlearned model folder safely and pushing it to the Hub.

- [`check_output_dir`] refuses, before any work, a folder that would lose the user's data.
- [`save_unlearned`] writes the whole folder into a temporary folder beside the target and renames it into place, so
  an interrupt never leaves a half-written folder that looks complete and a replaced folder keeps no stale file.
- [`save_with_audit`] saves such a folder again with a forgetting audit in its report and card.
- [`push_unlearned`] uploads such a folder; a failed upload raises [`HubPushError`] and leaves the folder as it was.

Only the main process writes files or pushes. Tokens are handed to ``huggingface_hub`` and never written or logged.
Nothing written here holds a local absolute path (see [`public_report`]).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from ..report import UnlearningReport
from ..utils import get_logger
from .card import CARD_FILE, card_tags, public_name, public_report, render_model_card
from .chart import CHART_FILE, plot_per_class_accuracy

logger = get_logger(__name__)


class HubPushError(RuntimeError):
    """A push to the Hub failed; the local folder ``output_dir`` is complete and the push can be retried."""

    def __init__(self, message: str, *, repo_id: str, output_dir: str):
        super().__init__(message)
        self.repo_id = repo_id
        self.output_dir = output_dir


def _is_main_process(accelerator: Any = None) -> bool:
    if accelerator is not None:
        return bool(accelerator.is_main_process)
    from accelerate import PartialState

    return PartialState().is_main_process


def _check_savable(obj: Any, argument: str) -> None:
    if obj is not None and not callable(getattr(obj, "save_pretrained", None)):
        raise TypeError(f"`{argument}` ({type(obj).__name__}) has no `save_pretrained` method; pass None to skip it.")


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _model_source_folder(model: Any) -> str | None:
    name = getattr(getattr(model, "config", None), "_name_or_path", None)
    return str(name) if name and os.path.isdir(str(name)) else None


def check_output_dir(
    output_dir: str | os.PathLike,
    *,
    overwrite_output_dir: bool = False,
    model: Any = None,
    input_dir: str | os.PathLike | None = None,
    argument: str = "output_dir",
) -> str:
    """Checks, before any work, that ``output_dir`` can receive a saved model without losing anything.

    Refused (``ValueError`` naming ``argument``): an empty value; an existing file; a folder that would be replaced
    whole and holds the current working directory; an unwritable parent; unless ``overwrite_output_dir``, a
    non-empty folder or the folder the model was loaded from (``input_dir``, else ``model.config._name_or_path``),
    as ``TrainingArguments`` does; a mount point. What interrupted runs left beside it is removed or reported
    ([`clean_stale`]). Pass ``argument="--output_dir"`` to name a command-line flag.

    Returns:
        ``output_dir`` as a string.
    """
    name = argument if argument.startswith("-") else f"`{argument}`"  # an API argument or a CLI flag
    if output_dir is None or str(output_dir).strip() == "":
        raise ValueError(f"{name} must be a folder path, got an empty value.")
    path = str(output_dir)
    if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0:  # one process tidies up, first
        clean_stale(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is an existing file; give a folder path.")
    source = str(input_dir) if input_dir is not None and os.path.isdir(str(input_dir)) else _model_source_folder(model)
    if source is not None and os.path.isdir(path) and _same_folder(source, path) and not overwrite_output_dir:
        raise ValueError(
            f"{name} {path!r} is the folder the model was loaded from; saving there would replace the "
            "original weights. Give another folder, or pass overwrite_output_dir=True (--overwrite_output_dir)."
        )
    if os.path.isdir(path) and os.listdir(path) and not overwrite_output_dir:
        raise ValueError(
            f"{name} {path!r} exists and is not empty. Give an empty or new folder, or pass "
            "overwrite_output_dir=True (--overwrite_output_dir) to replace it whole."
        )
    if os.path.isdir(path):
        cwd = os.path.realpath(os.getcwd())
        target = os.path.realpath(path)
        if cwd == target or cwd.startswith(target.rstrip(os.sep) + os.sep):
            raise ValueError(
                f"{name} {path!r} holds the current working directory; it cannot be replaced. Give a subfolder."
            )
    if os.path.isdir(path) and os.path.ismount(path):
        raise ValueError(
            f"{name} {path!r} is a mount point; the saved folder is renamed into place, which a mount point cannot "
            "be. Give a folder inside it."
        )
    _check_parent_writable(path, name)
    return path


def write_card_files(
    output_dir: str,
    report: UnlearningReport,
    *,
    model: Any = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    tags: Sequence[str] | None = None,
    codebook: Any = None,
    config: Any = None,
) -> None:
    """Writes everything except the model and processing class into ``output_dir``: codes, config, report (with no
    absolute path), chart and card. Tags the model (``model.add_model_tags``) so that a later ``push_to_hub`` from
    transformers keeps them."""
    os.makedirs(output_dir, exist_ok=True)
    if codebook is not None:
        codebook.save_pretrained(output_dir)
    if config is not None:
        config.save_pretrained(output_dir)
    public = public_report(report)
    public.save(output_dir)
    chart = plot_per_class_accuracy(public, os.path.join(output_dir, CHART_FILE))
    if chart is None and os.path.isfile(os.path.join(output_dir, CHART_FILE)):
        os.remove(os.path.join(output_dir, CHART_FILE))  # a chart left from an earlier run would be uploaded
    card = render_model_card(
        report, model=model, repo_id=repo_id, chart_path=chart, model_name=model_name, tags=tags, codebook=codebook
    )
    card.save(os.path.join(output_dir, CARD_FILE))
    if callable(getattr(model, "add_model_tags", None)):
        model.add_model_tags(card_tags(report, tags))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------- staging folders
# Whatever the tools write goes first into a hidden holder folder beside the target, ``.NAME.tmp-XXXXXXXX``, that
# holds a marker file (who made it) and the new content in ``new/``. Only when the content is complete is it swapped
# with the target (one atomic exchange where the system has one), so an interrupt at any moment leaves the target
# exactly as it was. A later run finds a holder whose process is gone and removes it (see [`clean_stale`]).
STAGING_MARKER = ".hf_unlearn-staging.json"
_STALE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|replaced|old)-[A-Za-z0-9_]+(?P<file>\.partial)?$")


def _renameat2_exchange(a: str, b: str) -> bool:
    """Swaps two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), ctypes.c_uint(rename_exchange)) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def make_staging(target: str) -> str:
    """A new holder folder beside ``target`` (marked as ours, with this process's id); returns the path of the
    folder to write into (``<holder>/new``, created)."""
    import socket
    import time

    target = os.path.abspath(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)  # `--output_dir a/b/c` with `a/b` not there yet
    holder = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=os.path.dirname(target))
    with open(os.path.join(holder, STAGING_MARKER), "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "created": time.time()}, f)
    new = os.path.join(holder, "new")
    os.mkdir(new)
    return new


def discard_staging(new: str) -> None:
    """Removes the holder of a staging folder made by [`make_staging`] (the target is not touched)."""
    holder = os.path.dirname(os.path.abspath(new))
    if os.path.isfile(os.path.join(holder, STAGING_MARKER)):
        shutil.rmtree(holder, ignore_errors=True)


def commit_staging(new: str, target: str) -> None:
    """Puts the finished staging folder ``new`` in place of ``target`` (replaced whole if it exists), then removes
    the holder with the old content. At every moment either the old or the new folder is at ``target``, except where
    the system has no atomic exchange: there the old folder waits in the marked holder for the two renames, and a
    later run puts it back if the process died in between (see [`clean_stale`])."""
    target = os.path.abspath(target)
    holder = os.path.dirname(os.path.abspath(new))
    os.chmod(new, 0o777 & ~_umask())  # mkdtemp makes folders private; the saved folder gets the usual permissions
    if not os.path.lexists(target):
        os.rename(new, target)
    elif not _renameat2_exchange(new, target):
        old = os.path.join(holder, "old")
        os.rename(target, old)
        try:
            os.rename(new, target)
        except BaseException:
            os.rename(old, target)
            raise
    shutil.rmtree(holder, ignore_errors=True)


def clean_stale(target: str | os.PathLike) -> list[str]:
    """Finds what interrupted runs left beside ``target`` and removes it; returns the paths that remain (reported).

    - A marked holder (``.NAME.tmp-*`` with ``.hf_unlearn-staging.json``) whose process is gone is removed; if
      ``target`` is missing and the holder kept the old folder (killed between two renames), that folder is put back
      first. A holder of a live process (another run writing now) is left alone.
    - An unmarked ``.NAME.tmp-*`` folder or ``.NAME.tmp-*.partial`` file (a half-written save or file of an earlier
      version, or of a killed file write) is removed.
    - ``.NAME.replaced-*`` / ``.NAME.old-*`` folders of earlier versions hold a user's previous folder: never
      deleted, reported with a warning saying where it is.
    """
    import socket

    target = os.path.abspath(str(target))
    parent, name = os.path.dirname(target), os.path.basename(target)
    try:
        entries = os.listdir(parent)
    except OSError:
        return []
    left: list[str] = []
    for entry in sorted(entries):
        m = _STALE.match(entry)
        if m is None or m["name"] != name:
            continue
        path = os.path.join(parent, entry)
        marker = os.path.join(path, STAGING_MARKER)
        if m["kind"] == "tmp" and os.path.isfile(marker):
            try:
                with open(marker, encoding="utf-8") as f:
                    owner = json.load(f)
                mine = owner.get("host") == socket.gethostname()
                alive = owner.get("pid") == os.getpid() or _pid_alive(int(owner.get("pid")))
            except (OSError, ValueError, TypeError):
                mine, alive = True, False
            if not mine or alive:
                left.append(path)
                logger.info("%s belongs to a run still in progress (or on another machine); left alone.", entry)
                continue
            old = os.path.join(path, "old")
            if os.path.isdir(old) and not os.path.lexists(target):
                os.rename(old, target)
                logger.warning("Put back %s: an interrupted run had moved it into %s.", name, entry)
            shutil.rmtree(path, ignore_errors=True)
            logger.info("Removed %s, left by an interrupted run.", entry)
        elif m["kind"] == "tmp":
            if m["file"]:
                if not _pid_alive(_partial_pid(entry)):
                    os.remove(path)
                    logger.info("Removed %s, left by an interrupted run.", entry)
                else:
                    left.append(path)
                continue
            shutil.rmtree(path, ignore_errors=True)
            logger.info("Removed %s, a half-written folder left by an interrupted run.", entry)
        else:
            left.append(path)
            logger.warning(
                "%s holds a folder an interrupted run of an earlier hf_unlearn moved aside (the previous %s); it was "
                "left in place: move it back or delete it.",
                path,
                name,
            )
    return left


def _partial_pid(entry: str) -> int:
    m = re.search(r"\.tmp-(\d+)_", entry)
    return int(m.group(1)) if m else -1


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False, argument: str = "output_file") -> str:
    """Checks, before any work, that the single file ``path`` can be written: not empty, not a folder, not a mount
    point, a writable parent, and, unless ``overwrite``, no existing file (``ValueError`` naming ``argument``; pass
    ``argument="--output_file"`` to name a command-line flag and its overwrite flag)."""
    name = argument if argument.startswith("-") else f"`{argument}`"
    flag = f"--overwrite_{argument.lstrip('-')}" if argument.startswith("-") else "overwrite=True"
    if path is None or str(path).strip() == "":
        raise ValueError(f"{name} must be a file path, got an empty value.")
    path = str(path)
    if os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is a folder; give a file name.")
    if os.path.lexists(path) and os.path.ismount(path):
        raise ValueError(f"{name} {path!r} is a mount point; it cannot be replaced. Give another file path.")
    if os.path.lexists(path) and not overwrite:
        raise ValueError(f"{name} {path!r} exists; give a new file name, or pass {flag} to replace it.")
    clean_stale(path)
    _check_parent_writable(path, name)
    return path


def write_file(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file beside it renamed into place: an interrupted write leaves
    the earlier file (if any) as it was."""
    path = os.path.abspath(str(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.tmp-{os.getpid()}_", suffix=".partial", dir=os.path.dirname(path)
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _check_parent_writable(path: str, name: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):  # the first existing ancestor is where folders get created
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{name} {path!r} cannot be created: {os.path.basename(parent)!r} is a file.")
    try:  # a real probe: permissions, read-only file systems and root's special cases all show up here
        os.rmdir(tempfile.mkdtemp(prefix=".hf_unlearn-write-check-", dir=parent))
    except OSError as e:
        raise ValueError(f"{name} {path!r} cannot be written ({e.strerror} in its parent folder).") from None


def save_unlearned(
    output_dir: str | os.PathLike,
    model: Any,
    report: UnlearningReport,
    *,
    processing_class: Any = None,
    codebook: Any = None,
    config: Any = None,
    repo_id: str | None = None,
    accelerator: Any = None,
    overwrite_output_dir: bool = True,
) -> str:
    """Writes an unlearned model and everything that documents it into ``output_dir`` (main process only).

    The folder gets the model (``model.save_pretrained``), the processing class, the mnemonic codes, the unlearning
    config, ``unlearning_report.json``, the per-class accuracy chart (when the report has per-class metrics and
    matplotlib is installed) and ``README.md`` (the model card). All arguments are checked before anything is
    written. Everything is written into a hidden temporary folder beside ``output_dir`` and renamed into place at the
    end: an interrupted save leaves the previous folder as it was, and a replaced folder keeps no file of an
    earlier run. No file holds a local absolute path (a local base model is named by its folder's base name).

    Args:
        output_dir: folder to write; created if missing, must not be an existing file.
        model: the unlearned model (anything with ``save_pretrained``; DDP wrappers are unwrapped).
        report: the [`UnlearningReport`] of the run.
        processing_class: image processor or tokenizer to save beside the model, if any.
        codebook: the [`MnemonicCodebook`] used, if any.
        config: the ``UnlearningConfig`` used (anything with ``save_pretrained(directory)``), if any.
        repo_id: Hub repository the folder is meant for, used in the card's loading example.
        accelerator: the ``Accelerator`` of the run; without one, ``accelerate.PartialState`` says which process is
            the main one.
        overwrite_output_dir: replace an existing non-empty ``output_dir`` (or the model's own folder) whole; when
            ``False`` such a folder is refused (see [`check_output_dir`]).

    Returns:
        ``output_dir`` as a string (on every process; only the main process writes).
    """
    from ..utils import unwrap_model

    if output_dir is None or str(output_dir).strip() == "":
        raise ValueError("`output_dir` must be a folder path, got an empty value.")
    if model is None:
        raise ValueError("`model` is None; pass the unlearned model.")
    model = unwrap_model(model) if hasattr(model, "parameters") else model
    _check_savable(model, "model")
    if report is None:
        raise ValueError("`report` is None; pass the UnlearningReport returned by the unlearning run.")
    if not isinstance(report, UnlearningReport):
        raise TypeError(f"`report` must be an UnlearningReport, got {type(report).__name__}.")
    _check_savable(processing_class, "processing_class")
    _check_savable(codebook, "codebook")
    _check_savable(config, "config")

    if not _is_main_process(accelerator):
        return str(output_dir)
    # the folder checks run where the folder is written: another process could see it already replaced
    output_dir = check_output_dir(output_dir, overwrite_output_dir=overwrite_output_dir, model=model)
    target = os.path.realpath(output_dir) if os.path.islink(output_dir) else os.path.abspath(output_dir)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = make_staging(target)
    try:
        model.save_pretrained(tmp)
        _publishable_adapter_config(tmp)
        if processing_class is not None:
            processing_class.save_pretrained(tmp)
        write_card_files(tmp, report, model=model, repo_id=repo_id, codebook=codebook, config=config)
        commit_staging(tmp, target)
    except BaseException:  # KeyboardInterrupt included: never leave a half-written folder behind
        discard_staging(tmp)
        raise
    logger.info("Saved the unlearned model, its report and model card to %s", output_dir)
    return output_dir


# What a published report keeps of an ``hf-unlearn audit`` JSON: the measurements, not the local folders compared.
AUDIT_KEYS = ("forget_classes", "forget_labels", "metrics", "original", "retrained", "standing", "retrained_range",
              "js_retrained_reference", "two_sided", "indistinguishable", "distinguisher_reference", "settings")  # fmt: skip


def save_with_audit(
    model_dir: str | os.PathLike,
    audit: str | os.PathLike | dict[str, Any],
    output_dir: str | os.PathLike,
    *,
    overwrite_output_dir: bool = True,
) -> str:
    """Saves the unlearned folder ``model_dir`` again into ``output_dir`` with a forgetting audit in its report and
    card (the "How deep is the forgetting?" section), ready for [`push_unlearned`].

    Args:
        model_dir: a folder written by [`save_unlearned`] (``hf-unlearn forget``): model, report, codes, config.
        audit: the JSON file ``hf-unlearn audit`` wrote, or ``ForgettingAudit.to_dict()``; only its measurements
            (``AUDIT_KEYS``) are kept.
        output_dir: the folder to write (see [`save_unlearned`]); it must not be ``model_dir``.
        overwrite_output_dir: replace an existing non-empty ``output_dir`` whole.

    Returns:
        ``output_dir`` as a string.
    """
    import transformers

    from ..mnemonic.codebook import CODES_CONFIG_FILE, MnemonicCodebook
    from ..report import REPORT_FILE
    from ..unlearning_config import CONFIG_FILE, UnlearningConfig
    from .lineage import source_processing_class

    model_dir = str(model_dir)
    if os.path.isfile(os.path.join(model_dir, "adapter_config.json")):
        raise ValueError(f"`model_dir` {model_dir!r} holds a PEFT adapter; give a folder with the full model.")
    if not all(os.path.isfile(os.path.join(model_dir, name)) for name in (REPORT_FILE, "config.json")):
        raise ValueError(f"`model_dir` {model_dir!r} holds no unlearned model ({REPORT_FILE} and config.json).")
    if not isinstance(audit, dict):
        try:
            with open(audit, encoding="utf-8") as f:
                audit = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"`audit` {str(audit)!r} could not be read as an audit JSON file ({e}).") from e
    if not isinstance(audit, dict) or not isinstance(audit.get("metrics"), dict):
        raise ValueError("`audit` holds no `metrics`: give the file `hf-unlearn audit` wrote.")
    report = UnlearningReport.load(model_dir)
    report.audit = {k: audit[k] for k in AUDIT_KEYS if k in audit}
    arch = (transformers.AutoConfig.from_pretrained(model_dir).architectures or [""])[0]
    vision = arch.endswith("ForImageClassification")
    auto = transformers.AutoModelForImageClassification if vision else transformers.AutoModelForSequenceClassification
    model = auto.from_pretrained(model_dir)
    codes, config = (os.path.isfile(os.path.join(model_dir, name)) for name in (CODES_CONFIG_FILE, CONFIG_FILE))
    return save_unlearned(
        output_dir,
        model,
        report,
        processing_class=source_processing_class(model),
        codebook=MnemonicCodebook.from_pretrained(model_dir) if codes else None,
        config=UnlearningConfig.from_pretrained(model_dir) if config else None,
        overwrite_output_dir=overwrite_output_dir,
    )


def _publishable_adapter_config(folder: str) -> None:
    """A PEFT model's ``save_pretrained`` records its base model's ``name_or_path`` in ``adapter_config.json``: a
    local folder is kept by its base name only (a Hub id stays as it is)."""
    path = os.path.join(folder, "adapter_config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    base = data.get("base_model_name_or_path")
    if base and public_name(base) != base:
        data["base_model_name_or_path"] = public_name(base)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "<redacted>") if token else text


def push_unlearned(
    repo_id: str,
    output_dir: str | os.PathLike,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
    accelerator: Any = None,
) -> str | None:
    """Uploads a folder written by [`save_unlearned`] to the Hub repository ``repo_id`` (main process only).

    The repository is created if needed. A failed push raises [`HubPushError`]; the local folder is left untouched,
    so calling this again retries the push.

    Args:
        repo_id: ``"namespace/name"`` of the model repository.
        output_dir: the folder to upload.
        private: visibility of a newly created repository (``None``: the Hub's default). Ignored if it exists.
        token: Hub token; ``None`` uses ``HF_TOKEN`` or the stored login. Never written or logged.
        revision: branch to commit to (default ``main``); created from ``main`` if missing.
        commit_message: defaults to ``"Upload unlearned model (hf_unlearn, <method>)"``.
        endpoint: Hub URL; ``None`` uses the ``HF_ENDPOINT`` environment variable, else huggingface.co.
        accelerator: the ``Accelerator`` of the run, to tell the main process; optional.

    Returns:
        The URL of the commit on the main process, ``None`` on the others.

    Raises:
        ValueError: bad ``repo_id`` or ``output_dir`` (nothing is sent).
        HubPushError: the Hub could not be reached or refused the upload (chained from the original error).
    """
    from huggingface_hub import HfApi, constants

    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(f"`repo_id` must be a non-empty 'namespace/name' string, got {repo_id!r}.")
    if output_dir is None or not os.path.isdir(str(output_dir)):
        raise ValueError(f"`output_dir` {output_dir!r} is not a folder; write it with save_unlearned first.")
    output_dir = str(output_dir)
    if not os.path.isfile(os.path.join(output_dir, CARD_FILE)):
        logger.warning("%s has no %s: the pushed model will have no model card.", output_dir, CARD_FILE)
    if not _is_main_process(accelerator):
        return None
    if commit_message is None:
        method = None
        try:
            method = UnlearningReport.load(output_dir).method
        except (OSError, ValueError, TypeError):
            pass
        commit_message = f"Upload unlearned model (hf_unlearn{', ' + method if method else ''})"
    retry_hint = f"The local folder at {output_dir} is complete and untouched; call push_unlearned again to retry."
    if constants.is_offline_mode():
        raise HubPushError(
            f"Cannot push {repo_id!r}: offline mode is on (HF_HUB_OFFLINE=1); unset it to push. {retry_hint}",
            repo_id=repo_id,
            output_dir=output_dir,
        )
    # HF_ENDPOINT is read by huggingface_hub once, at import; reading it here honours a later change too.
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
    api = HfApi(endpoint=endpoint, token=token, library_name="hf_unlearn")
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        if revision is not None and revision != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=output_dir,
            revision=revision,
            commit_message=commit_message,
        )
    except Exception as e:
        reason = _redact(f"{type(e).__name__}: {e}", token or os.environ.get("HF_TOKEN"))
        raise HubPushError(
            f"Pushing {output_dir} to {repo_id!r} on {api.endpoint} failed ({reason}). {retry_hint}",
            repo_id=repo_id,
            output_dir=output_dir,
        ) from e
    logger.info("Pushed %s to %s: %s", output_dir, repo_id, info.commit_url)
    return info.commit_url
