"""Run by tests/test_fisher.py, alone or under `torchrun --nproc_per_node 2`: Fisher (per-layer and vmap paths,
empirical and true kinds) and an unlearning edit."""

import json
import os
import sys

import torch
from accelerate import Accelerator
from safetensors.torch import save_file

from hf_unlearn import FisherUnlearner, MnemonicCodebook, UnlearningConfig, compute_fisher
from hf_unlearn.data import digits_datasets, tiny_vit

torch.set_num_threads(1)
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
acc = Accelerator(cpu=not torch.cuda.is_available())  # without cpu=True each CPU process believes it is alone
train, _ = digits_datasets()
data = train.select(range(37))  # odd on purpose: ranks get different sample counts
model = tiny_vit(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, seed=0)
fisher = compute_fisher(model, data, batch_size=8, accelerator=acc)  # the per-layer path (default)
save_file({k: v.contiguous() for k, v in fisher.items()}, f"{out}/fisher_rank{acc.process_index}.safetensors")
for impl, kind in (("vmap", "empirical"), ("layers", "true")):
    f = compute_fisher(model, data, batch_size=8, accelerator=acc, kind=kind, implementation=impl)
    save_file(
        {k: v.contiguous() for k, v in f.items()}, f"{out}/fisher_{impl}_{kind}_rank{acc.process_index}.safetensors"
    )
# the edits below are checked for identical weights across ranks, not for forgetting (the tiny model is untrained)
lenient = {"allow_incomplete": True} if "allow_incomplete" in UnlearningConfig.__dataclass_fields__ else {}
# an edit on every rank: fisher_mask from shards of the forget/retain data
forget = train.select(range(60)).filter(lambda b: [y == 3 for y in b["labels"]], batched=True)
retain = train.select(range(60)).filter(lambda b: [y != 3 for y in b["labels"]], batched=True)
book = MnemonicCodebook.for_model(model)
unl = FisherUnlearner(
    UnlearningConfig(
        method="fisher_mask", forget_classes=[3], method_config={"mask_fisher_kind": "empirical"}, **lenient
    ),
    acc,
)
report = unl.unlearn(model, forget_dataset=forget, retain_dataset=retain)
unl2 = FisherUnlearner(UnlearningConfig(method="mnemonic", forget_classes=[3], **lenient), acc)
unl2.unlearn(model, codebook=book)
state = {k: v.contiguous() for k, v in model.state_dict().items()}
save_file(state, f"{out}/weights_rank{acc.process_index}.safetensors")
with open(f"{out}/rank{acc.process_index}.json", "w") as f:
    json.dump({"world_size": acc.num_processes, "changed": report.num_parameters_changed}, f)
