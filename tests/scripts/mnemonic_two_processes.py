"""Trains a tiny ViT with MnemonicTrainer for a few steps in each of two CPU processes.

Launched by tests/test_mnemonic_trainer.py as

    python -m torch.distributed.run --nproc_per_node 2 tests/scripts/mnemonic_two_processes.py OUTDIR

Each rank writes ``OUTDIR/rank{r}.json`` with the world size it saw, its codebook fingerprint and a hash of its
weights after training; rank 0's trainer also saves the model (and codebook) to ``OUTDIR/model``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)

from hf_unlearn import MnemonicConfig, MnemonicTrainer  # noqa: E402
from hf_unlearn.data import digits_datasets, tiny_vit  # noqa: E402


def main(outdir: str) -> None:
    # use_cpu=True makes TrainingArguments build a CPU (gloo) distributed state; without it, on a machine with
    # no GPU, each process would think it is alone.
    args = MnemonicConfig(
        output_dir=os.path.join(outdir, "model"),
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
        per_device_train_batch_size=16,
        max_steps=3,
        learning_rate=1e-3,
        mnemonic_mix_ratio=0.3,
        mnemonic_seed=5,
        dataloader_num_workers=0,
        seed=0,
    )
    world_size = args.world_size
    dist_world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    if world_size != 2 or dist_world != 2:
        raise SystemExit(f"expected 2 processes, got args.world_size={world_size}, torch.distributed={dist_world}")

    train, _ = digits_datasets()
    model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0)
    trainer = MnemonicTrainer(model=model, args=args, train_dataset=train)
    mixed = {"calls": 0}
    mix_codes = trainer.mix_codes

    def counting_mix(inputs):
        mixed["calls"] += 1
        return mix_codes(inputs)

    trainer.mix_codes = counting_mix
    result = trainer.train()
    trainer.save_model()

    h = hashlib.sha256()
    for name, p in sorted(trainer.model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    record = {
        "rank": args.process_index,
        "world_size": world_size,
        "dist_world_size": dist_world,
        "fingerprint": trainer.codebook.fingerprint(),
        "codes_sum": float(trainer.codebook.inputs["pixel_values"].double().sum()),
        "weights_sha256": h.hexdigest(),
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "mix_calls": mixed["calls"],
        "train_loss": result.training_loss,
    }
    with open(os.path.join(outdir, f"rank{args.process_index}.json"), "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main(sys.argv[1])
