"""Make a trained model forget whole classes (FisherUnlearner), and save or push it with its report and model card.

    hf-unlearn forget --model_dir vit-digits --forget_classes 3 --dataset digits --output_dir vit-digits-no3
    hf-unlearn forget --model_dir vit-digits --forget_classes 3 5 --method fisher_mask --dataset digits \
        --output_dir vit-digits-no35 --mia
    python -m hf_unlearn.scripts.forget --config forget.yaml
    accelerate launch --multi_gpu --num_processes 2 -m hf_unlearn.scripts.forget --model_dir vit-digits ...
    hf-unlearn forget --model_dir vit-digits --forget_scope samples --method fisher_mask --forget_rows rows.txt \
        --dataset digits --output_dir vit-digits-fixed

A PEFT adapter folder (adapter_config.json, as hf_unlearn saves a PEFT model) loads over --base_model (default: the
base its adapter_config.json names); only its adapter weights are edited and the result is saved as an adapter, or,
with --merge_adapter, the adapter is merged into the base first and a full model is saved:

    hf-unlearn forget --model_dir vit-lora --base_model vit-base --forget_classes 3 --output_dir vit-lora-no3

With --forget_scope samples the rows to forget come from --forget_rows (a file of train-split row indices, or of ids
matched against --id_column) or --forget_column (a boolean column); the retain set is the rest of the train split, and
the report and card name the rows only by count and fingerprint.

Every UnlearningConfig field is a flag, and so is every setting of a method (its config class: ``--mask_ratio`` for
fisher_mask, ``--ssd_alpha`` for ssd, ...), grouped by method in ``--help``; a setting of a method other than
``--method`` is refused. In a ``--config`` file the settings go under ``method_config:``:

    method: fisher_mask
    forget_classes: [3]
    method_config:
      mask_ratio: 0.05

The mnemonic method needs no data (the model's codes); the others take their
forget and retain samples from --dataset's train split. With --dataset, the test split measures the result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..unlearning_config import UnlearningConfig
from .args import DataArguments, ForgetArguments
from .common import (
    CLIError,
    HfUnlearnParser,
    base_flag,
    check_adapter_flags,
    check_output_dir,
    check_sources,
    incomplete_is_failure,
    is_adapter_dir,
    load_codebook,
    load_model,
    make_accelerator,
    metrics_table,
    no_progress_bars,
    parsing,
    print_main,
    push_errors,
    resolve_base_model,
    resolve_model_dir,
    run,
)

PROG = "hf-unlearn forget"


def make_parser(prog: str = PROG) -> HfUnlearnParser:
    from ..methods import METHOD_CONFIGS

    return HfUnlearnParser(
        (ForgetArguments, UnlearningConfig, DataArguments),
        prog,
        "Make a trained model forget whole classes (FisherUnlearner); every UnlearningConfig field is a flag, and "
        "every setting of the chosen --method (grouped by method below).\n\n"
        "  hf-unlearn forget --model_dir vit-digits --forget_classes 3 --dataset digits --output_dir vit-digits-no3",
        groups=[
            (
                "what to forget, from which model, into which folder",
                [
                    "model_dir",
                    "base_model",
                    "merge_adapter",
                    "forget_classes",
                    "forget_scope",
                    "forget_rows",
                    "id_column",
                    "forget_column",
                    "output_dir",
                ],
            )
        ],
        settings=[(f"--method {name}", config_cls) for name, config_cls in METHOD_CONFIGS.items()],
        settings_field="method_config",
    )


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: forget(a, prog), argv)


def forget(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    flags = parser.parse_namespace(argv)
    # where the model and data come from, before the checks below import torch: a missing network fails at once
    check_sources(parser, dataset=flags.dataset)
    model_dir = resolve_model_dir(flags.model_dir)
    with parsing(parser):
        script, config, data_args = parser.make_dataclasses()
    if script.push_to_hub:
        from ..utils import check_push_target

        with parsing(parser):
            check_push_target(script.push_to_hub)
    from ..methods import METHODS

    method = METHODS[config.method]
    samples = config.forget_scope == "samples"
    if samples:
        if script.forget_rows is None and script.forget_column is None:
            raise CLIError(
                "--forget_scope samples needs --forget_rows FILE or --forget_column NAME (the rows to forget)."
            )
        if data_args.dataset is None:
            raise CLIError("--forget_scope samples needs --dataset (its train split holds the rows to forget).")
        if script.mia:
            raise CLIError(
                "--mia is for classes; with --forget_scope samples the report always holds the rows' MIA AUC."
            )
    else:
        if script.forget_rows is not None or script.forget_column is not None:
            raise CLIError("--forget_rows / --forget_column need --forget_scope samples.")
        if not config.forget_classes:
            raise CLIError(f"--forget_classes is required (see `{prog} --help`)")
    needs_data = method.requires_forget_data or method.requires_retain_data
    if needs_data and data_args.dataset is None:
        raise CLIError(f"--dataset is required for --method {config.method} (its forget and retain data).")
    if script.mia and data_args.dataset is None:
        raise CLIError("--mia needs --dataset (its train split holds the members to attack).")
    # a PEFT adapter folder loads over its base model (--base_model, else its adapter_config.json's)
    check_adapter_flags([("--model_dir", model_dir)], script.base_model, script.merge_adapter)
    base_dir = resolve_base_model(model_dir, script.base_model) if is_adapter_dir(model_dir) else None
    check_output_dir(script.output_dir, overwrite=script.overwrite_output_dir, input_dir=model_dir)
    if base_dir is not None and os.path.realpath(script.output_dir) == os.path.realpath(base_dir):
        raise CLIError(f"--output_dir {script.output_dir!r} is the folder of the adapter's base model; give another.")
    model, processing_class = load_model(
        model_dir,
        base_dir=base_dir,
        base_flag=base_flag(script.base_model),
        merge_adapter=script.merge_adapter,
        trainable=True,
    )
    try:  # an adapter's own codes, else its base model's
        codebook = load_codebook(model_dir)
        if codebook is None and base_dir is not None:
            codebook = load_codebook(base_dir, base_flag(script.base_model))
            if codebook is not None:
                import logging

                logging.getLogger("hf_unlearn.scripts").info(
                    "Using the mnemonic codes of the base model %s.", base_dir
                )
    except CLIError:
        if method.requires_codebook:
            raise
        # a method that needs no codes works without a damaged codebook
        codebook = None
        import logging

        logging.getLogger("hf_unlearn.scripts").warning(
            "The mnemonic codes in %s could not be read; --method %s goes on without them.", model_dir, config.method
        )
    if method.requires_codebook and codebook is None:
        from ..mnemonic.codebook import CODES_CONFIG_FILE, CODES_FILE

        present = [f for f in (CODES_FILE, CODES_CONFIG_FILE) if os.path.isfile(os.path.join(model_dir, f))]
        missing = [f for f in (CODES_FILE, CODES_CONFIG_FILE) if f not in present]
        what = (
            f"no mnemonic codes ({' and '.join(missing)})"
            if not present
            else f"{present[0]} but not {missing[0]}, which the codes need"
        )
        raise CLIError(
            f"--model_dir {model_dir!r} holds {what}: train it with `hf-unlearn train` / MnemonicTrainer (or put "
            "back the missing file), or use --method fisher_mask, ssd or fisher_noise with --dataset."
        )
    from ..data import load_splits, prepare_splits
    from ..data_utils import split_by_classes
    from ..evaluation import mia_auc_on_forget
    from ..unlearner import FisherUnlearner
    from ..utils import id2label_of, resolve_classes

    with parsing(parser):
        forget_ids = [] if samples else resolve_classes(config.forget_classes, id2label_of(model), "forget_classes")
    accelerator = make_accelerator(model)
    data = rows = None
    if data_args.dataset is not None:
        with parsing(parser):
            raw = load_splits(data_args)
            if samples:  # read the rows from the raw split: preprocessing drops the id and flag columns
                rows = _rows_to_forget(script, raw.train, data_args.max_train_samples)
            data = prepare_splits(raw, data_args, model, processing_class)
    forget_ds = retain_ds = None
    if samples:
        from ..samples import split_rows

        with parsing(parser):
            forget_ds, retain_ds, _, _ = split_rows(data.train, rows)
    elif data is not None and needs_data:  # optional forget data (uses_forget_data) is not given: the data set
        forget_ds, retain_ds = split_by_classes(data.train, forget_ids, "dataset")  # only measures the result
        if not method.requires_retain_data:
            retain_ds = None
    print_main(accelerator, f"forget: {accelerator.num_processes} process(es) on {accelerator.device.type}")
    mia = dict(data_collator=data.collator, batch_size=script.batch_size, accelerator=accelerator) if data else {}
    mia_before = mia_auc_on_forget(model, data.train, data.test, forget_ids, **mia) if script.mia else None
    unlearner = FisherUnlearner(config, accelerator)
    with parsing(parser), incomplete_is_failure(parser):
        report = unlearner.unlearn(
            model,
            codebook=codebook,
            forget_dataset=forget_ds,
            retain_dataset=retain_ds,
            data_collator=data.collator if data else None,
            eval_dataset=data.test if data else None,
        )
    if script.mia:
        report.metrics["before"]["mia_auc"] = mia_before
        report.metrics["after"]["mia_auc"] = mia_auc_on_forget(model, data.train, data.test, forget_ids, **mia)
    if data is not None:
        report.details["eval_dataset"] = f"{data.name} ({data_args.test_split} split, {len(data.test)} samples)"
    save = dict(
        processing_class=processing_class,
        include_codebook=script.include_codebook,
        overwrite_output_dir=script.overwrite_output_dir,
    )
    with no_progress_bars(), push_errors(), parsing(parser):
        if script.push_to_hub:
            url = unlearner.push_to_hub(
                script.push_to_hub, model, private=script.hub_private_repo, output_dir=script.output_dir, **save
            )
        else:
            unlearner.save_pretrained(script.output_dir, model, **save)
    if samples:
        rows_info = report.details["forget_rows"]
        what = f"{rows_info['count']} training rows (fingerprint {rows_info['fingerprint'][:16]})"
    else:
        what = str(report.forget_labels)
    lines = [
        f"forgot {what} with {report.method} in {report.timings['total']:.3f} s "
        f"({report.num_parameters_changed:,} of {report.num_parameters_total:,} weights changed)"
    ]
    if samples and report.metrics:
        b, a = report.metrics["before"], report.metrics["after"]
        lines += [""] + [
            f"{name:<28}{b[key]:>8.3f} -> {a[key]:.3f}"
            for name, key in (
                ("forget-row accuracy", "forget_rows_accuracy"),
                ("held-out accuracy", "heldout_accuracy"),
                ("MIA AUC forget vs held-out", "mia_auc"),
            )
        ]
        lines += [f"verification: {report.details['verification']} ({report.details['verification_reason']})", ""]
    elif report.metrics:
        lines += ["", metrics_table(report.metrics["before"], report.metrics["after"], report.forget_labels), ""]
    lines.append(f"saved to {script.output_dir}")
    if script.push_to_hub:
        lines.append(f"pushed to {script.push_to_hub}: {url}")
    print_main(accelerator, *lines)
    return 0


def _rows_to_forget(script, train, max_train_samples) -> list[int]:
    """The train split's rows named by --forget_rows (indices or --id_column ids) or flagged by --forget_column."""
    from ..samples import read_rows_file

    if max_train_samples is not None and max_train_samples < len(train):
        train = train.select(range(max_train_samples))  # the rows prepare_splits keeps
    columns = list(train.column_names)
    for flag, name in (("id_column", script.id_column), ("forget_column", script.forget_column)):
        if name is not None and name not in columns:
            raise ValueError(f"`{flag}` {name!r} is not a column of the train split (columns: {columns}).")
    if script.forget_rows is not None:
        ids = None if script.id_column is None else train.with_format(None)[script.id_column]
        return read_rows_file(script.forget_rows, ids, argument="forget_rows")
    flags = train.with_format(None)[script.forget_column]
    bad = [v for v in flags if not isinstance(v, bool) and v not in (0, 1)]
    if bad:
        raise ValueError(f"`forget_column` {script.forget_column!r} must hold booleans (or 0/1), found {bad[0]!r}.")
    rows = [i for i, v in enumerate(flags) if v]
    if not rows:
        raise ValueError(f"`forget_column` {script.forget_column!r} marks no row to forget.")
    return rows


if __name__ == "__main__":
    sys.exit(main(prog="python -m hf_unlearn.scripts.forget"))
