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

import numpy as np
import torch
from transformers import HfArgumentParser

from hf_unlearn import MnemonicConfig, MnemonicTrainer
from hf_unlearn.data import build_model, load_splits, prepare_splits
from hf_unlearn.scripts.args import DataArguments, TrainArguments


def main():
    parser = HfArgumentParser((TrainArguments, DataArguments, MnemonicConfig))
    # On a machine without a GPU the processes of a multi-process launch must be told to use CPU (gloo); on GPUs
    # nothing changes.
    parser.set_defaults(dataset="digits", use_cpu=not torch.cuda.is_available(), report_to="none")
    script_args, data_args, training_args = parser.parse_args_into_dataclasses()

    # digits are ready-made pixel_values; Hub/local image data sets go through the model's image processor
    raw = load_splits(data_args)
    model, processor = build_model(
        script_args.model,
        raw,
        seed=training_args.seed,
        tiny_vit_hidden_size=script_args.tiny_vit_hidden_size,
        tiny_vit_num_hidden_layers=script_args.tiny_vit_num_hidden_layers,
        tiny_vit_image_size=script_args.tiny_vit_image_size,
    )
    data = prepare_splits(raw, data_args, model, processor)

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = MnemonicTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.test,
        data_collator=data.collator,
        processing_class=processor,
        compute_metrics=compute_metrics,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()  # the model, its image processor and its mnemonic codes
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)

    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=data_args.dataset)


if __name__ == "__main__":
    main()
