"""Model cards and Hub publishing for unlearned models, one role per module.

- ``card``: [`render_model_card`] (YAML header with tags, ``base_model`` and ``model-index``; text from the
  ``model_card_template.md`` shipped with the package, whose wording it fills with values) and
  [`render_training_card`] (``MnemonicTrainer``'s own card, from ``mnemonic_model_card_template.md``); ``chart``:
  [`plot_per_class_accuracy`] (needs matplotlib, skipped with a note in the log without it).
- ``lineage``: the pretrained checkpoint (a Hub id) training started from, recorded with the codes and named as
  ``base_model`` on every card; the processing class saved in the folder a model was loaded from.
- ``publish``: [`check_output_dir`], [`save_unlearned`] (written beside the target, renamed into place),
  [`save_with_audit`] (the same folder again with a forgetting audit in report and card) and
  [`push_unlearned`] (a failed upload raises [`HubPushError`] and leaves the folder as it was).
- ``trainer``: [`UnlearningCardMixin`] / [`UnlearningTrainer`], [`attach_card_to_trainer`] and [`on_push_begin`],
  so that ``Trainer.push_to_hub()`` publishes the same files and card, and no saved training argument holds a token.

Only the main process writes files or pushes. Tokens are handed to ``huggingface_hub`` and never written or logged.
"""

from typing import Any

from .card import (
    CARD_FILE,
    CARD_TAGS,
    SEARCH_TAGS,
    TEMPLATE_FILE,
    card_tags,
    depth_section,
    describe_method,
    model_card_template_path,
    public_name,
    public_report,
    render_model_card,
    render_training_card,
)
from .chart import CHART_FILE, plot_per_class_accuracy
from .publish import (
    HubPushError,
    check_output_dir,
    push_unlearned,
    save_unlearned,
    save_with_audit,
    write_card_files,
)
from .trainer import UnlearningCardMixin, attach_card_to_trainer, on_push_begin, token_free_args

__all__ = [
    "CARD_FILE",
    "CARD_TAGS",
    "CHART_FILE",
    "HubPushError",
    "SEARCH_TAGS",
    "TEMPLATE_FILE",
    "UnlearningCardMixin",
    "UnlearningTrainer",
    "attach_card_to_trainer",
    "card_tags",
    "check_output_dir",
    "depth_section",
    "describe_method",
    "model_card_template_path",
    "on_push_begin",
    "plot_per_class_accuracy",
    "public_name",
    "public_report",
    "push_unlearned",
    "render_model_card",
    "render_training_card",
    "save_unlearned",
    "save_with_audit",
    "token_free_args",
    "write_card_files",
]


def __getattr__(name: str) -> Any:  # UnlearningTrainer subclasses transformers.Trainer, whose import is slow
    if name == "UnlearningTrainer":
        from . import trainer

        return trainer.UnlearningTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
