"""FisherUnlearner: forget whole classes, or chosen training rows, of a transformers classifier with a registered
unlearning method.

``FisherUnlearner`` works standalone (``unlearner.unlearn(model, ...)``) or as a ``TrainerCallback``: added to a
Trainer whose train set is the remaining data, it edits the model in ``on_train_begin``, so training then
fine-tunes the edited model on the remaining data. As a callback, the inputs a method needs come from the
unlearner (``codebook``, ``forget_dataset``, ...) or, when not given, from the training run: the Trainer's train set
serves as retain data, and a codebook saved in the model's folder (or ``output_dir``) is loaded for methods that use
one. With ``num_train_epochs=0`` the edit is all that happens.

The methods live in ``hf_unlearn.methods`` (registered in ``METHODS``) and the two forget scopes in
[`hf_unlearn.scopes`] (each checks its inputs, measures before the edit and verifies after it); this module only
orchestrates them: resolve the inputs, validate, run the method, verify, undo or keep the edit, report.

Unless ``config.allow_incomplete``, an edit whose verification is not ``"verified"`` restores the model and raises
[`UnlearningIncompleteError`] (as a callback in samples scope: after the fine-tuning, back to the weights before the
edit). What "verified" means per scope is in [`ClassScope`] and [`SampleScope`].
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from .methods import METHODS, MethodResult, UnlearningMethod
from .methods.common import restore_, snapshot
from .mnemonic.codebook import MnemonicCodebook
from .peft_utils import MERGE_HINT, FrozenGuard, is_peft_model, restrict_to_adapter
from .report import UnlearningReport
from .scopes import SCOPES, ForgetScope
from .unlearning_config import CONFIG_FILE, UnlearningConfig
from .utils import get_logger, library_versions, unwrap_model
from .verification import INCOMPLETE, PENDING, VERIFIED, same_on_every_rank

logger = get_logger(__name__)

__all__ = ["CONFIG_FILE", "METHODS", "FisherUnlearner", "UnlearningConfig", "UnlearningIncompleteError"]


class UnlearningIncompleteError(RuntimeError):
    """The forgetting is incomplete or could not be verified, and ``config.allow_incomplete`` is False.

    The model has been restored bit-identical to its state before the call. ``report`` holds what the edit did and
    the checks (``report.details["verification_checks"]``); nothing was saved.
    """

    def __init__(self, message: str, report: UnlearningReport | None = None):
        super().__init__(message)
        self.report = report


def _edit_parameters(model: nn.Module, method: UnlearningMethod) -> tuple[list[str], FrozenGuard | None]:
    """The parameters ``method`` may change; of a PEFT model the active adapter's only, with a guard on the frozen
    base (which must stay bit-identical)."""
    parameters = method.target_parameters(model)
    if not is_peft_model(model):
        return parameters, None
    return restrict_to_adapter(model, parameters, method.name), FrozenGuard(model)


def _check_frozen(frozen: FrozenGuard | None, method: str) -> None:
    if frozen is not None and frozen.changed():  # a method that ignored the narrowed `parameters`
        raise RuntimeError(
            f"Method {method!r} changed frozen base weights of the PEFT model ({frozen.changed()[:3]}); "
            "set `supports_peft_adapter = False` on it, or " + MERGE_HINT + "."
        )


def _build_report(
    model: nn.Module,
    scope: ForgetScope,
    result: MethodResult,
    *,
    changed: int,
    timings: dict,
    status: str,
    reason: str,
) -> UnlearningReport:
    """The [`UnlearningReport`] of one edit: the method's result, the scope's checks and details, the lineage."""
    from .hub.lineage import lineage_of

    cfg = scope.config
    details = {**result.details, "verification": status, "verification_checks": scope.checks}
    details["verification_tolerance"] = cfg.verification_tolerance
    details.update(scope.report_details(reason))
    details["forget_scope"] = cfg.forget_scope
    lineage = lineage_of(model, scope.codebook)  # the pretrained checkpoint recorded at training time, for the card
    if lineage:
        details["lineage"] = lineage
    id2label = scope.id2label
    return UnlearningReport(
        method=cfg.method,
        forget_classes=scope.forget,
        forget_labels=[id2label[c] for c in scope.forget],
        retain_classes=scope.retain,
        retain_labels=[id2label[c] for c in scope.retain],
        num_parameters_changed=changed,
        num_parameters_total=sum(p.numel() for p in model.parameters()),
        fisher_samples=result.samples,
        timings=timings,
        hyperparameters=result.hyperparameters,
        method_config=cfg.method_config.to_dict(),
        details=details,
        metrics=scope.metrics,
        forget_request_fingerprint=scope.fingerprint(),
        base_model=getattr(model.config, "_name_or_path", None) or None,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=library_versions(),
    )


class FisherUnlearner(TrainerCallback):
    """Forgets whole classes (or, with ``forget_scope="samples"``, chosen training rows) of a transformers classifier,
    standalone or as a ``TrainerCallback``.

    Args:
        config: an [`UnlearningConfig`]; ``config.method`` names the registered method to run.
        accelerator: an ``accelerate.Accelerator``; with several processes the Fisher is computed on shards and
            reduced, and every rank applies the same edit.
        codebook / forget_dataset / retain_dataset / data_collator / eval_dataset: defaults for
            [`unlearn`], used by the callback.
    """

    def __init__(
        self,
        config: UnlearningConfig,
        accelerator: Any = None,
        *,
        codebook: MnemonicCodebook | None = None,
        forget_dataset: Any = None,
        retain_dataset: Any = None,
        data_collator: Any = None,
        eval_dataset: Any = None,
    ):
        if not isinstance(config, UnlearningConfig):
            raise TypeError(f"`config` must be an UnlearningConfig, got {type(config).__name__}.")
        self.config = config
        self.accelerator = accelerator
        self.codebook = codebook
        self.forget_dataset = forget_dataset
        self.retain_dataset = retain_dataset
        self.data_collator = data_collator
        self.eval_dataset = eval_dataset
        self.report: UnlearningReport | None = None
        self.trainer: Any = None  # set by attach_to_trainer
        self._done = False
        # callback state: the processing class seen in on_train_begin, the codebook of the last edit, and (samples
        # scope) the weights before the edit and the scope whose check waits for on_train_end
        self._processing_class: Any = None
        self._last_codebook: MnemonicCodebook | None = None
        self._defer_check = False
        self._pre_edit: dict[str, torch.Tensor] | None = None
        self._deferred_scope: ForgetScope | None = None

    @property
    def method_class(self) -> type[UnlearningMethod]:
        """The registered [`UnlearningMethod`] subclass that ``config.method`` names."""
        if self.config.method not in METHODS:
            raise ValueError(f"`config.method` {self.config.method!r} is not registered; known: {sorted(METHODS)}.")
        return METHODS[self.config.method]

    # ------------------------------------------------------------------ the main entry point
    def unlearn(
        self,
        model: nn.Module,
        *,
        codebook: MnemonicCodebook | None = None,
        forget_dataset: Any = None,
        retain_dataset: Any = None,
        data_collator: Any = None,
        eval_dataset: Any = None,
        train_dataset: Any = None,
        forget_rows: Any = None,
        retain_rows: Any = None,
    ) -> UnlearningReport:
        """Edits ``model`` in place so that it forgets ``config.forget_classes`` (classes scope) or the given training
        rows (samples scope); returns an [`UnlearningReport`]. Every input is checked before any weight changes (errors
        name the argument at fault); an edit that is not verified is undone and raised unless ``allow_incomplete``.

        Args:
            model: the classifier (unwrapped or DDP-wrapped). Of a ``peft.PeftModel`` only the active adapter's weights
                are edited ([`hf_unlearn.peft_utils`]); merge it first (``model.merge_and_unload()``) to edit it all.
            codebook: the model's [`MnemonicCodebook`] (needed by ``mnemonic``, used by ``logit_suppression``).
            forget_dataset: classes scope: samples of the forget classes; samples scope: exactly the training rows to
                forget (needed by ``fisher_mask``, ``ssd``, ``fisher_noise``).
            retain_dataset: the remaining training samples (same methods).
            data_collator: collator for the data sets (e.g. ``DataCollatorWithPadding`` for text).
            eval_dataset: optional labelled held-out set; when given, ``report.metrics`` holds before/after metrics.
                In samples scope it is the only evidence that can verify the forgetting.
            train_dataset / forget_rows / retain_rows: samples scope, instead of ``forget_dataset`` /
                ``retain_dataset``: the training set and the indices of its rows to forget (and to retain; default
                every other row). Checked by [`hf_unlearn.samples.split_rows`].
        """
        given = dict(codebook=codebook, forget_dataset=forget_dataset, retain_dataset=retain_dataset,
                     data_collator=data_collator, eval_dataset=eval_dataset)  # fmt: skip
        model, cfg = unwrap_model(model), self.config
        scope = SCOPES[cfg.forget_scope](cfg, self.accelerator, deferred=self._defer_check)
        scope.resolve(
            **{k: v if v is not None else getattr(self, k) for k, v in given.items()},
            train_dataset=train_dataset, forget_rows=forget_rows, retain_rows=retain_rows,
        )  # fmt: skip
        method = self.method_class(cfg, self.accelerator)
        scope.validate(model, method)
        scope.measure_before(model, method)
        parameters, frozen = _edit_parameters(model, method)
        saved = snapshot(model, parameters)
        try:
            t_start = time.perf_counter()
            result = scope.run(method, model, scope.request(parameters), saved)
            timings = {**result.timings, "total": time.perf_counter() - t_start}
            changed = method.count_changed(model, saved)
            _check_frozen(frozen, cfg.method)
            status, reason = same_on_every_rank(scope.verify(model, result), self.accelerator)
        except BaseException:
            method.restore(model, saved)  # whatever failed, the caller keeps the model it gave
            raise
        report = _build_report(model, scope, result, changed=changed, timings=timings, status=status, reason=reason)
        if status not in (VERIFIED, PENDING):
            what = "is incomplete" if status == INCOMPLETE else "could not be verified"
            if not cfg.allow_incomplete:
                method.restore(model, saved)
                raise UnlearningIncompleteError(
                    f"Forgetting {scope.describe()} with {cfg.method} {what}: {reason}. The model was restored; set "
                    "`allow_incomplete=True` to keep the edit anyway.",
                    report,
                )
            logger.warning(
                "Forgetting %s %s (%s); the edit is kept (allow_incomplete).", scope.describe(), what, reason
            )
        self.report, self._last_codebook, self._done = report, scope.codebook, True
        self._deferred_scope = scope if scope.deferred else None
        logger.info(
            "Forgot %s with %s in %.3fs (%d weights changed; %s)",
            scope.describe(), cfg.method, timings["total"], changed, status,
        )  # fmt: skip
        return self.report

    # ------------------------------------------------------------------ callback hooks
    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if kwargs.get("processing_class") is not None:  # saved with the model by save_pretrained / push_to_hub
            self._processing_class = kwargs["processing_class"]
        if self._done or model is None:
            return
        method = self.method_class
        retain = self.retain_dataset
        collator = self.data_collator
        if retain is None and train_dataloader is not None and method.requires_retain_data:
            retain = train_dataloader.dataset
            collator = collator or train_dataloader.collate_fn
        codebook = self.codebook
        if codebook is None and (method.requires_codebook or method.uses_codebook):
            path = getattr(unwrap_model(model).config, "_name_or_path", "")
            for folder in (path, args.output_dir):
                if folder and MnemonicCodebook.exists(folder):
                    codebook = MnemonicCodebook.from_pretrained(folder)
                    break
        scope = SCOPES[self.config.forget_scope]
        if not scope.checks_after_training:
            self.unlearn(model, codebook=codebook, retain_dataset=retain, data_collator=collator)
            return
        # edit now, check once the fine-tuning is done (on_train_end); keep the whole model as it was, since that
        # check may have to undo the fine-tuning too
        scope.check_callback_inputs(self.config, self.eval_dataset)  # fail now, not after the whole training
        model = unwrap_model(model)
        self._pre_edit = snapshot(model, [n for n, _ in model.named_parameters()])
        self._defer_check = True
        try:
            self.unlearn(model, codebook=codebook, retain_dataset=retain, data_collator=collator)
        except BaseException:
            self._pre_edit = None
            raise
        finally:
            self._defer_check = False

    def on_train_end(self, args, state, control, model=None, **kwargs):
        pre_edit, scope = self._pre_edit, self._deferred_scope
        if pre_edit is None or scope is None or model is None or self.report is None:
            return
        self._pre_edit = self._deferred_scope = None
        model = unwrap_model(model)
        status, reason, check = scope.verify_after_training(model, self.report)
        if status == VERIFIED:
            logger.info(
                "Forgetting %d training rows verified after fine-tuning (%s).", check["num_forget_rows"], reason
            )
            return
        what = "is incomplete" if status == INCOMPLETE else "could not be verified"
        if self.config.allow_incomplete:
            logger.warning("Forgetting the training rows %s (%s); the model is kept (allow_incomplete).", what, reason)
            return
        restore_(model, pre_edit)
        raise UnlearningIncompleteError(
            f"Forgetting {check['num_forget_rows']} training rows with {self.config.method} then fine-tuning {what}: "
            f"{reason}. The model was restored to its weights before the edit; set `allow_incomplete=True` to keep "
            "it anyway.",
            self.report,
        )

    # ------------------------------------------------------------------ depth audit
    def audit(
        self,
        model: nn.Module,
        *,
        train_dataset: Any,
        eval_dataset: Any,
        data_collator: Any = None,
        original: nn.Module | None = None,
        retrained: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Audits how deeply the last [`unlearn`] call forgot (``hf_unlearn.audit_forgetting`` with this run's
        classes) and records the result in ``report.audit``, so that ``unlearning_report.json`` and the model card's
        "How deep is the forgetting?" section carry it. Returns the ``ForgettingAudit`` (``None`` off the main
        process under Accelerate). Extra keyword arguments go to ``audit_forgetting``.

        Args:
            model: the unlearned model (not changed by the audit).
            train_dataset: the training split the model was trained on (probe, prototype shots, relearn batch).
            eval_dataset: held-out labelled samples.
            data_collator: collator for both data sets (defaults to the unlearner's).
            original: the model before unlearning (sets the relearn target).
            retrained: models trained without the forgotten classes: the reference range.
        """
        from .audit import audit_forgetting

        report = self._require_report()
        if self.config.forget_scope != "classes":
            raise ValueError("`audit` measures class forgetting; this run forgot samples, not classes.")
        result = audit_forgetting(
            unwrap_model(model),
            forget_classes=report.forget_classes,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            data_collator=data_collator if data_collator is not None else self.data_collator,
            original=original,
            retrained=retrained,
            accelerator=self.accelerator,
            **kwargs,
        )
        if result is not None:
            report.audit = result.to_dict()
        return result

    # ------------------------------------------------------------------ publishing
    def _require_report(self) -> UnlearningReport:
        if self.report is None:
            raise RuntimeError("Call `unlearn(...)` (or train with this callback) before saving or pushing.")
        return self.report

    def _published_codebook(self) -> MnemonicCodebook | None:
        return self._last_codebook or self.codebook

    def save_pretrained(
        self,
        output_dir: str | os.PathLike,
        model: nn.Module,
        *,
        processing_class: Any = None,
        include_codebook: bool = True,
        overwrite_output_dir: bool = False,
    ) -> str:
        """Writes the unlearned model, its processing class, the codebook (optional), the unlearning record
        (``unlearning_report.json``), the config, the per-class chart and the model card into ``output_dir``
        (main process only). Call after [`unlearn`].

        The processing class is ``processing_class`` when given, else the trainer's (when the unlearner ran as a
        callback), else the image processor or tokenizer saved in the local folder ``model`` was loaded from, so that
        the folder works with every ``hf-unlearn`` command.

        The folder is written beside ``output_dir`` and renamed into place, so an interrupted save leaves the previous
        folder as it was. Refused before anything is written (``ValueError`` naming ``output_dir``): an unwritable
        location and, unless ``overwrite_output_dir=True`` (then the folder is replaced whole, with no file of an
        earlier run left in it), a non-empty folder or the folder ``model`` was loaded from."""
        self._require_report()
        return self._save(
            output_dir,
            model,
            processing_class=processing_class,
            include_codebook=include_codebook,
            overwrite_output_dir=overwrite_output_dir,
        )

    def _save(self, output_dir, model, *, processing_class, include_codebook, overwrite_output_dir, repo_id=None):
        from . import hub

        report = self._require_report()
        if processing_class is None:  # the trainer's, else the one saved where the model was loaded from
            processing_class = getattr(self.trainer, "processing_class", None) or self._processing_class
        if processing_class is None:
            from .hub.lineage import source_processing_class

            processing_class = source_processing_class(unwrap_model(model))
        return hub.save_unlearned(
            output_dir,
            unwrap_model(model),
            report,
            processing_class=processing_class,
            codebook=self._published_codebook() if include_codebook else None,
            config=self.config,
            repo_id=repo_id,
            accelerator=self.accelerator,
            overwrite_output_dir=overwrite_output_dir,
        )

    def _saved_here(self, output_dir: str | os.PathLike) -> bool:
        """Whether ``output_dir`` holds this unlearner's own save of its current report (a push being retried)."""
        try:
            saved = UnlearningReport.load(output_dir)
        except (OSError, ValueError, TypeError):
            return False
        report = self.report
        return (saved.forget_request_fingerprint, saved.created_at) == (
            report.forget_request_fingerprint,
            report.created_at,
        )

    def push_to_hub(
        self,
        repo_id: str,
        model: nn.Module,
        *,
        processing_class: Any = None,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
        include_codebook: bool = True,
        output_dir: str | os.PathLike | None = None,
        endpoint: str | None = None,
        overwrite_output_dir: bool = False,
    ) -> str | None:
        """Saves locally first (``output_dir``, default ``./<repo name>``), then uploads the folder to ``repo_id``
        (``create_repo(exist_ok=True)`` + ``upload_folder``). A failed upload raises ``hub.HubPushError`` and
        leaves the local folder complete; calling again retries (re-saving into a folder this unlearner wrote for
        the same report needs no ``overwrite_output_dir``). ``output_dir`` is checked as in [`save_pretrained`].
        Returns the commit URL (``None`` off rank 0)."""
        from . import hub

        if not isinstance(repo_id, str) or not repo_id.strip():
            raise ValueError("`repo_id` must be a non-empty string such as 'user/model-name'.")
        report = self._require_report()
        output_dir = output_dir or repo_id.rstrip("/").split("/")[-1]
        self._save(
            output_dir,
            model,
            processing_class=processing_class,
            include_codebook=include_codebook,
            overwrite_output_dir=overwrite_output_dir or self._saved_here(output_dir),
            repo_id=repo_id,
        )
        return hub.push_unlearned(
            repo_id,
            output_dir,
            private=private,
            token=token,
            revision=revision,
            commit_message=commit_message or f"Unlearn classes {report.forget_labels} with {report.method}",
            endpoint=endpoint,
            accelerator=self.accelerator,
        )

    def attach_to_trainer(self, trainer: Any) -> None:
        """Makes ``trainer.push_to_hub()`` publish this unlearner's model card, report, chart, codes and config.

        ``trainer`` must be a Trainer whose class carries ``hub.UnlearningCardMixin`` (``MnemonicTrainer``, or
        ``hub.UnlearningTrainer`` in place of ``Trainer``); a plain ``Trainer`` would overwrite the card with its own
        and is refused with a ``TypeError``. The unlearner is added to the trainer's callbacks if it is not there
        yet. Until [`unlearn`] has run (e.g. before ``train()``), the trainer keeps its own card."""
        from . import hub

        hub.attach_card_to_trainer(trainer, lambda: self.report, codebook=self._published_codebook, config=self.config)
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        self.trainer = trainer

    def on_push_begin(self, args, state, control, **kwargs):
        from . import hub

        trainer = self.trainer
        if self.report is not None and trainer is None:
            logger.warning(
                "FisherUnlearner was not attached to the pushing trainer: its generic card will replace the unlearning "
                "card. Call `unlearner.attach_to_trainer(trainer)` before `trainer.push_to_hub()`."
            )
        hub.on_push_begin(
            self.report,
            args,
            kwargs.get("model"),
            processing_class=kwargs.get("processing_class"),
            codebook=self._published_codebook(),
            config=self.config,
            trainer=trainer,
        )
