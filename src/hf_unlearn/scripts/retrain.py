"""Retrain references: the trained model trained again without the forgotten classes, N seeds, for the audit.

    hf-unlearn retrain --model_dir vit-digits --dataset digits --forget_classes 3 --output_dir refs-no3 --num_seeds 3
    hf-unlearn audit --model_dir vit-digits-no3 --dataset digits --forget_classes 3 --original vit-digits \
        --retrained refs-no3/seed-0 refs-no3/seed-1 refs-no3/seed-2

Each reference starts from the checkpoint the trained model started from and follows its recipe (its folder's
``training_args.json``, written by ``hf-unlearn train`` / ``MnemonicTrainer``, or ``training_args.bin``; flags given
here override it), on the same training data without the rows of the forgotten classes, keeping every label. Folders
``seed-0 .. seed-(N-1)`` under --output_dir; a folder already holding references of the same starting checkpoint,
data, forget set and recipe is reused without training.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from .args import DataArguments, forget_classes_field, required
from .common import (
    HfUnlearnParser,
    check_sources,
    load_data,
    load_model,
    parsing,
    print_main,
    resolve_model_dir,
    run,
)

PROG = "hf-unlearn retrain"


@dataclass
class RetrainArguments:
    """Model, classes and references."""

    model_dir: str | None = required(
        "Folder (or Hub id) of the trained model (before unlearning): its labels, recipe and starting checkpoint are "
        "read from it."
    )
    forget_classes: list[str] = forget_classes_field(
        "The classes to leave out: ids or label names (--forget_classes 3 5)."
    )
    output_dir: str | None = required("Folder of the references: one seed-i folder per seed.")
    num_seeds: int = field(default=3, metadata={"help": "How many references (seeds) to train."})
    base_model: str | None = field(
        default=None,
        metadata={
            "help": "The checkpoint training started from (folder, Hub id, 'tiny-vit' or 'minilm'), when --model_dir "
            "does not record it (a model trained from a local folder does not) or to override it."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace seed-i folders holding references of another model, data, forget set or recipe."},
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "No progress bars."})


@dataclass
class RecipeArguments:
    """The recipe: read from --model_dir's training_args.json (or training_args.bin); a flag given here overrides it."""

    learning_rate: float | None = field(default=None, metadata={"help": "Learning rate."})
    num_train_epochs: float | None = field(default=None, metadata={"help": "Training epochs."})
    max_steps: int | None = field(default=None, metadata={"help": "Training steps (overrides the epochs)."})
    per_device_train_batch_size: int | None = field(default=None, metadata={"help": "Batch size per device."})
    gradient_accumulation_steps: int | None = field(default=None, metadata={"help": "Gradient accumulation steps."})
    weight_decay: float | None = field(default=None, metadata={"help": "Weight decay."})
    warmup_steps: float | None = field(default=None, metadata={"help": "Warm-up steps (a float < 1: a fraction)."})
    lr_scheduler_type: str | None = field(default=None, metadata={"help": "Learning-rate schedule, e.g. linear."})
    seed: int | None = field(default=None, metadata={"help": "Seed of the first reference (seed i: this + i)."})
    mnemonic_mix_ratio: float | None = field(default=None, metadata={"help": "t_mix of the mnemonic codes."})

    def overrides(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


def make_parser(prog: str = PROG) -> HfUnlearnParser:
    return HfUnlearnParser(
        (RetrainArguments, RecipeArguments, DataArguments),
        prog,
        "Train reference models without the forgotten classes (same start, same recipe, every label kept), one "
        "per seed, for `hf-unlearn audit --retrained`.\n\n  hf-unlearn retrain --model_dir vit-digits --dataset digits "
        "--forget_classes 3 --output_dir refs-no3 --num_seeds 3",
        usage="%(prog)s --model_dir DIR --dataset DATASET --forget_classes C [C ...] --output_dir DIR "
        "[--num_seeds N] [--base_model START] [any flag below ...]",
        required=("dataset",),
    )


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: retrain(a, prog), argv)


def retrain(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    flags = parser.parse_namespace(argv)
    check_sources(parser, dataset=flags.dataset)
    with parsing(parser):
        script, recipe, data_args = parser.make_dataclasses()
        if script.num_seeds < 1:
            raise ValueError(f"`num_seeds` must be >= 1, got {script.num_seeds}.")
    model_dir = resolve_model_dir(script.model_dir)

    from ..retrain import RETRAIN_INFO_FILE, _read_info, retrain_without

    model, processing_class = load_model(model_dir)
    data = load_data(parser, data_args, model, processing_class)
    with parsing(parser):
        folders = [os.path.join(script.output_dir, f"seed-{i}") for i in range(script.num_seeds)]
        before = {f: (_read_info(f) or {}).get("fingerprint") for f in folders}
        folders = retrain_without(
            model_dir,
            data.train,
            script.forget_classes,
            script.output_dir,
            num_seeds=script.num_seeds,
            base_model=script.base_model,
            recipe=recipe.overrides(),
            data_collator=data.collator,
            processing_class=processing_class,
            overwrite_output_dir=script.overwrite_output_dir,
            trainer_kwargs={"disable_tqdm": script.disable_tqdm},
        )
    after = {f: (_read_info(f) or {}).get("fingerprint") for f in folders}
    cached = [f for f in folders if before[f] is not None and before[f] == after[f]]
    names = (_read_info(folders[0]) or {}).get("forget_classes", script.forget_classes)
    print_main(
        None,
        f"{len(folders)} references without {names} in {script.output_dir} "
        f"({len(folders) - len(cached)} trained, {len(cached)} reused from the cache; see {RETRAIN_INFO_FILE})",
        "audit against them with: --retrained " + " ".join(folders),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hf_unlearn.scripts.retrain"))
