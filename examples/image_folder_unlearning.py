"""From an image folder to a published, audited forgetting, with the ``hf-unlearn`` commands (offline, CPU).

The flow of transformers' ``run_image_classification.py`` on a local image folder (``imagefolder`` layout: one
sub-folder per class, under ``train/`` and ``test/``), then forgetting a class and showing how deep it went:

    python examples/image_folder_unlearning.py --workdir flow-images     # runs every step below on tiny data

which writes ``flow-images/data`` (PNG digits from scikit-learn, class folders ``zero`` .. ``nine``) and runs:

    hf-unlearn train --model tiny-vit --dataset flow-images/data --tiny_vit_image_size 8 --output_dir flow-images/vit \
        --num_train_epochs 30 --learning_rate 2e-3 --per_device_train_batch_size 32 --mnemonic_mix_ratio 0.1
    hf-unlearn forget --model_dir flow-images/vit --dataset flow-images/data --forget_classes three \
        --output_dir flow-images/vit-no-three
    hf-unlearn retrain --model_dir flow-images/vit --dataset flow-images/data --forget_classes three \
        --output_dir flow-images/refs --num_seeds 2
    hf-unlearn audit --model_dir flow-images/vit-no-three --dataset flow-images/data --forget_classes three \
        --original flow-images/vit --retrained flow-images/refs/seed-0 flow-images/refs/seed-1 \
        --output_file flow-images/audit.json

and last, in Python, publishes the unlearned model with the audit on its card ("How deep is the forgetting?") into
``flow-images/published`` (``hf-unlearn push --folder flow-images/published --repo_id user/name`` uploads it).
With your own images, give your folder as ``--dataset`` (labels are the sub-folder names) and your checkpoint as
``--model``; add ``--base_model <hub id>`` to ``train`` when that checkpoint is a local copy of a Hub model, so that the
cards name it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_image_folder(root: str, per_class: int | None = None) -> None:
    """scikit-learn's digits as 8x8 grayscale PNGs in ``root/{train,test}/<name>/``."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).astype(np.uint8)
    splits = train_test_split(images, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    for split, (x, y) in {"train": (splits[0], splits[2]), "test": (splits[1], splits[3])}.items():
        seen = dict.fromkeys(range(10), 0)
        for i, (image, label) in enumerate(zip(x, y)):
            if per_class is not None and seen[int(label)] >= per_class:
                continue
            seen[int(label)] += 1
            folder = os.path.join(root, split, NAMES[int(label)])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(image, mode="L").save(os.path.join(folder, f"{i:04d}.png"))


def hf_unlearn(*argv: str) -> None:
    """Runs one ``hf-unlearn`` command (as ``python -m hf_unlearn.cli``), printing it; stops on failure."""
    print("\n$ hf-unlearn " + " ".join(shlex.quote(a) for a in argv), flush=True)
    subprocess.run([sys.executable, "-m", "hf_unlearn.cli", *argv], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="flow-images", help="Folder for the data and every model.")
    parser.add_argument("--epochs", default="30", help="Training epochs (the references reuse the recipe).")
    parser.add_argument("--num_seeds", default="2", help="Retrained references.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the Hub
    w = args.workdir
    data = os.path.join(w, "data")
    if not os.path.isdir(data):
        write_image_folder(data)
    common = ["--dataset", data, "--forget_classes", "three"]
    hf_unlearn("train", "--model", "tiny-vit", "--dataset", data, "--tiny_vit_image_size", "8",
               "--output_dir", f"{w}/vit", "--overwrite_output_dir", "--num_train_epochs", args.epochs,
               "--learning_rate", "2e-3", "--per_device_train_batch_size", "32", "--mnemonic_mix_ratio", "0.1",
               "--disable_tqdm", "true")  # fmt: skip
    hf_unlearn("forget", "--model_dir", f"{w}/vit", *common, "--output_dir", f"{w}/vit-no-three",
               "--overwrite_output_dir")  # fmt: skip
    hf_unlearn("retrain", "--model_dir", f"{w}/vit", *common, "--output_dir", f"{w}/refs",
               "--num_seeds", args.num_seeds)  # fmt: skip
    refs = [f"{w}/refs/seed-{i}" for i in range(int(args.num_seeds))]
    hf_unlearn("audit", "--model_dir", f"{w}/vit-no-three", *common, "--original", f"{w}/vit",
               "--retrained", *refs, "--output_file", f"{w}/audit.json", "--overwrite_output_file")  # fmt: skip
    from hf_unlearn.hub import save_with_audit

    # the unlearned folder again, with the audit in its report and card: what is uploaded
    out = save_with_audit(f"{w}/vit-no-three", f"{w}/audit.json", f"{w}/published")
    print(f"\npublished folder: {out} (README.md holds the depth section); upload it with\n"
          f"  hf-unlearn push --folder {out} --repo_id <user>/vit-digits-no-three")  # fmt: skip


if __name__ == "__main__":
    main()
