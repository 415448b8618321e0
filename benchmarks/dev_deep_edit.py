"""Development harness for the deep ``mnemonic`` edit across architecture families (validation split only).

Trains tiny classifiers of ``hf_unlearn.testing_utils.FAMILIES`` with their mnemonic codes on a *validation* split
(digits training images for vision; TREC training questions with the MiniLM tokenizer for text), one original and
``--refs`` models retrained without the forgotten class per family (separate seeds from any benchmark), runs
``mnemonic`` from the codes alone and few-shot, and audits each edit against the retrained models
(``audit_forgetting``): E_F, retained-accuracy drop, probe / prototype / relearn@10 against the retrained range
(mean +- max(2 std, 0.03)), and the edit time as a share of one retraining. Models are cached under
``benchmarks/.cache/dev_deep_edit/``. Never tune on the test split: it is not loaded.

    flock /tmp/hf_unlearn_bench.lock python benchmarks/dev_deep_edit.py --families vit,resnet,roberta --forget 3

``--bench`` instead uses the models of ``bench_architectures.py`` (its recipe, trained on *its* validation split,
``--seeds`` originals, ``--refs`` references per case) and its audit settings, and runs ``deep_forget_`` directly with
each of ``--variants`` (separated by ``;``: ``default`` = the library's ladder; ``a=0.5,r=0.1,keep=0.9`` = one share
``alpha`` (or a ladder ``a=0.75/0.5/0.25/0``), ridge, margin criterion); it prints every two-sided verdict (probe,
prototype, reset relearn@10, JS, distinguisher: ``o`` within, ``+`` above, ``-`` below) and the A_R drop::

    flock /tmp/hf_unlearn_bench.lock python benchmarks/dev_deep_edit.py --bench --families vit,swin --forget 3 \
        --variants "default;a=0.5;a=0.5,r=0.1" --json /tmp/sweep.json

``--hash`` instead prints a SHA-256 of the unlearned state dict of ``mnemonic`` and ``mnemonic_head`` on a tiny
digits ViT and a tiny BERT (the refactor check of ``benchmarks/results/refactor_check.md``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hf_unlearn.testing_utils import VISION_FAMILIES, tiny_classifier  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "dev_deep_edit"
TREC_DIR = "/work/shared/data/trec"
torch.set_num_threads(1)
warnings.filterwarnings("ignore")


# ------------------------------------------------------------------------------------------------------------ data
_DATA: dict[str, tuple] = {}


def dev_data(kind: str):
    """``(train, validation, collator, tokenizer)`` for ``kind`` ("vision" or "text"): 80/20 split of the training data."""
    if kind in _DATA:
        return _DATA[kind]
    from hf_unlearn.data import digits_datasets, minilm_path, trec_datasets

    if kind == "vision":
        train, _ = digits_datasets()
        split = train.train_test_split(test_size=0.25, seed=123, stratify_by_column=None)
        out = (split["train"], split["test"], None, None)
    else:
        from transformers import AutoTokenizer, DataCollatorWithPadding

        tok = AutoTokenizer.from_pretrained(minilm_path())
        train, _ = trec_datasets(TREC_DIR)
        train = train.map(lambda b: tok(b["text"], truncation=True, max_length=24), batched=True)
        train = train.remove_columns(["text"])
        split = train.train_test_split(test_size=0.2, seed=123)
        out = (split["train"], split["test"], DataCollatorWithPadding(tok), tok)
    _DATA[kind] = out
    return out


def _kind(family: str) -> str:
    return "vision" if family in VISION_FAMILIES else "text"


def _without(ds, classes):
    labels = np.asarray(ds.with_format(None)["labels"])
    return ds.select(np.flatnonzero(~np.isin(labels, classes)).tolist())


def _of(ds, classes, n=None, seed=0):
    labels = np.asarray(ds.with_format(None)["labels"])
    idx = np.flatnonzero(np.isin(labels, classes))
    if n is not None:
        idx = np.random.default_rng(seed).permutation(idx)[:n]
    return ds.select(sorted(idx.tolist()))


# ------------------------------------------------------------------------------------------------------- training
def _new_model(family: str, seed: int):
    if _kind(family) == "vision":
        return tiny_classifier(family, 10, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, seed=seed)
    _, _, _, tok = dev_data("text")
    from hf_unlearn.data import trec_id2label

    return tiny_classifier(
        family,
        id2label=trec_id2label(),
        vocab_size=tok.vocab_size,
        pad_token_id=tok.pad_token_id,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        seed=seed,
    )


def train_family(family: str, forget: tuple[int, ...] = (), seed: int = 0, epochs: int | None = None):
    """A tiny ``family`` model trained with codes on the dev split (without ``forget``); cached. ``(model, codebook,
    seconds)``."""
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    from hf_unlearn import MnemonicCodebook, MnemonicConfig, MnemonicTrainer

    kind = _kind(family)
    epochs = epochs or (20 if kind == "vision" else 4)
    tag = f"{family}_f{'-'.join(map(str, forget)) or 'none'}_s{seed}_e{epochs}"
    folder = CACHE / tag
    auto = AutoModelForImageClassification if kind == "vision" else AutoModelForSequenceClassification
    if (folder / "done.json").exists():
        model = auto.from_pretrained(folder).eval()
        return (
            model,
            MnemonicCodebook.from_pretrained(folder),
            json.loads((folder / "done.json").read_text())["seconds"],
        )
    train, _, _, tok = dev_data(kind)
    if forget:
        train = _without(train, list(forget))
    model = _new_model(family, 1000 + seed)
    args = MnemonicConfig(
        output_dir=str(folder),
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=1000 + seed,
        num_train_epochs=epochs,
        learning_rate=3e-3,
        warmup_steps=0.1,
        per_device_train_batch_size=32,
        mnemonic_mix_ratio=0.2,
        logging_strategy="no",
        **({"mnemonic_text_length": 12} if kind == "text" else {}),
    )
    t0 = time.perf_counter()
    trainer = MnemonicTrainer(model=model, args=args, train_dataset=train, processing_class=tok)
    trainer.train()
    seconds = time.perf_counter() - t0
    model.eval().save_pretrained(folder)
    trainer.codebook.save_pretrained(folder)
    (folder / "done.json").write_text(json.dumps({"seconds": seconds}))
    return model, trainer.codebook, seconds


# ------------------------------------------------------------------------------------------------------- measuring
KEYS = ("probe_forget_accuracy", "prototype_forget_accuracy", "relearn_forget_accuracy@10")


def _metric(m: dict, key: str):
    if key.startswith("relearn_forget_accuracy@"):
        return (m.get("relearn_forget_accuracy") or {}).get(
            key.split("@")[1], (m.get("relearn_forget_accuracy") or {}).get(int(key.split("@")[1]))
        )
    return m.get(key)


def band(values):
    v = np.asarray(values, dtype=float)
    w = max(2 * v.std(), 0.03)
    return float(v.mean() - w), float(v.mean() + w)


def measure(family: str, forget: tuple[int, ...], refs: int, modes: list[str], method: str = "mnemonic"):
    from hf_unlearn import FisherUnlearner, UnlearningConfig
    from hf_unlearn.audit import audit_forgetting

    kind = _kind(family)
    train, val, collator, _ = dev_data(kind)
    model, book, _ = train_family(family)
    retrained, secs = [], []
    for s in range(refs):
        r, _, t = train_family(family, forget, seed=s + 1)
        retrained.append(r)
        secs.append(t)
    common = dict(data_collator=collator, show_progress=False, relearn_steps=(10,))
    ref = audit_forgetting(
        model,
        forget_classes=forget,
        train_dataset=train,
        eval_dataset=val,
        original=model,
        retrained=retrained,
        **common,
    )
    rows = []
    import hf_unlearn.methods.mnemonic.deep as deep

    defaults = (deep.ALPHAS, deep.ALPHAS_FEW_SHOT, deep.ALPHAS_NEW_PLANS, deep.ALPHAS_READER)
    for mode in modes:
        # "codes:0.25" / "few-shot:0.5": the deep edit with that one share of the shared direction (dev only)
        base, _, alpha = mode.partition(":")
        deep.ALPHAS, deep.ALPHAS_FEW_SHOT, deep.ALPHAS_NEW_PLANS, deep.ALPHAS_READER = (
            ((float(alpha),),) * 4 if alpha else defaults
        )
        unl = FisherUnlearner(UnlearningConfig(method=method, forget_classes=list(forget)))
        kwargs = {"codebook": book, "data_collator": collator}
        if base == "few-shot":
            kwargs["forget_dataset"] = _of(train, list(forget), 32, seed=7)
            kwargs["retain_dataset"] = _of(
                train, [c for c in range(model.config.num_labels) if c not in forget], 128, 7
            )
        edited = copy.deepcopy(model)
        t0 = time.perf_counter()
        try:
            report = unl.unlearn(edited, **kwargs)
        except Exception as e:  # noqa: BLE001 - a dev harness reports and goes on
            rows.append({"family": family, "mode": mode, "error": f"{type(e).__name__}: {e}"[:200]})
            continue
        seconds = time.perf_counter() - t0
        audit = audit_forgetting(
            edited, forget_classes=forget, train_dataset=train, eval_dataset=val, reference=ref, **common
        )
        m = audit.metrics
        row = {
            "family": family,
            "mode": mode,
            "deep": report.hyperparameters.get("variant") == "deep",
            "arch": report.hyperparameters.get("architecture") or report.hyperparameters.get("deep_fallback"),
            "verified": report.details.get("verification"),
            "alpha": report.hyperparameters.get("alpha"),
            "E_F": 1 - m["forget_accuracy"],
            "A_R_drop": ref.original["retain_accuracy"] - m["retain_accuracy"],
            "time_pct": 100 * seconds / float(np.mean(secs)),
        }
        for key in KEYS:
            refv = [_metric(r, key) for r in audit.retrained]
            lo, hi = band(refv)
            v = _metric(m, key)
            row[key] = v
            row[key + "_orig"] = _metric(ref.original, key)
            row[key + "_band"] = (lo, hi)
            row[key + "_in"] = lo <= v <= hi
        rows.append(row)
    return rows


def fmt(row) -> str:
    if "error" in row:
        return f"| {row['family']} | {row['mode']} | ERROR {row['error']} |"
    edit = f"deep {row['arch']} a={row['alpha']}" if row["deep"] else f"fallback ({row['arch']})"
    cells = [row["family"], row["mode"], edit, row["verified"]]
    cells += [f"{row['E_F']:.2f}", f"{100 * row['A_R_drop']:+.1f}"]
    for key in KEYS:
        lo, hi = row[key + "_band"]
        mark = "ok" if row[key + "_in"] else ("HIGH" if row[key] > hi else "LOW")
        cells.append(f"{row[key]:.2f} (orig {row[key + '_orig']:.2f}; {lo:.2f}-{hi:.2f}) {mark}")
    cells.append(f"{row['time_pct']:.2f}%")
    return "| " + " | ".join(str(c) for c in cells) + " |"


HEADER = (
    "| family | mode | edit | verified | E_F | A_R drop (pts) | probe (ref band) | prototype (ref band) | "
    "relearn@10 (ref band) | time / retrain |\n|---|---|---|---|---|---|---|---|---|---|"
)


# ------------------------------------------------------------------------------------------------ refactor hashing
def state_hash(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def refactor_hashes() -> dict[str, str]:
    from hf_unlearn import FisherUnlearner, UnlearningConfig

    out = {}
    for family in ("vit", "bert"):
        model, book, _ = train_family(family, epochs=20 if family == "vit" else 6)  # the models of the recorded check
        train, _, collator, _ = dev_data(_kind(family))
        for method in ("mnemonic", "mnemonic_head"):
            for few in (False, True):
                if few and method != "mnemonic":
                    continue
                edited = copy.deepcopy(model)
                kwargs = {"codebook": book, "data_collator": collator}
                if few:
                    kwargs["forget_dataset"] = _of(train, [3], 16, seed=1)
                    kwargs["retain_dataset"] = _of(train, [0, 1, 2, 4, 5], 64, seed=1)
                FisherUnlearner(UnlearningConfig(method=method, forget_classes=[3], allow_incomplete=True)).unlearn(
                    edited, **kwargs
                )
                out[f"{family} {method}{' few-shot' if few else ''}"] = state_hash(edited)
    return out


# ------------------------------------------------------------------------------ bench recipe, two-sided, variants
TWO_SIDED = (
    "probe_forget_accuracy",
    "prototype_forget_accuracy",
    "reset_relearn_forget_accuracy@10",
    "js_to_retrained",
    "distinguisher_accuracy",
)


def parse_variant(text: str) -> dict:
    """``"default"`` -> ``{}``; ``"a=0.5,r=0.1,keep=0.9"`` -> keyword arguments of ``deep_forget_``."""
    names = {"a": "alphas", "r": "ridge", "keep": "keep_margin"}
    out: dict = {}
    for part in [] if text == "default" else text.split(","):
        key, _, value = part.partition("=")
        if key == "a":  # one share, or a ladder "0.75/0.5/0.25/0"
            out[names[key]] = tuple(float(x) for x in value.split("/"))
        else:
            out[names[key]] = float(value)
    return out


def bench_sweep(families, forget, refs, seeds, variants, trec_dir):
    """Each variant of the deep edit on ``bench_architectures`` models (validation split) against ``refs`` references."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_architectures import _audit, _row, load_task, load_trained, train_family

    import hf_unlearn.methods.mnemonic.deep as deep

    rows = []
    for family, seed in [(f, s) for f in families for s in seeds]:
        task = load_task(family, "validation", trec_dir)
        forget_here = forget if task.name == "digits" else (4,)  # TREC: LOC, as the benchmark
        kw = dict(split="validation", trec_dir=trec_dir)
        original, book, _ = load_trained(train_family(family, seed=seed, **kw))
        retrained = [
            load_trained(train_family(family, forget_classes=forget_here, seed=1000 * (j + 1) + seed, **kw))[0]
            for j in range(refs)
        ]
        ref = _audit(task, original, list(forget_here), seed, original=original, retrained=retrained)
        for text in variants:
            model = copy.deepcopy(original)
            try:
                details = deep.deep_forget_(model, book, list(forget_here), **parse_variant(text))
            except Exception as e:  # noqa: BLE001 - a dev harness reports and goes on
                print(f"{family} {forget_here} s{seed} {text}: ERROR {type(e).__name__}: {e}"[:200], flush=True)
                continue
            row = _row(_audit(task, model, list(forget_here), seed, reference=ref), ref.original["retain_accuracy"])
            tried = details["alphas_tried"][-1]
            row.update(family=family, forget=list(forget_here), seed=seed, variant=text, alpha=details["alpha"])
            row.update(kept=tried["retained_code_margin_kept"], kept_min=tried["retained_code_margin_kept_min"])
            rows.append(row)
            marks = "".join(
                "o" if row["two_sided"][k] == "within" else "+" if row["two_sided"][k].startswith("above") else "-"
                for k in TWO_SIDED
            )
            print(
                f"{family:10s} {str(forget_here):7s} s{seed} {text:22s} a={row['alpha']:<4} kept={row['kept']:.2f} "
                f"dA_R={100 * row['ar_drop']:+5.1f} probe={row['probe']:.2f} proto={row['prototype']:.2f} "
                f"reset@10={row['reset_relearn10']:.2f} js={row['js']:.3f} dist={row['distinguisher']:.2f} [{marks}]",
                flush=True,
            )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--families", default="vit,resnet,roberta")
    p.add_argument("--forget", default="3")
    p.add_argument("--refs", type=int, default=2)
    p.add_argument("--modes", default="codes,few-shot")
    p.add_argument("--method", default="mnemonic")
    p.add_argument("--hash", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--bench", action="store_true", help="bench_architectures models (validation split), --variants")
    p.add_argument("--variants", default="default")
    p.add_argument("--seeds", default="0")
    p.add_argument("--trec-dir", default=TREC_DIR)
    a = p.parse_args(argv)
    if a.bench:
        rows = bench_sweep(
            a.families.split(","),
            tuple(int(c) for c in a.forget.split(",")),
            a.refs,
            [int(s) for s in a.seeds.split(",")],
            a.variants.split(";"),
            a.trec_dir,
        )
        if a.json:
            Path(a.json).write_text(json.dumps(rows, indent=1, default=str))
        return
    if a.hash:
        print(json.dumps(refactor_hashes(), indent=1))
        return
    forget = tuple(int(c) for c in a.forget.split(","))
    print(HEADER)
    all_rows = []
    for family in a.families.split(","):
        rows = measure(family, forget, a.refs, a.modes.split(","), a.method)
        all_rows += rows
        for row in rows:
            print(fmt(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(all_rows, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
