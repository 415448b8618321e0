"""What every ``hf-unlearn`` command shares besides its parser (``parser.py``, re-exported here): one-line errors,
processes, output folders, model folders, the metrics table.

Only the standard library and the parser (transformers' ``HfArgumentParser``, without torch) are imported here at
module level; torch, datasets and the rest of transformers are imported by the functions that need them.
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

from .parser import CLIError, HfUnlearnParser, flags_in_message  # noqa: F401 - the scripts import them here

logger = logging.getLogger("hf_unlearn.scripts")


# ------------------------------------------------------------------------------------------- errors and running
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


INTERRUPTED = 130  # exit status after Ctrl-C (128 + SIGINT), as shells report it


def run(prog: str, command: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None) -> int:
    """Runs ``command(argv)`` and turns every error into one line on stderr: exit 2 for what the user gave (checked
    before the work), 1 for a run that failed, 130 for Ctrl-C. ``HF_UNLEARN_TRACEBACK=1`` raises unexpected errors
    with their traceback instead.

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
    except KeyboardInterrupt:
        _close_progress_bars()
        print(f"{prog}: interrupted (Ctrl-C); what the run had not finished was not written.", file=sys.stderr)
        return INTERRUPTED
    except Exception as e:
        if os.environ.get("HF_UNLEARN_TRACEBACK"):
            raise
        reason = " ".join(str(e).split())[:500] or "no message"
        print(f"{prog}: error: {type(e).__name__}: {reason} (HF_UNLEARN_TRACEBACK=1 shows the traceback)",
              file=sys.stderr)  # fmt: skip
        return 1
    finally:
        _end_process_group()


def _close_progress_bars() -> None:
    """Closes the progress bars a stopped run left open, so that their last line comes before the error's."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        with contextlib.suppress(Exception):
            bar.close()


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


def make_accelerator(*models: Any):
    """An ``Accelerator`` for this launch, with ``models`` (those not None) moved to its device in eval mode."""
    import torch
    from accelerate import Accelerator

    # Without cpu=True on a machine with no GPU, each process of a multi-process launch believes it is alone.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    for model in models:
        if model is not None:
            model.to(accelerator.device).eval()
    return accelerator


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

    if output_dir and os.path.ismount(output_dir):  # the result is built beside the folder and swapped into place
        raise CLIError(f"{flag} {output_dir!r} is a mount point, which cannot be replaced; give a folder inside it.")
    try:
        check(output_dir, overwrite_output_dir=overwrite, input_dir=input_dir, argument=flag)
    except ValueError as e:
        raise CLIError(" ".join(str(e).split())) from e


def check_output_file(path: str, flag: str = "--output_file", *, overwrite: bool = False) -> None:
    """Refuses, before any work, an output file that is a folder or a mount point, whose folder cannot be made or
    written, or that exists (unless ``overwrite``: ``--overwrite_output_file``); the library's check
    ([`hub.publish.check_output_file`]) with the flag named in a one-line CLIError."""
    from ..hub.publish import check_output_file as check

    try:
        check(path, overwrite=overwrite, argument=flag)
    except ValueError as e:
        raise CLIError(" ".join(str(e).split())) from e


@contextlib.contextmanager
def staged_output_dir(args: Any, *, enabled: bool = True):
    """Training writes into a staging folder beside ``args.output_dir`` (``args.output_dir`` points there for the
    block), swapped into place when the block succeeds: the folder the user had (replaced whole with
    ``--overwrite_output_dir``, no file of the old model left in it) is never moved before the new model is complete,
    and a failed, interrupted or killed run leaves it exactly as it was (a later run removes the staging folder). With
    several processes the main process makes and swaps the folder and every process trains into it. ``enabled=False``
    (resuming from the checkpoints in ``output_dir``) trains in place."""
    from accelerate import PartialState

    from ..hub.publish import commit_staging, discard_staging, make_staging

    target = args.output_dir
    if not enabled:
        yield
        return
    # a symlinked output folder: the folder it points to is replaced, the link stays
    real = os.path.realpath(target) if os.path.islink(target) else target
    state = PartialState()
    new = make_staging(real) if state.is_main_process else None
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        box = [new]
        broadcast_object_list(box, from_process=0)
        new = box[0]
    if getattr(args, "push_to_hub", False) and not getattr(args, "hub_model_id", None):
        args.hub_model_id = os.path.basename(os.path.abspath(target))  # the repository is named after the target
    args.output_dir = new
    try:
        yield
        state.wait_for_everyone()
        if state.is_main_process:
            commit_staging(new, real)
        state.wait_for_everyone()
    except BaseException:
        if state.is_main_process:
            discard_staging(new)
        raise
    finally:
        args.output_dir = target


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
        if not os.path.isfile(os.path.join(path, "config.json")) and not is_adapter_dir(path):
            raise CLIError(
                f"{flag} {path!r} holds no config.json (nor {ADAPTER_CONFIG}): it is not a saved transformers model "
                "or PEFT adapter."
            )
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
    except HubPushError as e:  # the library's retry hint names its Python function: name the command instead
        message = " ".join(str(e).replace("call push_unlearned again to retry.", "").split())
        raise CLIError(
            f"{message} (`hf-unlearn push --folder {e.output_dir} --repo_id {e.repo_id}` retries)", code=1
        ) from e


def _unreadable(path: str, name: str, e: Exception, flag: str = "--model_dir") -> CLIError:
    reason = " ".join(str(e).split()) or type(e).__name__
    return CLIError(f"{flag} {path!r}: {name} could not be read ({type(e).__name__}: {reason[:300]}).")


def load_model_dir(path: str, *, with_codebook: bool = True, flag: str = "--model_dir"):
    """Loads ``(model, processing_class, codebook or None)`` from a saved folder; unreadable files are one-line
    errors naming the file. The codebook is read only when ``with_codebook`` (methods that need no codes ignore a
    damaged one)."""
    model = _load_classifier(path, flag)
    processing_class = _load_processing_class(path, flag)
    codebook = load_codebook(path, flag) if with_codebook else None
    return model, processing_class, codebook


def _load_classifier(path: str, flag: str):
    import json

    import transformers
    from transformers import AutoConfig

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
    return model


def _load_processing_class(path: str, flag: str):
    """The image processor or tokenizer saved in ``path``, or None."""
    import transformers

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
    return processing_class


def load_codebook(path: str, flag: str = "--model_dir"):
    """The mnemonic codes saved in ``path``, or None; damaged files are one-line errors naming the file."""
    from ..mnemonic import MnemonicCodebook

    if not MnemonicCodebook.exists(path):
        return None
    try:
        return MnemonicCodebook.from_pretrained(path)
    except Exception as e:  # noqa: BLE001
        raise CLIError(f"{flag} {path!r}: {' '.join(str(e).split())}") from e


# ------------------------------------------------------------------------------------------------ PEFT adapters
ADAPTER_CONFIG = "adapter_config.json"
PEFT_INSTALL = "pip install 'hf_unlearn[peft]'"


def is_adapter_dir(path: str | None) -> bool:
    """Whether ``path`` is a folder holding a PEFT adapter (``adapter_config.json``; hf_unlearn saves a PEFT model
    so), which loads over its base model."""
    return path is not None and os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def check_adapter_flags(
    folders: Sequence[tuple[str, str]], base_model: str | None, merge_adapter: bool = False
) -> None:
    """``--base_model`` / ``--merge_adapter`` are for adapter folders: refused when none of ``folders`` (``(flag,
    resolved folder)`` pairs) is one. An adapter folder needs peft: refused at once, naming it, when peft is missing.
    """
    adapters = [(flag, path) for flag, path in folders if is_adapter_dir(path)]
    if not adapters:
        given = [f for f, v in (("--base_model", base_model), ("--merge_adapter", merge_adapter)) if v]
        if given:
            flag, path = folders[0]
            raise CLIError(
                f"{given[0]} is for a PEFT adapter folder ({ADAPTER_CONFIG}), but {flag} {path!r} holds a full model."
            )
        return
    try:
        import peft  # noqa: F401
    except ImportError as e:
        flag, path = adapters[0]
        raise CLIError(
            f"{flag} {path!r} is a PEFT adapter ({ADAPTER_CONFIG}); loading it needs peft: {PEFT_INSTALL}."
        ) from e


def base_flag(base_model: str | None, flag: str = "--model_dir") -> str:
    """How errors about an adapter's base model name it: ``--base_model``, or the adapter config that named it."""
    return "--base_model" if base_model is not None else f"{flag}'s base model ({ADAPTER_CONFIG})"


def resolve_base_model(adapter_dir: str, base_model: str | None, flag: str = "--model_dir") -> str:
    """The local folder of the base model an adapter loads over: ``--base_model`` when given, else the
    ``base_model_name_or_path`` of its ``adapter_config.json`` (a local folder or a Hub id; hf_unlearn saves a local
    base by its folder name only, so such an adapter needs ``--base_model``)."""
    if base_model is not None:
        path = resolve_model_dir(base_model, "--base_model")
        if is_adapter_dir(path) and not os.path.isfile(os.path.join(path, "config.json")):
            raise CLIError(f"--base_model {base_model!r} is an adapter folder; give the full model it adapts.")
        return path
    import json

    where = f"{flag} {adapter_dir!r} is a PEFT adapter"
    hint = "pass --base_model PATH_OR_ID (the model the adapter was trained on)"
    try:
        with open(os.path.join(adapter_dir, ADAPTER_CONFIG), encoding="utf-8") as f:
            name = json.load(f).get("base_model_name_or_path")
    except Exception as e:  # noqa: BLE001 - broken JSON, not an object
        raise _unreadable(adapter_dir, ADAPTER_CONFIG, e, flag) from e
    if not name or not isinstance(name, str):
        raise CLIError(f"{where} whose {ADAPTER_CONFIG} names no base model; {hint}.")
    if os.path.isdir(name) and os.path.isfile(os.path.join(name, "config.json")):
        return name
    from ..utils import check_hub_repo, is_local_path

    if os.path.exists(name) or is_local_path(name):
        raise CLIError(f"{where} over {name!r} ({ADAPTER_CONFIG}), which is no model folder here; {hint}.")
    try:
        check_hub_repo(name, "model", "base_model")
    except ValueError as e:
        reason = " ".join(str(e).replace(f"`base_model` {name!r} ", "").split()).rstrip(".")
        raise CLIError(f"{where} over {name!r} ({ADAPTER_CONFIG}), which {reason}; {hint}.") from e
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name)
    except Exception as e:  # noqa: BLE001
        raise CLIError(
            f"{where} over {name!r}: downloading it from the Hub failed ({type(e).__name__}); {hint}."
        ) from e


def load_model(path: str, *, flag: str = "--model_dir", base_dir: str | None = None, base_flag: str = "--base_model",
               merge_adapter: bool = False, trainable: bool = False):  # fmt: skip
    """``(model, processing_class)`` from a model folder, or from an adapter folder over ``base_dir`` (a
    ``peft.PeftModel``, its adapter trainable when ``trainable``; merged into a plain model when ``merge_adapter``).

    Bad input is a one-line error before any file is written: an adapter whose weights do not all load into the
    base (another architecture, another number of labels) names ``base_flag``; a damaged adapter file names it.
    """
    if not is_adapter_dir(path):
        return _load_classifier(path, flag), _load_processing_class(path, flag)
    import peft
    import torch

    weights = [n for n in ("adapter_model.safetensors", "adapter_model.bin") if os.path.isfile(os.path.join(path, n))]
    if not weights:
        raise CLIError(f"{flag} {path!r} holds {ADAPTER_CONFIG} but no adapter_model.safetensors.")
    try:
        peft.PeftConfig.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - broken JSON, unknown PEFT type or fields
        raise _unreadable(path, ADAPTER_CONFIG, e, flag) from e
    try:
        stored = peft.utils.load_peft_weights(path, device="cpu")
    except Exception as e:  # noqa: BLE001 - truncated or corrupt weights
        raise _unreadable(path, weights[0], e, flag) from e
    base = _load_classifier(base_dir, base_flag)
    mismatch = f"{base_flag} {base_dir!r} does not fit the adapter in {flag} {path!r}"
    hint = "give the model the adapter was trained on (same architecture and labels)"
    try:
        with no_progress_bars(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peft's missing / unexpected key warnings: checked below
            model = peft.PeftModel.from_pretrained(base, path, is_trainable=trainable)
    except Exception as e:  # noqa: BLE001 - missing target modules, size mismatches
        reason = " ".join(str(e).split())
        size = re.search(r"size mismatch for (\S+): copying a param with shape torch.Size\((\[[^\]]*\])\) from "
                         r"checkpoint, the shape in current model is torch.Size\((\[[^\]]*\])\)", reason)  # fmt: skip
        if size:
            reason = f"size mismatch for {size[1]}: {size[2]} in the adapter, {size[3]} in the base model"
        raise CLIError(f"{mismatch} ({type(e).__name__}: {reason[:300]}); {hint}.") from e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapter_only = peft.get_peft_model_state_dict(model, save_embedding_layers=False)
        loaded = peft.get_peft_model_state_dict(model, save_embedding_layers=True)  # + embeddings saved beside it
    wrong = [k for k, v in stored.items() if k not in loaded or loaded[k].shape != v.shape]
    wrong += [k for k in adapter_only if k not in stored]
    if not wrong:
        wrong = [k for k, v in stored.items() if not torch.equal(loaded[k].to(v.dtype), v)]
    if wrong:
        raise CLIError(f"{mismatch}: adapter weight {wrong[0]!r} does not load into it; {hint}.")
    if merge_adapter:
        model = model.merge_and_unload()
    processing_class = _load_processing_class(path, flag)
    if processing_class is None:
        processing_class = _load_processing_class(base_dir, base_flag)
    return model, processing_class


def load_models(folders: Sequence[tuple[str, str]], base_model: str | None) -> list[tuple[Any, Any]]:
    """``(model, processing_class)`` for each ``(flag, resolved folder)``: adapter folders load over ``--base_model``,
    else over the base their ``adapter_config.json`` names. Every flag and base is checked before anything loads."""
    check_adapter_flags(folders, base_model)
    bases = [resolve_base_model(path, base_model, flag) if is_adapter_dir(path) else None for flag, path in folders]
    return [
        load_model(path, flag=flag, base_dir=base, base_flag=base_flag(base_model, flag))
        for (flag, path), base in zip(folders, bases, strict=True)
    ]


def parse_model_and_data(parser: HfUnlearnParser, argv: Sequence[str], what: str) -> tuple[Any, Any]:
    """``(arguments, DataArguments)`` of a command that reads a model on ``--dataset`` (required; ``what`` says what
    for), with ``--dataset``'s source checked before anything loads."""
    with parsing(parser):
        args, data_args = parser.parse(argv)
    need(data_args.dataset, "--dataset", what)
    check_sources(parser, dataset=data_args.dataset)
    return args, data_args


def load_data(parser: HfUnlearnParser, data_args: Any, model: Any, processing_class: Any) -> Any:
    """``--dataset``'s splits prepared for ``model`` (``data.prepare_splits``); bad data is a one-line CLIError."""
    from ..data import load_splits, prepare_splits

    with parsing(parser):
        return prepare_splits(load_splits(data_args), data_args, model, processing_class)


def write_json(path: str, record: dict) -> None:
    """Writes ``record`` as sorted, indented JSON through a temporary file (an interrupted write leaves no half file)."""
    import json

    from ..hub.publish import write_file

    write_file(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


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
