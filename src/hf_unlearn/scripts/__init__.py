"""The ``hf-unlearn`` commands, one runnable script each (``python -m hf_unlearn.scripts.<command>``).

Each script has ``make_parser()`` (its flags; built without importing torch or transformers) and
``main(argv=None)`` (runs it and returns the exit status). Shared argument dataclasses are in ``args.py``, the
parser (flags from dataclasses, ``--config`` YAML) in ``parser.py``, the helpers every command uses in ``common.py``.
"""

# command -> one-line description, in the order `hf-unlearn --help` lists them
COMMANDS = {
    "demo": "train a small ViT on digits, forget a digit, show the evidence (offline, minutes on CPU)",
    "train": "train a classifier with mnemonic codes (MnemonicTrainer)",
    "forget": "make a trained model forget classes; save or push it with report and model card",
    "evaluate": "forget/retain/test accuracy and membership inference of a model on a data set",
    "retrain": "train reference models without the forgotten classes (N seeds, cached), for the audit",
    "audit": "how deep the forgetting goes: linear probe, prototype attack, relearning, against retrained models",
    "push": "upload an unlearned model folder to the Hub",
}
