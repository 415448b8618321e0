"""What every ``hf-unlearn`` command shares besides its parser (``parser.py``, re-exported here): one-line errors,
processes, output folders, model folders, the metrics table.

Only the standard library is imported here at module level; torch, transformers and datasets are imported by the
functions that need them, when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .parser import CLIError, DataclassArgumentParser, mnemonic_config_fields  # noqa: F401 - the scripts import them here

logger = logging.getLogger("hf_unlearn.scripts")


# ------------------------------------------------------------------------------------------- errors and running
def flags_in_message(message: str, parser: argparse.ArgumentParser | None) -> str:
    """Turns the library's `` `field` `` names into ``--field`` when the field is a flag of this command."""
    if parser is None:
        return message
    flags = {s[2:] for s in parser._option_string_actions if s.startswith("--")}

    def flag(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        if name not in flags:
            return m.group(0)
        return f"--{name}" if value is None else f"--{name} {value.lower() if value in ('True', 'False') else value}"

    return re.sub(r"`(\w+)(?:=([^`\s]+))?`", flag, message)


@contextlib.contextmanager
def parsing(parser: argparse.ArgumentParser):
    """The library's ValueErrors (and TypeErrors) about user input become one-line CLIErrors naming the flag."""
    try:
        yield
    except CLIError:
        raise
    except (ValueError, TypeError) as e:
        raise CLIError(" ".join(flags_in_message(str(e), parser).split())) from e


def need(value: Any, flag: str, what: str) -> Any:
    if value is None or value == [] or value == "":
        raise CLIError(f"{flag} is required: {what}")
    return value


def run(prog: str, command: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None) -> int:
    """Runs ``command(argv)`` and turns errors into one line on stderr: exit 2 for the command line, 1 for the run.

    Called with ``argv=None`` (a console script or ``python -m``) it also sets up logging for the main process.
    """
    if argv is None:
        setup_logging()
        argv = sys.argv[1:]
    try:
        return command(list(argv)) or 0
    except CLIError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.code
    except FileNotFoundError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse's --help
        return e.code if isinstance(e.code, int) else 0
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Leaves the process group of a multi-process launch (gloo can abort at exit when it is left open)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------------ processes
def is_main_env() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def setup_logging() -> None:
    """hf_unlearn's INFO messages on stderr of the main process (warnings only on the others)."""
    level = logging.INFO if is_main_env() else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[hf-unlearn] %(message)s"))
    root = logging.getLogger("hf_unlearn")
    if not any(getattr(h, "_hf_unlearn_cli", False) for h in root.handlers):
        handler._hf_unlearn_cli = True
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("hf_unlearn.fisher").setLevel(logging.WARNING)  # one line per Fisher pass: too chatty here
    # torch.func has no batching rule for CPU flash attention and says so on every per-sample Fisher pass
    warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")


def make_accelerator():
    import torch
    from accelerate import Accelerator

    # Without cpu=True on a machine with no GPU, each process of a multi-process launch believes it is alone.
    return Accelerator(cpu=not torch.cuda.is_available())


def print_main(accelerator: Any, *lines: str) -> None:
    """Prints on the main process only."""
    if accelerator is None or accelerator.is_main_process:
        print(*lines, sep="\n", flush=True)


# ------------------------------------------------------------------------------------------------------ folders
def check_output_dir(
    output_dir: str, *, overwrite: bool, input_dir: str | None = None, flag: str = "--output_dir"
) -> None:
    """Refuses, before any work, an output folder that is the input folder, holds files, or cannot be written
    (``hub.check_output_dir``, the check saving makes again); ``overwrite`` is ``--overwrite_output_dir``."""
    from ..hub import check_output_dir as check

    try:
        check(output_dir, overwrite_output_dir=overwrite, input_dir=input_dir, argument=flag)
    except ValueError as e:
        raise CLIError(" ".join(str(e).split())) from e


def check_sources(parser: argparse.ArgumentParser, **sources: str | None) -> None:
    """Checks, before anything heavy is imported, that each ``flag=value`` naming a Hub repository (not a built-in
    name nor a local path) exists there; a missing network fails within seconds."""
    from ..utils import check_hub_repo, is_local_path

    builtin = {"model": ("tiny-vit", "minilm"), "dataset": ("digits", "trec")}
    for flag, value in sources.items():
        if value is None or value in builtin.get(flag, ()) or os.path.exists(value) or is_local_path(value):
            continue  # the loaders say what is wrong with a local path
        with parsing(parser):
            check_hub_repo(value, "dataset" if flag == "dataset" else "model", flag)


def resolve_model_dir(path: str | None, flag: str = "--model_dir") -> str:
    """The local folder of a model given as a folder or Hub id (downloaded after a quick check that it exists)."""
    path = need(path, flag, "the folder of a trained model.")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise CLIError(f"{flag} {path!r} holds no config.json: it is not a saved transformers model.")
        return path
    if os.path.exists(path):
        raise CLIError(f"{flag} {path!r} is a file; give the model's folder.")
    from ..utils import check_hub_repo, is_local_path

    if is_local_path(path):
        raise CLIError(f"{flag} {path!r} does not exist.")
    try:
        check_hub_repo(path, "model", flag[2:])
    except ValueError as e:
        raise CLIError(str(e).replace(f"`{flag[2:]}`", flag)) from e
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(path)
    except Exception as e:  # noqa: BLE001
        raise CLIError(f"{flag} {path!r}: downloading it from the Hub failed ({type(e).__name__}: {e}).") from e


@contextlib.contextmanager
def no_progress_bars():
    """Hides transformers' per-file progress bars (loading and writing a small model) and restores the setting."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def incomplete_is_failure(parser: argparse.ArgumentParser | None = None):
    """A forgetting that could not be verified (``UnlearningIncompleteError``; the model was restored, nothing is
    written) ends the command with one line and exit status 1."""
    try:
        yield
    except RuntimeError as e:
        if type(e).__name__ != "UnlearningIncompleteError":
            raise
        raise CLIError(" ".join(flags_in_message(str(e), parser).split()), code=1) from e


@contextlib.contextmanager
def push_errors():
    """A push the Hub refused is a failure of the run (exit 1), not of the command line."""
    from ..hub import HubPushError

    try:
        yield
    except HubPushError as e:
        raise CLIError(f"{e} (`hf-unlearn push --folder {e.output_dir} --repo_id {e.repo_id}` retries)", code=1) from e


def _unreadable(path: str, name: str, e: Exception, flag: str = "--model_dir") -> CLIError:
    reason = " ".join(str(e).split()) or type(e).__name__
    return CLIError(f"{flag} {path!r}: {name} could not be read ({type(e).__name__}: {reason[:300]}).")


def load_model_dir(path: str, *, with_codebook: bool = True, flag: str = "--model_dir"):
    """Loads ``(model, processing_class, codebook or None)`` from a saved folder; unreadable files are one-line
    errors naming the file. The codebook is read only when ``with_codebook`` (methods that need no codes ignore a
    damaged one)."""
    import json

    import transformers
    from transformers import AutoConfig

    from ..mnemonic import MnemonicCodebook

    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            json.load(f)
        config = AutoConfig.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - broken JSON, unknown model type, ...
        raise _unreadable(path, "config.json", e, flag) from e
    arch = (getattr(config, "architectures", None) or [""])[0]
    if arch.endswith("ForImageClassification"):
        auto = transformers.AutoModelForImageClassification
    elif arch.endswith("ForSequenceClassification"):
        auto = transformers.AutoModelForSequenceClassification
    else:
        raise CLIError(f"{flag} {path!r} holds a {arch or config.model_type} model, not an image or text classifier.")
    weights = [n for n in sorted(os.listdir(path)) if n.endswith((".safetensors", ".bin")) and n.startswith("model")]
    try:
        with no_progress_bars():
            model = auto.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - truncated or corrupt weights
        raise _unreadable(path, " / ".join(weights) or "the model weights", e, flag) from e
    processing_class = None
    try:
        if os.path.isfile(os.path.join(path, "preprocessor_config.json")):
            name = "preprocessor_config.json"
            processing_class = transformers.AutoImageProcessor.from_pretrained(path)
        elif os.path.isfile(os.path.join(path, "tokenizer_config.json")):
            name = "the tokenizer files"
            processing_class = transformers.AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001
        raise _unreadable(path, name, e, flag) from e
    codebook = None
    if with_codebook and MnemonicCodebook.exists(path):
        try:
            codebook = MnemonicCodebook.from_pretrained(path)
        except Exception as e:  # noqa: BLE001
            raise CLIError(f"{flag} {path!r}: {' '.join(str(e).split())}") from e
    return model, processing_class, codebook


# ------------------------------------------------------------------------------------------------------- output
def metrics_table(before: dict | None, after: dict, forget_labels: Sequence[str]) -> str:
    """Per-class accuracy and the summary metrics (after, and before when given) as a plain-text table."""
    from ..utils import format_value

    before = before or {}
    pc_b, pc_a = before.get("per_class_accuracy", {}), after.get("per_class_accuracy", {})
    summary = [
        (title, key)
        for title, key in (
            ("A_R  retained accuracy", "retain_accuracy"),
            ("A_F  forget accuracy", "forget_accuracy"),
            ("E_F  forget error", "forget_error"),
            ("test accuracy", "test_accuracy"),
            ("MIA AUC on forget classes", "mia_auc"),
        )
        if key in after or key in before
    ]
    names = {label: f"{label} (forgotten)" if label in forget_labels else str(label) for label in pc_a}
    width = max([len(n) for n in names.values()] + [len(t) for t, _ in summary] + [5]) + 2
    cols = ("before", "after") if before else ("accuracy",)

    def row(name: str, values: Sequence[Any]) -> str:
        return f"{name:<{width}}" + "".join(f"{format_value(v, 3, '-'):>10}" for v in values)

    head = f"{'class':<{width}}" + "".join(f"{c:>10}" for c in cols)
    rule = "-" * len(head)
    rows = [head, rule]
    for label, name in names.items():
        rows.append(row(name, [pc_b.get(label), pc_a[label]] if before else [pc_a[label]]))
    rows.append(rule)
    for title, key in summary:
        rows.append(row(title, [before.get(key), after.get(key)] if before else [after.get(key)]))
    return "\n".join(rows)
