"""Bit-identity check for refactors of the method layer: trains one tiny digits ViT with codes (seeded), runs every
class-scope method on a copy with its defaults, and prints the SHA-256 (first 16 hex digits) of each unlearned state
dict. ``--samples`` adds every samples-scope method (40 training rows forgotten, held-out rows from the test split,
strength search on) and ``--reports`` the hash of each run's report without its time-dependent fields (timings,
created_at, versions). ``--settings`` adds each method at non-default settings (given as its ``method_config``, or
as the flat ``UnlearningConfig`` fields on a tree older than the per-method configs), samples-scope runs included.
Run it on two trees and compare:

    python benchmarks/bench_refactor_check.py                                # this tree
    PYTHONPATH=<worktree of the old commit>/src python benchmarks/bench_refactor_check.py
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

METHODS = ("mnemonic", "mnemonic_head", "logit_suppression", "fisher_mask", "ssd", "fisher_noise")
# --settings: (label, method, scope, non-default settings)
SETTINGS = (
    ("mnemonic search", "mnemonic", "classes", {"mnemonic_variant": "search", "mnemonic_margin": 0.5}),
    ("mnemonic paper", "mnemonic", "classes", {"mnemonic_variant": "paper", "lambda1": 2e-3}),
    ("mnemonic_head weight", "mnemonic_head", "classes", {"mnemonic_direction": "weight"}),
    ("fisher_mask 0.04 empirical", "fisher_mask", "classes", {"mask_ratio": 0.04, "mask_fisher_kind": "empirical"}),
    ("ssd alpha 1", "ssd", "classes", {"ssd_alpha": 1.0, "ssd_lambda": 0.5}),
    ("fisher_noise 1e-5", "fisher_noise", "classes", {"noise_alpha": 1e-5}),
    ("samples fisher_mask search", "fisher_mask", "samples", {"mask_ratio": 0.05}),
    ("samples ssd search", "ssd", "samples", {"ssd_alpha": 5.0, "ssd_lambda": 0.5}),
    ("samples fisher_noise search", "fisher_noise", "samples", {"noise_alpha": 1e-5}),
    (
        "samples neggrad_plus 5 steps",
        "neggrad_plus",
        "samples",
        {"finetune_max_steps": 5, "forget_ascent_target": "chance"},
    ),
)


def state_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def report_hash(report) -> str:
    d = report.to_dict()
    for key in ("timings", "created_at", "versions"):
        d.pop(key)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def main() -> int:
    import hf_unlearn
    from hf_unlearn import FisherUnlearner, MnemonicConfig, MnemonicTrainer, UnlearningConfig
    from hf_unlearn.data import digits_datasets, tiny_vit
    from hf_unlearn.data_utils import split_by_classes

    torch.set_num_threads(1)
    train, test = digits_datasets()
    model = tiny_vit(hidden_size=32, num_hidden_layers=2, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        args = MnemonicConfig(output_dir=tmp, num_train_epochs=10, learning_rate=2e-3, per_device_train_batch_size=32,
                              mnemonic_mix_ratio=0.1, seed=0, report_to="none", use_cpu=True, save_strategy="no",
                              logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0)  # fmt: skip
        trainer = MnemonicTrainer(model=model, args=args, train_dataset=train)
        trainer.train()
    base, codebook = trainer.model.eval(), trainer.codebook
    forget_ds, retain_ds = split_by_classes(train, [3])
    out = {"hf_unlearn": os.path.dirname(hf_unlearn.__file__), "original": state_hash(base)}
    for method in METHODS:
        model = copy.deepcopy(base)
        config = UnlearningConfig(method=method, forget_classes=[3], allow_incomplete=True, seed=0)
        from hf_unlearn.methods import METHODS as REGISTRY

        cls = REGISTRY[method]
        data = dict(
            forget_dataset=forget_ds if cls.requires_forget_data else None,
            retain_dataset=retain_ds if cls.requires_retain_data else None,
        )
        report = FisherUnlearner(config).unlearn(model, codebook=codebook, eval_dataset=test, **data)
        out[method] = state_hash(model)
        if "--reports" in sys.argv:
            out[f"{method} report"] = report_hash(report)
    if "--samples" in sys.argv:
        forget_rows = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:40].tolist()
        for method in sorted(m for m, cls in REGISTRY.items() if "samples" in cls.scopes):
            model = copy.deepcopy(base)
            config = UnlearningConfig(method=method, forget_scope="samples", allow_incomplete=True, seed=0)
            unlearner = FisherUnlearner(config)
            report = unlearner.unlearn(model, train_dataset=train, forget_rows=forget_rows, eval_dataset=test)
            out[f"samples {method}"] = state_hash(model)
            if "--reports" in sys.argv:
                out[f"samples {method} report"] = report_hash(report)
    if "--settings" in sys.argv:
        import hf_unlearn.methods as registry

        nested = hasattr(registry, "METHOD_CONFIGS")  # per-method configs; else the flat fields of older trees
        rows = list(range(0, 300, 10))
        for label, method, scope, settings in SETTINGS:
            model = copy.deepcopy(base)
            kwargs = {"method_config": settings} if nested else settings
            classes = [3] if scope == "classes" else []
            config = UnlearningConfig(
                method=method, forget_scope=scope, forget_classes=classes, allow_incomplete=True, seed=0, **kwargs
            )
            if scope == "samples":
                FisherUnlearner(config).unlearn(model, train_dataset=train, forget_rows=rows, eval_dataset=test)
            else:
                cls = registry.METHODS[method]
                data = dict(
                    forget_dataset=forget_ds if cls.requires_forget_data else None,
                    retain_dataset=retain_ds if cls.requires_retain_data else None,
                )
                FisherUnlearner(config).unlearn(model, codebook=codebook, eval_dataset=test, **data)
            out[label] = state_hash(model)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
