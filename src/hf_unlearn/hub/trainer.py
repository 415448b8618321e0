"""``Trainer.push_to_hub()`` that publishes the unlearning card, and training arguments that never save a token.

A ``Trainer`` writes its own generic ``README.md`` in ``push_to_hub``, just before uploading. To publish the
unlearning card instead, the Trainer's class carries [`UnlearningCardMixin`] (``MnemonicTrainer`` and
[`UnlearningTrainer`] do) and the unlearner is attached to it explicitly::

    trainer = UnlearningTrainer(model=model, args=args, train_dataset=retain_ds)
    unlearner.attach_to_trainer(trainer)     # or hub.attach_card_to_trainer(trainer, report, codebook=..., config=...)
    trainer.train()
    trainer.push_to_hub()                    # uploads the unlearning card, report, chart, codes and config

The mixin also keeps Hub tokens out of every ``training_args.bin`` it writes, checkpoints and checkpoint pushes
(``hub_strategy="checkpoint"`` / ``"every_save"``) included: its ``args`` pickle without their ``*_token`` fields, and
with local folders (``output_dir``, ``logging_dir``) by their base names.
"""

from __future__ import annotations

import copy
import copyreg
import functools
import os
from collections.abc import Callable
from typing import Any

from ..report import UnlearningReport
from ..utils import get_logger
from .card import CARD_FILE, public_name, render_training_card
from .lineage import hub_id_of, starting_checkpoint
from .publish import _check_savable, write_card_files

logger = get_logger(__name__)

ReportSource = UnlearningReport | Callable[[], UnlearningReport | None] | None


# ---------------------------------------------------------------------------------------------------- tokens
def _secret_fields(args: Any) -> list[str]:
    return [k for k, v in vars(args).items() if k.endswith("_token") and isinstance(v, str) and v]


@functools.cache
def _token_free_class(cls: type) -> type:
    """A subclass of ``cls`` whose pickles (``torch.save(args, ...)``) hold no token and no absolute local path (a
    folder is recorded by its base name) and load back as ``cls``."""

    def __reduce_ex__(self, protocol):
        state = {k: public_name(v) if isinstance(v, str) and os.path.isabs(v) else v for k, v in vars(self).items()}
        for name in _secret_fields(self):
            state[name] = None
        # copyreg._reconstructor rebuilds a plain `cls` (the standard library's own pickle helper), so the file loads
        # without hf_unlearn; pickle's __newobj__ would insist on this subclass.
        return copyreg._reconstructor, (cls, object, None), state

    def __copy__(self):  # copies keep the token: only what is written to disk loses it
        new = object.__new__(type(self))
        new.__dict__.update(vars(self))
        return new

    def __deepcopy__(self, memo):
        new = object.__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(vars(self), memo))
        return new

    namespace = {"__reduce_ex__": __reduce_ex__, "__copy__": __copy__, "__deepcopy__": __deepcopy__}
    namespace["_hf_unlearn_token_free"] = True
    namespace.update(__module__=cls.__module__, __qualname__=cls.__qualname__, __doc__=cls.__doc__)
    return type(cls.__name__, (cls,), namespace)


def token_free_args(args: Any) -> Any:
    """A copy of ``TrainingArguments`` that behaves the same but pickles without ``hub_token`` (or any ``*_token``).

    ``Trainer`` pickles its arguments into ``training_args.bin`` in every checkpoint, in the output folder and before
    every checkpoint push; with this copy none of those files holds the token, which still authenticates uploads.
    """
    if args is None or getattr(type(args), "_hf_unlearn_token_free", False):
        return args
    clone = copy.copy(args)
    clone.__class__ = _token_free_class(type(args))
    return clone


# ---------------------------------------------------------------------------------------------------- the mixin
class UnlearningCardMixin:
    """Mixed into a ``transformers.Trainer`` class (before ``Trainer``): ``push_to_hub()`` publishes the unlearning
    card of the attached unlearner ([`attach_card_to_trainer`] or ``FisherUnlearner.attach_to_trainer``) and no
    ``training_args.bin`` the trainer writes holds a Hub token.

    Without an attached report (or before unlearning ran) a trainer with mnemonic codes (``MnemonicTrainer``) writes
    the training card ([`render_training_card`]) instead of transformers' generic one: the codes, and ``base_model``
    the Hub id training started from (never a local path); any other trainer keeps the Trainer's own card.
    """

    #: the attached card source: a callable returning ``(report, codebook, config)``, or None
    unlearning_card_source: Callable[[], tuple[Any, Any, Any]] | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.args = token_free_args(self.args)
        #: Hub id of the pretrained checkpoint training starts from (``args.base_model``, else read from the model
        #: before any training; None when unknown): the ``base_model`` of the cards
        self.base_model_id = starting_checkpoint(self.model, getattr(self.args, "base_model", None))

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Writes ``README.md`` into ``args.output_dir``: the unlearning card once a report is attached; else, for a
        trainer with mnemonic codes (``MnemonicTrainer``), the training card ([`render_training_card`], from
        ``mnemonic_model_card_template.md``), whose ``base_model`` is the Hub id the training started from and which
        holds no local path; else the Trainer's own. Same arguments as ``Trainer``'s."""
        source = self.unlearning_card_source
        report, codebook, config = source() if source is not None else (None, None, None)
        if report is None and getattr(self, "codebook", None) is None:
            return super().create_model_card(
                language=language,
                license=license,
                tags=tags,
                model_name=model_name,
                finetuned_from=finetuned_from,
                tasks=tasks,
                dataset_tags=dataset_tags,
                dataset=dataset,
                dataset_args=dataset_args,
                **kwargs,
            )
        if not self.is_world_process_zero():
            return None
        if report is None:
            card = render_training_card(
                self,
                model_name=model_name,
                base_model=hub_id_of(finetuned_from) or self.base_model_id,
                dataset=dataset or dataset_tags,
                tags=tags,
                language=language,
                license=license,
            )
            card.save(os.path.join(self.args.output_dir, CARD_FILE))
            return None
        write_card_files(
            self.args.output_dir,
            report,
            model=self.accelerator.unwrap_model(self.model) if hasattr(self, "accelerator") else self.model,
            repo_id=getattr(self, "hub_model_id", None) or self.args.hub_model_id,
            model_name=model_name,
            tags=[tags] if isinstance(tags, str) else tags,
            codebook=codebook,
            config=config,
        )
        return None


def _unlearning_trainer_class() -> type:
    from transformers import Trainer

    class UnlearningTrainer(UnlearningCardMixin, Trainer):
        """A ``transformers.Trainer`` whose ``push_to_hub()`` publishes the attached unlearning card (see
        [`UnlearningCardMixin`]); use it with a ``FisherUnlearner`` callback: ``unlearner.attach_to_trainer(trainer)``."""

    UnlearningTrainer.__module__ = __name__
    UnlearningTrainer.__qualname__ = "UnlearningTrainer"
    return UnlearningTrainer


def __getattr__(name: str) -> Any:  # UnlearningTrainer is built on first use: importing Trainer is slow
    if name == "UnlearningTrainer":
        cls = _unlearning_trainer_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------------- attaching
def _value(source: Any) -> Any:
    return source() if callable(source) and not hasattr(source, "save_pretrained") else source


def attach_card_to_trainer(
    trainer: Any,
    report: ReportSource,
    *,
    codebook: Any = None,
    config: Any = None,
) -> None:
    """Makes ``trainer.push_to_hub()`` publish the unlearning card, report, chart, codes and config.

    ``Trainer.push_to_hub`` saves the model, calls ``trainer.create_model_card`` (which writes ``README.md``) and
    uploads ``args.output_dir``. A trainer whose class carries [`UnlearningCardMixin`] (``MnemonicTrainer``,
    [`UnlearningTrainer`]) writes our files there instead of the generic card once a report is attached and
    available (the ``tags`` and ``model_name`` the Trainer passes are kept). Calling it again replaces what was
    attached.

    Args:
        trainer: a Trainer whose class carries [`UnlearningCardMixin`].
        report: an [`UnlearningReport`], or a callable returning the current one (or ``None``), read at push time.
        codebook: the [`MnemonicCodebook`] to save beside the model (or a callable returning it), if any.
        config: the ``UnlearningConfig`` (anything with ``save_pretrained``) to save, if any.

    Raises:
        TypeError: ``trainer`` cannot publish the card (a plain ``Trainer`` would overwrite it), or a bad argument.
    """
    if not isinstance(trainer, UnlearningCardMixin):
        raise TypeError(
            f"`trainer` ({type(trainer).__name__}) would overwrite the unlearning card with its own in push_to_hub(). "
            "Build it as hf_unlearn.hub.UnlearningTrainer (or MnemonicTrainer), or put hf_unlearn.hub."
            "UnlearningCardMixin before Trainer in your trainer class's bases."
        )
    if report is not None and not callable(report) and not isinstance(report, UnlearningReport):
        raise TypeError(f"`report` must be an UnlearningReport, a callable returning one, or None; got {report!r}.")
    if not callable(codebook):
        _check_savable(codebook, "codebook")
    _check_savable(config, "config")
    trainer.unlearning_card_source = lambda: (_value(report), _value(codebook), config)


def on_push_begin(
    report: UnlearningReport | None,
    args: Any,
    model: Any = None,
    *,
    processing_class: Any = None,
    codebook: Any = None,
    config: Any = None,
    trainer: Any = None,
) -> None:
    """The body of a ``TrainerCallback.on_push_begin`` hook: prepares ``args.output_dir`` for a push.

    Writes the report, chart, codes, config and card into ``args.output_dir`` (on the process that saves,
    ``args.should_save``), so that checkpoint pushes carry them too. Given ``trainer``, attaches the card to it
    ([`attach_card_to_trainer`]) so that the ``README.md`` the Trainer writes at the end of ``push_to_hub`` is ours.
    Does nothing when ``report`` is ``None`` (nothing was unlearned).

    Args:
        report: the [`UnlearningReport`] of the run, or ``None``.
        args: the ``TrainingArguments`` passed to the hook.
        model: the ``model`` of the hook's kwargs.
        processing_class: the ``processing_class`` of the hook's kwargs (saved by the Trainer itself; used only to
            check it).
        codebook: the [`MnemonicCodebook`] to save beside the model, if any.
        config: the ``UnlearningConfig`` to save, if any.
        trainer: the Trainer pushing (hooks do not receive it: hand it over when attaching). Without it, and when
            nothing was attached, the Trainer's generic card replaces ours at the end of ``push_to_hub``.
    """
    if report is None:
        return
    if not isinstance(report, UnlearningReport):
        raise TypeError(f"`report` must be an UnlearningReport or None, got {type(report).__name__}.")
    output_dir = getattr(args, "output_dir", None)
    if not output_dir:
        raise ValueError("`args` has no `output_dir`; pass the TrainingArguments the hook received.")
    _check_savable(processing_class, "processing_class")
    if isinstance(trainer, UnlearningCardMixin):
        attach_card_to_trainer(trainer, report, codebook=codebook, config=config)
    elif trainer is not None:
        logger.warning(
            "%s cannot publish the unlearning card: its generic card will replace ours in %s at the end of "
            "push_to_hub(). Use UnlearningTrainer (or MnemonicTrainer).",
            type(trainer).__name__,
            output_dir,
        )
    if not getattr(args, "should_save", True):
        return
    repo_id = getattr(trainer, "hub_model_id", None) or getattr(args, "hub_model_id", None)
    write_card_files(str(output_dir), report, model=model, repo_id=repo_id, codebook=codebook, config=config)
