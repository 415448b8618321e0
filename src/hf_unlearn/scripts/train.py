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

import sys
from collections.abc import Sequence

from .args import DataArguments, TrainArguments
from .common import (
    CLIError,
    DataclassArgumentParser,
    check_output_dir,
    check_sources,
    mnemonic_config_fields,
    parsing,
    replaced_output_dir,
    run,
)

PROG = "hf-unlearn train"
# The flags most runs set, shown first in --help (the other TrainingArguments flags follow).
MAIN_TRAINING_FLAGS = (
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
OUTPUT_FLAGS = {"output_dir", "overwrite_output_dir"}


def make_parser(prog: str = PROG) -> DataclassArgumentParser:
    main_group = "model, data and the main training flags"
    parser = DataclassArgumentParser(
        (TrainArguments, DataArguments),
        prog,
        "Train a classifier with mnemonic codes (MnemonicTrainer); every MnemonicConfig / TrainingArguments field is "
        "a flag.\n\n  hf-unlearn train --model tiny-vit --dataset digits --output_dir vit-digits --num_train_epochs 30 "
        "--learning_rate 2e-3",
        groups=[(main_group, ["model", "dataset"])],
        defaults={"dataset": "digits"},
        usage="%(prog)s --output_dir DIR [--model MODEL] [--dataset DATASET] [--num_train_epochs N] "
        "[--learning_rate LR] [--mnemonic_mix_ratio T_MIX] [any flag below ...]",
    )
    fields = {f["name"]: f for f in mnemonic_config_fields()}
    fields["output_dir"] = {**fields["output_dir"], "required": True, "help": "Folder to save the model and codes."}
    fields["overwrite_output_dir"] = {
        "name": "overwrite_output_dir",
        "kind": "bool",
        "default": "False",
        "help": "Allow an --output_dir that is not empty: it is replaced whole by the new model (no old file is "
        "left in it); if training fails the old folder is kept as it was.",
    }
    main = [fields[n] for n in MAIN_TRAINING_FLAGS if n in fields]
    parser.add_passthrough_arguments(main, parser.named_groups[main_group])
    mnemonic = [f for n, f in fields.items() if n.startswith("mnemonic_") and n not in MAIN_TRAINING_FLAGS]
    parser.add_passthrough_arguments(mnemonic, parser.add_argument_group("mnemonic codes (MnemonicConfig)"))
    rest = [f for n, f in fields.items() if not n.startswith("mnemonic_") and n not in MAIN_TRAINING_FLAGS]
    parser.add_passthrough_arguments(
        rest,
        parser.add_argument_group(
            "every other TrainingArguments flag",
            "As in transformers, except: --report_to none, and --use_cpu when there is no GPU.",
        ),
    )
    return parser


def _training_args(parser: DataclassArgumentParser):
    """The MnemonicConfig of the pass-through flags, parsed by HfArgumentParser (errors name the flag)."""
    import torch
    from transformers import HfArgumentParser

    from ..mnemonic import MnemonicConfig

    class _HfParser(HfArgumentParser):
        def error(self, message: str):
            raise CLIError(f"{message} (see `{parser.prog} --help`)")

    argv = parser.passthrough_argv()
    overwrite = "--overwrite_output_dir" in argv
    if overwrite:
        i = argv.index("--overwrite_output_dir")
        overwrite = argv[i + 1] == "true"
        del argv[i : i + 2]
    hf_parser = _HfParser((MnemonicConfig,))
    # Without use_cpu on a machine with no GPU, each process of a multi-process launch believes it is alone.
    hf_parser.set_defaults(report_to="none", use_cpu=not torch.cuda.is_available())
    with parsing(parser):
        (args,) = hf_parser.parse_args_into_dataclasses(args=argv)
        if not args.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0, got {args.learning_rate}.")
        if args.max_steps <= 0 and not args.num_train_epochs > 0:
            raise ValueError(f"`num_train_epochs` must be > 0 (or `max_steps` set), got {args.num_train_epochs}.")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(args, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(args, name)}.")
    return args, overwrite


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: train(a, prog), argv)


def train(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    with parsing(parser):
        script, data_args = parser.parse(argv)
    check_sources(parser, model=script.model, dataset=data_args.dataset)
    args, overwrite = _training_args(parser)
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
    # --overwrite_output_dir replaces the folder whole (an old model's files are not left beside the new one); the
    # old folder comes back if training fails. Resuming keeps the folder: its checkpoints are the input.
    with replaced_output_dir(args.output_dir, replace=overwrite and not args.resume_from_checkpoint):
        with parsing(parser):  # the checks MnemonicTrainer makes when training starts
            result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
        trainer.save_model()
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
