"""Train a classifier with mnemonic codes (MnemonicTrainer), so that it can later forget classes in one shot.

    hf-unlearn train --model tiny-vit --dataset digits --output_dir vit-digits --num_train_epochs 30 \
        --learning_rate 2e-3 --per_device_train_batch_size 16 --mnemonic_mix_ratio 0.1
    hf-unlearn train --model minilm --dataset trec --data_dir path/to/trec --output_dir minilm-trec \
        --num_train_epochs 2 --learning_rate 5e-5
    python -m hf_unlearn.scripts.train --config train.yaml
    accelerate launch --multi_gpu --num_processes 2 -m hf_unlearn.scripts.train --output_dir vit-digits ...

Every MnemonicConfig / TrainingArguments field is a flag. The folder written holds the model, its image processor
or tokenizer, and its mnemonic codes: what ``hf-unlearn forget`` needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from .args import DataArguments, TrainArguments
from .common import (
    HfUnlearnParser,
    check_output_dir,
    check_sources,
    parsing,
    run,
    staged_output_dir,
)

PROG = "hf-unlearn train"
# The flags most runs set, shown first in --help (the other TrainingArguments flags follow).
MAIN_TRAINING_FLAGS = (
    "model",
    "dataset",
    "output_dir",
    "overwrite_output_dir",
    "num_train_epochs",
    "learning_rate",
    "per_device_train_batch_size",
    "mnemonic_mix_ratio",
    "seed",
    "push_to_hub",
    "hub_model_id",
)


@dataclass
class OutputArguments:
    """Output folder."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Allow an --output_dir that is not empty: it is replaced whole by the new model (no old file is "
            "left in it); if training fails the old folder is kept as it was."
        },
    )


def make_parser(prog: str = PROG) -> HfUnlearnParser:
    import torch

    from ..mnemonic import MnemonicConfig

    mnemonic = [f.name for f in fields(MnemonicConfig) if f.name.startswith("mnemonic_")]
    parser = HfUnlearnParser(
        (TrainArguments, DataArguments, OutputArguments, MnemonicConfig),
        prog,
        "Train a classifier with mnemonic codes (MnemonicTrainer); every MnemonicConfig / TrainingArguments field is "
        "a flag.\n\n  hf-unlearn train --model tiny-vit --dataset digits --output_dir vit-digits --num_train_epochs 30 "
        "--learning_rate 2e-3",
        groups=[("model, data and the main training flags", MAIN_TRAINING_FLAGS), ("mnemonic codes", mnemonic)],
        titles={
            MnemonicConfig: "every other TrainingArguments flag (as in transformers, except: --report_to none, "
            "and --use_cpu when there is no GPU)"
        },  # fmt: skip
        required=("output_dir",),
        # Without use_cpu on a machine with no GPU, each process of a multi-process launch believes it is alone.
        defaults={"dataset": "digits", "report_to": "none", "use_cpu": not torch.cuda.is_available()},
        usage="%(prog)s --output_dir DIR [--model MODEL] [--dataset DATASET] [--num_train_epochs N] "
        "[--learning_rate LR] [--mnemonic_mix_ratio T_MIX] [any flag below ...]",
    )
    output_dir = parser.field_actions["output_dir"]
    output_dir.metavar, output_dir.help = "DIR", "Folder to save the model and codes."
    return parser


def _check_training_args(args) -> None:
    """What TrainingArguments accepts but no training can use, refused naming the field."""
    if not args.learning_rate > 0:
        raise ValueError(f"`learning_rate` must be > 0, got {args.learning_rate}.")
    if args.max_steps <= 0 and not args.num_train_epochs > 0:
        raise ValueError(f"`num_train_epochs` must be > 0 (or `max_steps` set), got {args.num_train_epochs}.")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"`{name}` must be >= 1, got {getattr(args, name)}.")


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: train(a, prog), argv)


def train(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    flags = parser.parse_namespace(argv)
    check_sources(parser, model=flags.model, dataset=flags.dataset)
    with parsing(parser):
        script, data_args, output, args = parser.make_dataclasses()
        _check_training_args(args)
    overwrite = output.overwrite_output_dir
    # resuming reads the checkpoints in output_dir: a non-empty folder is expected then
    check_output_dir(args.output_dir, overwrite=overwrite or bool(args.resume_from_checkpoint))

    import numpy as np

    from ..data import build_model, load_splits, prepare_splits
    from ..mnemonic import MnemonicTrainer

    with parsing(parser):
        raw = load_splits(data_args)
        model, processing_class = build_model(
            script.model,
            raw,
            seed=args.seed,
            tiny_vit_hidden_size=script.tiny_vit_hidden_size,
            tiny_vit_num_hidden_layers=script.tiny_vit_num_hidden_layers,
            tiny_vit_image_size=script.tiny_vit_image_size,
        )
        data = prepare_splits(raw, data_args, model, processing_class)

    def accuracy(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    # Training writes into a staging folder beside --output_dir, swapped into place once the model is saved: the old
    # folder (replaced whole with --overwrite_output_dir) stays where it was until then, whatever stops the run.
    # Resuming trains in place: the checkpoints in the folder are the input.
    with staged_output_dir(args, enabled=not args.resume_from_checkpoint):
        with parsing(parser):
            trainer = MnemonicTrainer(
                model=model,
                args=args,
                train_dataset=data.train,
                eval_dataset=data.test,
                data_collator=data.collator,
                processing_class=processing_class,
                compute_metrics=accuracy,
            )
        if script.model in ("tiny-vit", "minilm") or not os.path.exists(script.model):  # never a local path
            trainer.start_model = {"model": script.model}  # training_args.json: `hf-unlearn retrain` starts there
        is_main = trainer.is_world_process_zero()
        if is_main:
            import logging

            logging.getLogger("hf_unlearn.scripts").info(
                "Training %s on %s (%d train / %d test, %d classes), t_mix %s, %d process(es)",
                script.model,
                data.name,
                len(data.train),
                len(data.test),
                len(data.id2label),
                args.mnemonic_mix_ratio,
                args.world_size,
            )
        with parsing(parser):  # the checks MnemonicTrainer makes when training starts
            result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
        trainer.save_model()
        trainer.save_state()  # trainer_state.json: the run's length, which the rows recipe (neggrad_plus) scales by
    metrics = trainer.evaluate()
    if is_main:
        print(
            f"trained in {result.metrics.get('train_runtime', 0):.1f} s; test accuracy {metrics['eval_accuracy']:.4f}; "
            f"saved model + mnemonic codes to {args.output_dir}",
            flush=True,
        )
    if args.push_to_hub:
        trainer.push_to_hub()
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hf_unlearn.scripts.train"))
