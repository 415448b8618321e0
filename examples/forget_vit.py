"""Make a ViT trained with mnemonic codes forget whole classes, measure it, and save (or push) it with its model card.

Offline on CPU (two processes), after examples/train_vit_mnemonic.py --model tiny-vit --dataset digits:

    accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml examples/forget_vit.py \
        --model_dir vit-digits --forget_classes 3 --dataset digits --output_dir vit-digits-no3

On GPUs, a ViT fine-tuned on CIFAR-10, two classes at once, pushed to the Hub:

    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/forget_vit.py \
        --model_dir <user>/vit-cifar10-mnemonic --forget_classes cat dog --dataset uoft-cs/cifar10 \
        --image_column img --output_dir vit-cifar10-no-cat-dog --push_to_hub <user>/vit-cifar10-no-cat-dog

Every UnlearningConfig field is a flag (--method, --mnemonic_variant, --lambda1, ...). The mnemonic method needs
no training data; the evaluation set only measures the result. The 1- and 2-process runs give the same weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from transformers import AutoImageProcessor, AutoModelForImageClassification, HfArgumentParser

from hf_unlearn import FisherUnlearner, MnemonicCodebook, UnlearningConfig
from hf_unlearn.data import digits_datasets
from hf_unlearn.evaluation import mia_auc_on_forget
from hf_unlearn.utils import id2label_of, resolve_classes


@dataclass
class ScriptArguments:
    model_dir: str = field(metadata={"help": "Folder or Hub id of a model trained with MnemonicTrainer."})
    output_dir: str = field(metadata={"help": "Folder to write the unlearned model, report and card into."})
    dataset: str = field(default="digits", metadata={"help": "'digits', a save_to_disk folder or a Hub id."})
    image_column: str = field(default="image", metadata={"help": "Column holding the images."})
    label_column: str = field(default="label", metadata={"help": "Column holding the class ids."})
    train_split: str = field(default="train", metadata={"help": "Split with the training samples (forget/retain)."})
    test_split: str = field(default="test", metadata={"help": "Split to evaluate on."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on at most this many samples."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub repository to push the result to."})


@dataclass
class UnlearningFlags(UnlearningConfig):
    # UnlearningConfig.forget_classes is typed list[Any], which HfArgumentParser cannot make a flag of; read the
    # classes as strings (ids and label names both resolve).
    forget_classes: list[str] = field(default_factory=list, metadata={"help": "Classes to forget (ids or names)."})


def load_splits(script_args, processor):
    """``(train, test)`` as model inputs (``pixel_values``, ``labels``)."""
    if script_args.dataset == "digits":
        return digits_datasets()
    from datasets import load_dataset, load_from_disk

    ds = (
        load_from_disk(script_args.dataset)
        if os.path.isdir(script_args.dataset)
        else load_dataset(script_args.dataset)
    )

    def prepare(split):
        split = (
            split.rename_column(script_args.label_column, "labels") if script_args.label_column != "labels" else split
        )

        def transform(batch):
            images = [img.convert("RGB") for img in batch[script_args.image_column]]
            return {"pixel_values": list(processor(images=images, return_tensors="np")["pixel_values"])}

        split = split.map(transform, batched=True, remove_columns=[script_args.image_column])
        return split.with_format("torch")

    test = ds[script_args.test_split]
    if script_args.max_eval_samples:
        test = test.select(range(min(script_args.max_eval_samples, len(test))))
    return prepare(ds[script_args.train_split]), prepare(test)


def main():
    parser = HfArgumentParser((ScriptArguments, UnlearningFlags))
    script_args, config = parser.parse_args_into_dataclasses()
    # cpu=True when CUDA is absent: otherwise each process of a multi-process CPU launch believes it is alone.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())

    model_dir = script_args.model_dir
    if not os.path.isdir(model_dir):
        from huggingface_hub import snapshot_download

        model_dir = snapshot_download(model_dir)
    model = AutoModelForImageClassification.from_pretrained(model_dir).to(accelerator.device).eval()
    has_processor = os.path.isfile(os.path.join(model_dir, "preprocessor_config.json"))
    processor = AutoImageProcessor.from_pretrained(model_dir) if has_processor else None
    codebook = MnemonicCodebook.from_pretrained(model_dir) if config.method == "mnemonic" else None

    train, test = load_splits(script_args, processor)
    forget_ids = resolve_classes(config.forget_classes, id2label_of(model))
    forget_data = retain_data = None
    if config.method != "mnemonic":  # the other methods need the forget and retain data themselves
        labels = train.with_format(None)["labels"]
        forget_data = train.select([i for i, y in enumerate(labels) if y in forget_ids])
        retain_data = train.select([i for i, y in enumerate(labels) if y not in forget_ids])

    mia_before = mia_auc_on_forget(model, train, test, config.forget_classes, accelerator=accelerator)
    unlearner = FisherUnlearner(config, accelerator)
    report = unlearner.unlearn(
        model, codebook=codebook, forget_dataset=forget_data, retain_dataset=retain_data, eval_dataset=test
    )
    report.metrics["before"]["mia_auc"] = mia_before
    report.metrics["after"]["mia_auc"] = mia_auc_on_forget(
        model, train, test, config.forget_classes, accelerator=accelerator
    )
    report.details["eval_dataset"] = f"{script_args.dataset} ({script_args.test_split} split)"

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
