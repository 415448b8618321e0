"""Make a ViT trained with mnemonic codes forget whole classes, measure it, and save (or push) it with its model card.

Offline on CPU (two processes), after examples/train_vit_mnemonic.py --model tiny-vit --dataset digits:

    accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml examples/forget_vit.py \
        --model_dir vit-digits --forget_classes 3 --dataset digits --output_dir vit-digits-no3

On GPUs, a ViT fine-tuned on CIFAR-10, two classes at once, pushed to the Hub:

    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/forget_vit.py \
        --model_dir <user>/vit-cifar10-mnemonic --forget_classes cat dog --dataset uoft-cs/cifar10 \
        --image_column img --output_dir vit-cifar10-no-cat-dog --push_to_hub <user>/vit-cifar10-no-cat-dog

Every UnlearningConfig field is a flag (--method, --forget_classes, ...), the method's own settings as JSON
(--method_config '{"mnemonic_variant": "search"}'). The mnemonic method needs no training data; the evaluation set
only measures the result. The 1- and 2-process runs give the same weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from transformers import AutoImageProcessor, AutoModelForImageClassification, HfArgumentParser

from hf_unlearn import FisherUnlearner, MnemonicCodebook, UnlearningConfig
from hf_unlearn.data import load_splits, prepare_splits
from hf_unlearn.data_utils import split_by_classes
from hf_unlearn.evaluation import mia_auc_on_forget
from hf_unlearn.methods import METHODS
from hf_unlearn.scripts.args import DataArguments
from hf_unlearn.utils import id2label_of, resolve_classes


@dataclass
class ScriptArguments:
    model_dir: str = field(metadata={"help": "Folder or Hub id of a model trained with MnemonicTrainer."})
    output_dir: str = field(metadata={"help": "Folder to write the unlearned model, report and card into."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub repository to push the result to."})


def main():
    parser = HfArgumentParser((ScriptArguments, UnlearningConfig, DataArguments))
    parser.set_defaults(dataset="digits")
    script_args, config, data_args = parser.parse_args_into_dataclasses()
    # cpu=True when CUDA is absent: otherwise each process of a multi-process CPU launch believes it is alone.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())

    model_dir = script_args.model_dir
    if not os.path.isdir(model_dir):
        from huggingface_hub import snapshot_download

        model_dir = snapshot_download(model_dir)
    model = AutoModelForImageClassification.from_pretrained(model_dir).to(accelerator.device).eval()
    has_processor = os.path.isfile(os.path.join(model_dir, "preprocessor_config.json"))
    processor = AutoImageProcessor.from_pretrained(model_dir) if has_processor else None
    method = METHODS[config.method]
    codebook = MnemonicCodebook.from_pretrained(model_dir) if method.requires_codebook else None

    data = prepare_splits(load_splits(data_args), data_args, model, processor)
    train, test = data.train, data.test
    forget_ids = resolve_classes(config.forget_classes, id2label_of(model))
    forget_data = retain_data = None
    if method.requires_forget_data or method.requires_retain_data:  # e.g. fisher_mask: its own forget/retain data
        forget_data, retain_data = split_by_classes(train, forget_ids)

    mia_before = mia_auc_on_forget(model, train, test, forget_ids, accelerator=accelerator)
    unlearner = FisherUnlearner(config, accelerator)
    report = unlearner.unlearn(
        model, codebook=codebook, forget_dataset=forget_data, retain_dataset=retain_data, eval_dataset=test
    )
    report.metrics["before"]["mia_auc"] = mia_before
    report.metrics["after"]["mia_auc"] = mia_auc_on_forget(model, train, test, forget_ids, accelerator=accelerator)
    report.details["eval_dataset"] = f"{data.name} ({data_args.test_split} split)"

    if accelerator.is_main_process:
        before, after = report.metrics["before"], report.metrics["after"]
        print(
            f"forgot {report.forget_labels} with {report.method} in {report.timings['total']:.3f} s "
            f"on {accelerator.num_processes} process(es)"
        )
        for key in ("retain_accuracy", "forget_error", "test_accuracy", "mia_auc"):
            print(f"  {key:<16} {before[key]:.4f} -> {after[key]:.4f}")

    if script_args.push_to_hub:
        unlearner.push_to_hub(
            script_args.push_to_hub, model, processing_class=processor, output_dir=script_args.output_dir
        )
    else:
        unlearner.save_pretrained(script_args.output_dir, model, processing_class=processor)


if __name__ == "__main__":
    main()
