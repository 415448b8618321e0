"""Forget / retain / test accuracy (A_F, E_F, A_R) of a model on a data set, and membership inference.

hf-unlearn evaluate --model_dir vit-digits-no3 --dataset digits --forget_classes 3 --mia
hf-unlearn evaluate --model_dir vit-digits --dataset digits --forget_classes 3 --output_file before.json
python -m hf_unlearn.scripts.evaluate --config evaluate.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .args import DataArguments, EvaluateArguments
from .common import (
    HfUnlearnParser,
    check_output_file,
    load_data,
    load_models,
    make_accelerator,
    metrics_table,
    parse_model_and_data,
    parsing,
    print_main,
    resolve_model_dir,
    run,
    write_json,
)

PROG = "hf-unlearn evaluate"


def make_parser(prog: str = PROG) -> HfUnlearnParser:
    return HfUnlearnParser(
        (EvaluateArguments, DataArguments),
        prog,
        "Forget / retain / test accuracy (A_F, E_F, A_R) of a model on a data set, and optionally the "
        "membership-inference AUC on the forgotten classes.\n\n"
        "  hf-unlearn evaluate --model_dir vit-digits-no3 --dataset digits --forget_classes 3 --mia",
        required=("dataset",),
        groups=[("model, data and classes", ["model_dir", "base_model", "dataset", "forget_classes"])],
    )


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: evaluate(a, prog), argv)


def evaluate(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    args, data_args = parse_model_and_data(parser, argv, "the data set to evaluate on.")
    if args.output_file:
        check_output_file(args.output_file, overwrite=args.overwrite_output_file)
    [(model, processing_class)] = load_models([("--model_dir", resolve_model_dir(args.model_dir))], args.base_model)

    from ..evaluation import evaluate_unlearning
    from ..utils import id2label_of, resolve_classes

    with parsing(parser):
        resolve_classes(args.forget_classes, id2label_of(model), "forget_classes")
    accelerator = make_accelerator(model)
    data = load_data(parser, data_args, model, processing_class)
    with parsing(parser):
        metrics = evaluate_unlearning(
            model,
            data.test,
            args.forget_classes,
            train_dataset=data.train if args.mia else None,
            data_collator=data.collator,
            batch_size=args.batch_size,
            score=args.mia_score,
            accelerator=accelerator,
        )
    forget_labels = [id2label_of(model)[c] for c in metrics["forget_classes"]]
    metrics.update(model_dir=args.model_dir, dataset=data.name, split=data_args.test_split)
    print_main(
        accelerator,
        f"{args.model_dir} on {data.name} ({data_args.test_split} split, {len(data.test)} samples)",
        "",
        metrics_table(None, metrics, forget_labels),
    )
    if args.output_file and accelerator.is_main_process:
        write_json(args.output_file, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hf_unlearn.scripts.evaluate"))
