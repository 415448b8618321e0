"""Train a ViT image classifier with mnemonic codes (MnemonicTrainer), so that it can later forget classes in one shot.

Offline on CPU (two processes), a tiny ViT on scikit-learn's digits:

    accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml examples/train_vit_mnemonic.py \
        --model tiny-vit --dataset digits --output_dir vit-digits \
        --num_train_epochs 30 --learning_rate 2e-3 --weight_decay 0.01 --lr_scheduler_type cosine \
        --warmup_steps 0.05 --per_device_train_batch_size 16 --mnemonic_mix_ratio 0.1

On GPUs, a pretrained ViT fine-tuned on an image data set from the Hub, pushed when done:

    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/train_vit_mnemonic.py \
        --model google/vit-base-patch16-224-in21k --dataset uoft-cs/cifar10 --image_column img \
        --output_dir vit-cifar10-mnemonic --num_train_epochs 3 --learning_rate 5e-5 \
        --per_device_train_batch_size 64 --mnemonic_mix_ratio 0.3 --bf16 true \
        --push_to_hub true --hub_model_id <user>/vit-cifar10-mnemonic

Every MnemonicConfig / TrainingArguments field is a flag. The folder it writes holds the model, its image processor
and its mnemonic codes: what examples/forget_vit.py needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification, HfArgumentParser, ViTImageProcessor

from hf_unlearn import MnemonicConfig, MnemonicTrainer
from hf_unlearn.data import digits_datasets, tiny_vit


@dataclass
class ScriptArguments:
    model: str = field(
        default="tiny-vit",
        metadata={"help": "'tiny-vit' (built from a config, no download) or a local folder / Hub id of a ViT."},
    )
    dataset: str = field(
        default="digits",
        metadata={"help": "'digits' (scikit-learn, built in), a folder written by save_to_disk, or a Hub id."},
    )
    image_column: str = field(default="image", metadata={"help": "Column holding the images."})
    label_column: str = field(default="label", metadata={"help": "Column holding the class ids."})
    train_split: str = field(default="train", metadata={"help": "Training split."})
    test_split: str = field(default="test", metadata={"help": "Evaluation split."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on at most this many samples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on at most this many samples."})
    tiny_vit_image_size: int = field(default=32, metadata={"help": "tiny-vit on Hub images: resize to this size."})
    tiny_vit_hidden_size: int = field(default=64, metadata={"help": "tiny-vit: hidden size."})
    tiny_vit_num_hidden_layers: int = field(default=2, metadata={"help": "tiny-vit: number of layers."})


def load_splits(script_args):
    """``(train, test, id2label)``; Hub/local image data sets get their label column renamed to ``labels``."""
    if script_args.dataset == "digits":
        train, test = digits_datasets()
        return train, test, {i: str(i) for i in range(10)}
    from datasets import load_dataset, load_from_disk

    ds = (
        load_from_disk(script_args.dataset)
        if os.path.isdir(script_args.dataset)
        else load_dataset(script_args.dataset)
    )
    train, test = ds[script_args.train_split], ds[script_args.test_split]
    names = train.features[script_args.label_column].names
    if script_args.label_column != "labels":
        train = train.rename_column(script_args.label_column, "labels")
        test = test.rename_column(script_args.label_column, "labels")
    return train, test, dict(enumerate(names))


def cap(ds, n):
    return ds.select(range(min(n, len(ds)))) if n else ds


def main():
    parser = HfArgumentParser((ScriptArguments, MnemonicConfig))
    # On a machine without a GPU the processes of a multi-process launch must be told to use CPU (gloo); on GPUs
    # nothing changes. remove_unused_columns=False keeps the image column for the on-the-fly transform.
    parser.set_defaults(use_cpu=not torch.cuda.is_available(), remove_unused_columns=False, report_to="none")
    script_args, training_args = parser.parse_args_into_dataclasses()

    train, test, id2label = load_splits(script_args)
    train, test = cap(train, script_args.max_train_samples), cap(test, script_args.max_eval_samples)
    label2id = {v: k for k, v in id2label.items()}

    if script_args.model == "tiny-vit":
        if script_args.dataset == "digits":  # already pixel_values (1, 8, 8), normalised like ViTImageProcessor
            processor = None
            model = tiny_vit(
                hidden_size=script_args.tiny_vit_hidden_size,
                num_hidden_layers=script_args.tiny_vit_num_hidden_layers,
                seed=training_args.seed,
            )
        else:
            size = script_args.tiny_vit_image_size
            processor = ViTImageProcessor(
                size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
            )
            model = tiny_vit(
                num_labels=len(id2label),
                image_size=size,
                patch_size=max(size // 8, 2),
                num_channels=3,
                hidden_size=script_args.tiny_vit_hidden_size,
                num_hidden_layers=script_args.tiny_vit_num_hidden_layers,
                id2label=id2label,
                seed=training_args.seed,
            )
    else:
        processor = AutoImageProcessor.from_pretrained(script_args.model)
        model = AutoModelForImageClassification.from_pretrained(
            script_args.model,
            num_labels=len(id2label),
            id2label=id2label,
            label2id=label2id,
            ignore_mismatched_sizes=True,  # a new classification head for these classes
        )

    if processor is not None:
        image_column = script_args.image_column

        def transform(batch):
            # Also called on the label column alone (label checks): pass through what is there.
            out = {"labels": batch["labels"]} if "labels" in batch else {}
            if image_column in batch:
                images = [img.convert("RGB") for img in batch[image_column]]
                out["pixel_values"] = processor(images=images, return_tensors="pt")["pixel_values"]
            return out

        train, test = train.with_transform(transform), test.with_transform(transform)

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = MnemonicTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        processing_class=processor,
        compute_metrics=compute_metrics,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()  # the model, its image processor and its mnemonic codes
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)

    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset)


if __name__ == "__main__":
    main()
