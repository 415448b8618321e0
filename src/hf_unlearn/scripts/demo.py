"""The one-command demo: train a small ViT on scikit-learn's digits with mnemonic codes, make it forget a digit,
and show per-class accuracy, A_R, E_F, membership inference and timings before and after. Offline; a few minutes on
two CPU cores.

    hf-unlearn demo
    hf-unlearn demo --forget_classes 3 5 --method fisher_mask --output_dir demo-no35
    python -m hf_unlearn.scripts.demo --epochs 10
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence

from .args import DemoArguments
from .common import (
    HfUnlearnParser,
    check_output_dir,
    incomplete_is_failure,
    metrics_table,
    no_progress_bars,
    parsing,
    print_main,
    push_errors,
    run,
)

PROG = "hf-unlearn demo"


def make_parser(prog: str = PROG) -> HfUnlearnParser:
    return HfUnlearnParser(
        (DemoArguments,),
        prog,
        "Train a small ViT on scikit-learn's digits with mnemonic codes, make it forget a digit, and show per-class "
        "accuracy, A_R, E_F, membership inference and timings before and after. Offline; a few minutes on 2 CPU "
        "cores.\n\n  hf-unlearn demo --forget_classes 3 --output_dir hf_unlearn_demo",
    )


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs the command; returns the exit status (errors are one line on stderr)."""
    return run(prog, lambda a: demo(a, prog), argv)


def demo(argv: Sequence[str], prog: str = PROG) -> int:
    parser = make_parser(prog)
    with parsing(parser):
        (args,) = parser.parse(argv)
    from ..unlearning_config import UnlearningConfig
    from ..utils import resolve_classes

    with parsing(parser):
        config = UnlearningConfig(method=args.method, forget_classes=args.forget_classes, seed=args.seed)
        forget = resolve_classes(args.forget_classes, {i: str(i) for i in range(10)}, "forget_classes")
    check_output_dir(args.output_dir, overwrite=args.overwrite_output_dir)

    import torch
    from transformers import set_seed

    from ..data import digits_datasets, tiny_vit
    from ..data_utils import split_by_classes
    from ..evaluation import Timer, mia_auc_on_forget
    from ..methods import METHODS
    from ..mnemonic import MnemonicConfig, MnemonicTrainer
    from ..unlearner import FisherUnlearner

    if args.num_threads is not None and not torch.cuda.is_available():
        torch.set_num_threads(args.num_threads)
    set_seed(args.seed)
    train, test = digits_datasets()
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    model = tiny_vit(hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers, seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory(prefix="hf_unlearn_demo_") as scratch:
        train_args = MnemonicConfig(
            output_dir=scratch,
            learning_rate=2e-3,
            weight_decay=0.01,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            per_device_train_batch_size=32,
            per_device_eval_batch_size=128,
            num_train_epochs=args.epochs,
            mnemonic_mix_ratio=args.mnemonic_mix_ratio,
            mnemonic_seed=args.seed,
            seed=args.seed,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=args.disable_tqdm,
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
        )
        with parsing(parser):
            trainer = MnemonicTrainer(model=model, args=train_args, train_dataset=train)
        accelerator = trainer.accelerator
        print_main(
            accelerator,
            f"hf-unlearn demo: ViT ({args.hidden_size} hidden, {args.num_hidden_layers} layers, {n_params:,} weights) "
            f"on scikit-learn digits ({len(train)} train / {len(test)} test images, 8x8); training {args.epochs:g} "
            f"epochs with mnemonic codes (t_mix {args.mnemonic_mix_ratio}), then forgetting {forget} with "
            f"{args.method}",
        )
        with Timer() as t_train, parsing(parser):
            trainer.train()
    model = trainer.model
    model.eval()
    codebook = trainer.codebook
    method = METHODS[args.method]
    forget_ds = retain_ds = None
    if method.requires_forget_data or method.requires_retain_data:  # the test split only measures the result
        forget_ds, retain_ds = split_by_classes(train, forget)
        retain_ds = retain_ds if method.requires_retain_data else None
    mia_before = mia_auc_on_forget(model, train, test, forget, accelerator=accelerator)
    unlearner = FisherUnlearner(config, accelerator)
    with incomplete_is_failure(parser):
        report = unlearner.unlearn(
            model, codebook=codebook, forget_dataset=forget_ds, retain_dataset=retain_ds, eval_dataset=test
        )
    report.metrics["before"]["mia_auc"] = mia_before
    report.metrics["after"]["mia_auc"] = mia_auc_on_forget(model, train, test, forget, accelerator=accelerator)
    report.details["eval_dataset"] = f"scikit-learn digits (test split, {len(test)} images)"
    report.details["training"] = {
        "epochs": args.epochs,
        "mnemonic_mix_ratio": args.mnemonic_mix_ratio,
        "seconds": round(t_train.seconds, 2),
    }
    save = dict(overwrite_output_dir=args.overwrite_output_dir)
    with no_progress_bars(), push_errors(), parsing(parser):
        if args.push_to_hub:
            url = unlearner.push_to_hub(args.push_to_hub, model, output_dir=args.output_dir, **save)
        else:
            unlearner.save_pretrained(args.output_dir, model, **save)
    print_main(
        accelerator,
        "",
        metrics_table(report.metrics["before"], report.metrics["after"], report.forget_labels),
        "",
        f"training   {t_train.seconds:8.1f} s  ({args.epochs:g} epochs, MnemonicTrainer)",
        f"unlearning {report.timings['total']:8.3f} s  ({args.method}; {report.num_parameters_changed:,} of "
        f"{report.num_parameters_total:,} weights changed)",
        "",
        f"saved to {args.output_dir}/: model, mnemonic codes, unlearning_report.json, README.md (model card), chart",
    )
    if args.push_to_hub:
        print_main(accelerator, f"pushed to {args.push_to_hub}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m hf_unlearn.scripts.demo"))
