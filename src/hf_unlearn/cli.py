"""The ``hf-unlearn`` command: train with mnemonic codes, forget classes, evaluate, publish, and a one-command demo.

    hf-unlearn demo                                    # offline: train a small ViT on digits, forget class 3
    hf-unlearn train --model tiny-vit --dataset digits --output_dir vit-digits --num_train_epochs 30
    hf-unlearn forget --model_dir vit-digits --forget_classes 3 --dataset digits --output_dir vit-digits-no3
    hf-unlearn evaluate --model_dir vit-digits-no3 --dataset digits --forget_classes 3 --mia
    hf-unlearn push --folder vit-digits-no3 --repo_id user/vit-digits-no3

Each command is the script ``hf_unlearn.scripts.<command>`` (also runnable as ``python -m``); this module only
dispatches. Every command also runs under ``accelerate launch`` (``-m hf_unlearn.cli forget ...``); only the main
process prints or writes files. Every error is one line on stderr: status 2 for what the user gave (the flag, file or
condition named, checked before any work), 1 for a run that failed (a push the Hub refused, a forgetting that could
not be verified, anything unexpected: ``HF_UNLEARN_TRACEBACK=1`` shows its traceback), 130 after Ctrl-C.

A new command is a module ``hf_unlearn.scripts.<name>`` with ``main(argv, prog)`` (see ``scripts.common.run``) and
one line in ``hf_unlearn.scripts.COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .scripts import COMMANDS

USAGE = (
    "usage: hf-unlearn <command> [flags]\n\n"
    "Make a transformers classifier forget whole classes (mnemonic codes + Fisher), and publish the result.\n\n"
    "commands:\n"
    + "\n".join(f"  {name:<10}{help_}" for name, help_ in COMMANDS.items())
    + "\n\nRun `hf-unlearn <command> --help` for its flags (--output_dir or --output-dir: both spellings work); every "
    "command takes\n--config file.yaml (flags given on the command line win). Every command also runs under "
    "`accelerate launch`, e.g.\n"
    "  accelerate launch --multi_gpu --num_processes 2 -m hf_unlearn.cli forget --model_dir ... --forget_classes 3"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hf-unlearn`` console script; returns the exit status.

    Called with ``argv`` (from Python, e.g. in tests) it leaves the logging setup alone; called without (the console
    script) it shows hf_unlearn's INFO messages on the main process.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        print(f"hf-unlearn {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"hf-unlearn: error: unknown command {name!r}; choose from {', '.join(COMMANDS)} (see hf-unlearn --help)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        if argv is None:
            from .scripts.common import setup_logging

            setup_logging()
        script = importlib.import_module(f"hf_unlearn.scripts.{name}")
    except KeyboardInterrupt:  # while torch and transformers load
        print(f"hf-unlearn {name}: interrupted (Ctrl-C) before it started.", file=sys.stderr)
        return 130
    return script.main(rest, prog=f"hf-unlearn {name}")


if __name__ == "__main__":
    sys.exit(main())
