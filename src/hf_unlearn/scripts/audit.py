"""How deep is the forgetting? Probe, prototype attack and relearning of a model, against the original and retrained.

hf-unlearn audit --model_dir vit-digits-no3 --dataset digits --forget_classes 3
hf-unlearn audit --model_dir vit-digits-no3 --dataset digits --forget_classes 3 --original vit-digits \\
    --retrained vit-digits-retrained-s0 vit-digits-retrained-s1 vit-digits-retrained-s2
python -m hf_unlearn.scripts.audit --config audit.yaml

Prints one row per measure (the model, the original, the retrained models' range, and where the model stands) and
writes everything to ``--output_file`` (default ``forgetting_audit.json``). See ``hf_unlearn.audit_forgetting``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from .args import DataArguments, forget_classes_field, overwrite_output_file_field, required
from .common import (
    HfUnlearnParser,
    check_output_file,
    load_data,
    load_models,
    make_accelerator,
    need,
    parse_model_and_data,
    parsing,
    print_main,
    resolve_model_dir,
    run,
    write_json,
)

PROG = "hf-unlearn audit"
OUTPUT_FILE = "forgetting_audit.json"


@dataclass
class AuditArguments:
    """Models, classes and the audit's protocol."""

    model_dir: str | None = required(
        "Folder (or Hub id) of the model to audit, or of a PEFT adapter (see --base_model)."
    )
    forget_classes: list[str] = forget_classes_field()
    original: str | None = field(
        default=None,
        metadata={"help": "Folder (or Hub id) of the model before unlearning: sets the relearn-time target."},
    )
    retrained: list[str] = field(
        default_factory=list,
        metadata={"help": "Folders (or Hub ids) of models retrained without the classes: the reference range."},
    )
    base_model: str | None = field(
        default=None,
        metadata={
            "help": "For models given as PEFT adapter folders (adapter_config.json): folder (or Hub id) of the base "
            "model they load over (default: each adapter_config.json's base_model_name_or_path)."
        },
    )
    relearn_steps: list[int] = field(
        default_factory=lambda: [1, 3, 10], metadata={"help": "Relearn steps at which forget accuracy is read."}
    )
    relearn_lr: float = field(default=1e-3, metadata={"help": "Adam learning rate of the relearn steps."})
    relearn_max_steps: int | None = field(
        default=None, metadata={"help": "Cap of the relearn-time measurement (default: the largest --relearn_steps)."}
    )
    max_probe_samples: int | None = field(
        default=20000, metadata={"help": "Training samples the linear probe is fitted on (a seeded random subset)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of every random choice (same seed, same numbers)."})
    batch_size: int = field(default=64, metadata={"help": "Samples per forward pass."})
    output_file: str = field(default=OUTPUT_FILE, metadata={"help": "JSON file to write the audit to."})
    overwrite_output_file: bool = overwrite_output_file_field()


def make_parser(prog: str = PROG) -> HfUnlearnParser:
    return HfUnlearnParser(
        (AuditArguments, DataArguments),
        prog,
        "How deep is the forgetting? A linear probe on the features, a head-rewrite (prototype) attack and a few "
        "relearn steps tell a class that is gone from a class only hidden at the output; with --retrained models "
        "each number is placed against retraining.\n\n"
        "  hf-unlearn audit --model_dir vit-no3 --dataset digits --forget_classes 3 --original vit \\\n"
        "      --retrained vit-retrained-s0 vit-retrained-s1 vit-retrained-s2",
        required=("dataset",),
        groups=[
            (
                "model, data and classes",
                ["model_dir", "dataset", "forget_classes", "original", "retrained", "base_model"],
            )
        ],
    )


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: audit(a, prog), argv)


def audit(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    args, data_args = parse_model_and_data(parser, argv, "the data set to audit on (its train and test splits).")
    need(args.forget_classes, "--forget_classes", "the classes whose forgetting is audited.")
    check_output_file(args.output_file, overwrite=args.overwrite_output_file)
    # every folder is checked before anything is loaded
    folders = [("--model_dir", resolve_model_dir(args.model_dir))]
    if args.original:
        folders.append(("--original", resolve_model_dir(args.original, "--original")))
    folders += [("--retrained", resolve_model_dir(p, "--retrained")) for p in args.retrained]
    models = load_models(folders, args.base_model)
    model, processing_class = models[0]
    original = models[1][0] if args.original else None
    retrained = [m for m, _ in models[2 if args.original else 1 :]]

    from ..audit import audit_forgetting

    accelerator = make_accelerator(model, original, *retrained)
    data = load_data(parser, data_args, model, processing_class)
    with parsing(parser):
        result = audit_forgetting(
            model,
            forget_classes=args.forget_classes,
            train_dataset=data.train,
            eval_dataset=data.test,
            data_collator=data.collator,
            original=original,
            retrained=retrained,
            relearn_steps=args.relearn_steps,
            relearn_lr=args.relearn_lr,
            relearn_max_steps=args.relearn_max_steps,
            max_probe_samples=args.max_probe_samples,
            seed=args.seed,
            batch_size=args.batch_size,
            accelerator=accelerator,
        )
    if result is None:  # not the main process
        return 0
    record = result.to_dict()
    record.update(
        model_dir=args.model_dir,
        original_dir=args.original,
        retrained_dirs=list(args.retrained),
        dataset=data.name,
        train_split=data_args.train_split,
        test_split=data_args.test_split,
    )
    print_main(
        accelerator,
        f"How deep is the forgetting of {', '.join(result.forget_labels)} in {args.model_dir} "
        f"({data.name}: {len(data.train)} train / {len(data.test)} test samples)?",
        "",
        result.to_markdown(),
        "",
        f"Wrote {args.output_file}",
    )
    write_json(args.output_file, record)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hf_unlearn.scripts.audit"))
