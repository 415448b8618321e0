"""Forget scopes: what one [`FisherUnlearner.unlearn`] call forgets, whole classes ([`ClassScope`]) or chosen
training rows ([`SampleScope`]).

A scope owns every step where the two differ: which inputs it accepts and how it checks them, what it measures
before the edit, how it runs the method (rows: the strength search of [`hf_unlearn.samples`]), how it verifies the
edit (classes: [`hf_unlearn.verification`]; rows: [`hf_unlearn.samples.decide_samples`], or after the fine-tuning
when the unlearner is a callback) and what it adds to the report. ``SCOPES`` maps ``UnlearningConfig.forget_scope``
to its class; the unlearner makes one scope object per call, which holds that call's inputs and measurements.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .data_utils import is_hf_dataset, labels_of
from .fisher import dataset_size
from .methods import ForgetRequest, MethodResult, UnlearningMethod
from .mnemonic.codebook import MnemonicCodebook
from .peft_utils import MERGE_HINT, is_peft_model, restrict_to_adapter
from .report import UnlearningReport
from .samples import STRENGTH_LADDERS, decide_samples, rows_fingerprint, samples_check, split_rows, strength_search
from .unlearning_config import UnlearningConfig
from .utils import check_dataset_labels, id2label_of, resolve_classes, unwrap_model
from .verification import INCOMPLETE, PENDING, collect_checks, decide, measure, same_on_every_rank

__all__ = ["SCOPES", "ClassScope", "ForgetScope", "SampleScope"]


def _check_finite(model: nn.Module) -> None:
    for n, p in unwrap_model(model).named_parameters():
        # a NaN/inf anywhere makes the sum non-finite; only then look element by element (sums can overflow)
        if not torch.isfinite(p.detach().sum()) and not torch.isfinite(p).all():
            raise ValueError(f"`model` parameter {n!r} holds NaN or inf; unlearning needs finite weights.")


def _check_dataset(dataset: Any, argument: str, method: str, required: bool) -> None:
    if dataset is None:
        if required:
            raise ValueError(f"`{argument}` is required for method {method!r}.")
        return
    if dataset_size(dataset) == 0:
        raise ValueError(f"`{argument}` is empty.")


def _check_classes(dataset: Any, argument: str, allowed: list[int], id2label: dict, what: str) -> None:
    """Refuses a data set holding rows of classes outside ``allowed`` (only where its labels can be read as a column:
    a ``datasets.Dataset`` or a dict; a torch dataset would have to be read row by row)."""
    if dataset is None or (not is_hf_dataset(dataset) and not isinstance(dataset, dict)):
        return
    try:
        labels = labels_of(dataset, argument)
    except ValueError:  # no label column: nothing to check against
        return
    stray = sorted(set(np.unique(labels).tolist()) - set(allowed))
    if stray:
        names = [id2label.get(c, str(c)) for c in stray]
        raise ValueError(
            f"`{argument}` holds rows of classes {names} outside {what} {[id2label[c] for c in allowed]}; "
            "give it only those classes' samples."
        )


class ForgetScope:
    """The scope-specific steps of one forgetting, in the order the unlearner calls them: [`resolve`],
    [`validate`], [`measure_before`], [`run`], [`verify`], then [`report_details`], [`fingerprint`] and
    [`describe`] for the report. Subclasses set ``name`` and override the steps that differ."""

    name: ClassVar[str]
    # as a callback, verify in on_train_end (after the fine-tuning) instead of at once; then the unlearner calls
    # check_callback_inputs in on_train_begin and verify_after_training in on_train_end
    checks_after_training: ClassVar[bool] = False

    def __init__(self, config: UnlearningConfig, accelerator: Any = None, *, deferred: bool = False):
        self.config, self.accelerator, self.deferred = config, accelerator, deferred
        self.codebook: MnemonicCodebook | None = None
        self.forget_dataset = self.retain_dataset = self.data_collator = self.eval_dataset = None
        self.forget: list[int] = []
        self.retain: list[int] = []
        self.id2label: dict[int, str] = {}
        self.metrics: dict[str, Any] | None = None  # {"before": ..., "after": ...} on eval_dataset
        self.eval_losses: torch.Tensor | None = None  # per held-out row, before the edit (samples scope)
        self.head_features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None  # ditto, for methods that read
        # them (UnlearningMethod.uses_head_features)
        self.checks: dict[str, dict] = {}

    # ------------------------------------------------------------------ inputs
    def resolve(
        self,
        *,
        codebook: MnemonicCodebook | None,
        forget_dataset: Any,
        retain_dataset: Any,
        data_collator: Any,
        eval_dataset: Any,
        train_dataset: Any = None,
        forget_rows: Any = None,
        retain_rows: Any = None,
    ) -> None:
        """Takes this call's inputs; ``train_dataset`` / ``forget_rows`` / ``retain_rows`` only in samples scope."""
        if forget_rows is not None or retain_rows is not None or train_dataset is not None:
            raise ValueError("`forget_rows` / `retain_rows` / `train_dataset` need forget_scope='samples'.")
        self.codebook, self.data_collator, self.eval_dataset = codebook, data_collator, eval_dataset
        self.forget_dataset, self.retain_dataset = forget_dataset, retain_dataset

    def select(self, id2label: dict[int, str]) -> tuple[list[int], list[int]]:
        """``(forget, retain)`` class ids, after the scope's own checks of what is asked."""
        raise NotImplementedError

    def check_data_classes(self) -> None:
        """Refuses data sets whose classes do not fit the request (classes scope)."""

    def validate(self, model: nn.Module, method: UnlearningMethod) -> None:
        """Every check of the inputs, before any weight changes; errors name the argument at fault."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch nn.Module (a transformers model), got {type(model).__name__}.")
        self.id2label = id2label = id2label_of(model)
        name = method.name
        if self.config.forget_scope not in method.scopes:
            raise ValueError(
                f"`forget_scope` {self.config.forget_scope!r} is not supported by method {name!r} (scopes: "
                f"{list(method.scopes)})."
            )
        self.forget, self.retain = self.select(id2label)
        codebook, forget_dataset, retain_dataset = self.codebook, self.forget_dataset, self.retain_dataset
        if codebook is None and method.requires_codebook:
            raise ValueError(
                f"`codebook` is required for method {name!r}: train with MnemonicTrainer and load the codes "
                "with MnemonicCodebook.from_pretrained(model_dir)."
            )
        if codebook is not None:  # used by the method or, for any method, as evidence of the forgetting
            if not isinstance(codebook, MnemonicCodebook):
                raise TypeError(f"`codebook` must be a MnemonicCodebook, got {type(codebook).__name__}.")
            codebook.check_compatible(model, argument="codebook")
        _check_dataset(forget_dataset, "forget_dataset", name, method.requires_forget_data)
        _check_dataset(retain_dataset, "retain_dataset", name, method.requires_retain_data)
        for dataset, argument in ((forget_dataset, "forget_dataset"), (retain_dataset, "retain_dataset"),
                                  (self.eval_dataset, "eval_dataset")):  # fmt: skip
            check_dataset_labels(dataset, id2label, argument)  # label names / count differ from the model's
        self.check_data_classes()
        if self.eval_dataset is not None and dataset_size(self.eval_dataset) == 0:
            raise ValueError("`eval_dataset` is empty.")
        if is_peft_model(model):  # only the adapter is edited (hf_unlearn.peft_utils): refuse now what cannot be
            if not method.supports_peft_adapter:
                raise ValueError(
                    f"`model` is a PEFT model and method {name!r} edits base weights, which the adapter keeps frozen; "
                    + MERGE_HINT
                    + "."
                )
            restrict_to_adapter(model, method.target_parameters(model), name)
        method.validate(model, codebook=codebook, forget_dataset=forget_dataset, retain_dataset=retain_dataset)
        _check_finite(model)

    # ------------------------------------------------------------------ the edit
    def measure_before(self, model: nn.Module, method: UnlearningMethod | None = None) -> None:
        """What verification compares the edited model with, measured before the edit (and what ``method`` reads of
        the same passes)."""
        raise NotImplementedError

    def request(self, parameters: list[str]) -> ForgetRequest:
        return ForgetRequest(
            forget_classes=self.forget,
            retain_classes=self.retain,
            parameters=parameters,
            codebook=self.codebook,
            forget_dataset=self.forget_dataset,
            retain_dataset=self.retain_dataset,
            data_collator=self.data_collator,
            eval_dataset=self.eval_dataset,
            eval_losses=self.eval_losses,
            head_features=self.head_features,
        )

    def run(
        self, method: UnlearningMethod, model: nn.Module, request: ForgetRequest, saved: dict[str, torch.Tensor]
    ) -> MethodResult:
        """Runs the method (``saved``: the weights it may touch, as before the edit)."""
        return method.run(model, request)

    def verify(self, model: nn.Module, result: MethodResult) -> tuple[str, str]:
        """``(status, reason)`` of the edit; the checks behind it go to ``self.checks``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the report
    def report_details(self, reason: str) -> dict[str, Any]:
        """The scope's own entries of ``report.details``."""
        return {"verification_reason": reason}

    def fingerprint(self) -> str:
        """SHA-256 of the forget request, revealing no data."""
        raise NotImplementedError

    def describe(self) -> str:
        """What is forgotten, for messages ("classes ['3']", "40 training rows")."""
        raise NotImplementedError


class ClassScope(ForgetScope):
    """Forgetting whole classes (``config.forget_classes``).

    Verification ([`hf_unlearn.verification`]): after the edit, the forget classes' accuracy is measured, class by
    class, on every evidence at hand: the codes of the forget classes that the model recognised before the edit (a
    codebook given), the forget samples (``forget_dataset``) and the forget-class rows of ``eval_dataset``; the
    retained classes' accuracy on the same evidence. ``"verified"`` when every forget class is covered by some
    evidence, its accuracy is at most ``config.verification_tolerance`` everywhere and the retained accuracy fell by
    at most ``config.max_retained_drop``; ``"incomplete"`` when not (or the method itself reports an incomplete
    edit); ``"unverified"`` when some forget class cannot be checked at all.
    """

    name = "classes"

    def __init__(self, config: UnlearningConfig, accelerator: Any = None, *, deferred: bool = False):
        super().__init__(config, accelerator, deferred=deferred)
        self.baseline: dict[str, dict] = {}  # [`measure`] of the model before the edit

    def select(self, id2label: dict[int, str]) -> tuple[list[int], list[int]]:
        if not self.config.forget_classes:
            raise ValueError("`forget_classes` is empty: name at least one class to forget.")
        forget = resolve_classes(self.config.forget_classes, id2label, argument="forget_classes")
        retain = [c for c in id2label if c not in forget]
        if not retain:
            raise ValueError("`forget_classes` names every class of the model; at least one class must remain.")
        return forget, retain

    def check_data_classes(self) -> None:  # a forget set of other classes would be used silently
        _check_classes(self.forget_dataset, "forget_dataset", self.forget, self.id2label, "forget_classes")
        _check_classes(self.retain_dataset, "retain_dataset", self.retain, self.id2label, "the classes kept")

    def measure_before(self, model: nn.Module, method: UnlearningMethod | None = None) -> None:
        if self.eval_dataset is not None:
            from .evaluation import unlearning_metrics

            before = unlearning_metrics(model, self.eval_dataset, self.forget, data_collator=self.data_collator)
            self.metrics = {"before": before}
        # the evidence before the edit: what the model recognised, what the edit must keep
        self.baseline = measure(
            model, self.forget, self.retain, self.codebook, self.forget_dataset, self.retain_dataset,
            self.data_collator,
        )  # fmt: skip

    def verify(self, model: nn.Module, result: MethodResult) -> tuple[str, str]:
        if self.eval_dataset is not None:
            from .evaluation import unlearning_metrics

            after = unlearning_metrics(model, self.eval_dataset, self.forget, data_collator=self.data_collator)
            self.metrics["after"] = after
        self.checks = collect_checks(
            model, self.forget, result.details, self.codebook, self.baseline, self.forget_dataset,
            self.data_collator, self.metrics, retain=self.retain, retain_dataset=self.retain_dataset,
        )  # fmt: skip
        return decide(self.checks, self.forget, self.config.verification_tolerance, self.config.max_retained_drop)

    def report_details(self, reason: str) -> dict[str, Any]:
        return {"max_retained_drop": self.config.max_retained_drop, "verification_reason": reason}

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps({"method": self.config.method, "forget_classes": self.forget}, sort_keys=True).encode())
        if self.codebook is not None:
            h.update(self.codebook.fingerprint().encode())
        if self.forget_dataset is not None:
            h.update(str(dataset_size(self.forget_dataset)).encode())
            fp = getattr(self.forget_dataset, "_fingerprint", None)
            if fp:
                h.update(str(fp).encode())
        return h.hexdigest()

    def describe(self) -> str:
        return f"classes {[self.id2label[c] for c in self.forget]}"


class SampleScope(ForgetScope):
    """Forgetting chosen training rows (``forget_scope="samples"``, methods whose ``scopes`` include it).

    The rows come as ``forget_dataset`` (with ``retain_dataset``) or as ``train_dataset`` + ``forget_rows`` (+
    ``retain_rows``, default the rest), checked by [`hf_unlearn.samples.split_rows`]. Success is not accuracy 0 on
    the rows but looking like held-out data: ``"verified"`` only when, on ``eval_dataset``, the forget rows' accuracy
    and membership AUC, and the held-out accuracy against the model's before the edit, are within the bounds of
    [`hf_unlearn.samples.decide_samples`]; without ``eval_dataset`` the outcome is ``"unverified"``. One-shot methods
    get their strength from those rows ([`hf_unlearn.samples.strength_search`]). The report names the rows by count
    and fingerprint only (``details["forget_rows"]``). As a callback (edit, then fine-tune on the retained rows, as
    the Fisher-masking authors), the check runs after the fine-tuning ([`verify_after_training`]).
    """

    name = "samples"
    checks_after_training = True

    def __init__(self, config: UnlearningConfig, accelerator: Any = None, *, deferred: bool = False):
        super().__init__(config, accelerator, deferred=deferred)
        self.row_ids: list[int] | None = None
        self.rows_fingerprint: str | None = None

    @staticmethod
    def check_callback_inputs(config: UnlearningConfig, eval_dataset: Any) -> None:
        """As a callback the check runs after training, on held-out rows: refuse now, not after the training."""
        if eval_dataset is None and not config.allow_incomplete:
            raise ValueError(
                "`eval_dataset` is required by FisherUnlearner with forget_scope='samples' as a callback: held-out rows "
                "are the only evidence that the forgotten rows now look unseen (or set allow_incomplete=True)."
            )

    def resolve(self, *, train_dataset=None, forget_rows=None, retain_rows=None, **inputs) -> None:
        super().resolve(**inputs)
        if forget_rows is None and retain_rows is None and train_dataset is None:
            return
        if forget_rows is None:
            raise ValueError("`forget_rows` is required with `train_dataset` / `retain_rows`: the rows to forget.")
        if train_dataset is None:
            raise ValueError("`train_dataset` is required with `forget_rows`: the data set the rows index.")
        if self.forget_dataset is not None or self.retain_dataset is not None:
            raise ValueError(
                "`forget_dataset` / `retain_dataset` cannot be combined with `forget_rows`: give the rows of "
                "`train_dataset` or the two data sets, not both."
            )
        self.forget_dataset, self.retain_dataset, self.row_ids, _ = split_rows(train_dataset, forget_rows, retain_rows)

    def select(self, id2label: dict[int, str]) -> tuple[list[int], list[int]]:
        if self.config.forget_classes:
            raise ValueError("`forget_classes` must be empty with forget_scope='samples'.")
        if self.forget_dataset is None:
            raise ValueError(
                "`forget_dataset` is required with forget_scope='samples' (or give `train_dataset` and "
                "`forget_rows`): the training rows to forget."
            )
        return [], list(id2label)

    def check(
        self, model: nn.Module, heldout_losses: dict[str, torch.Tensor] | None = None, features: dict | None = None
    ) -> dict[str, Any]:
        """[`samples_check`] of ``model`` on this call's forget rows and held-out rows."""
        return samples_check(
            model,
            self.forget_dataset,
            self.eval_dataset,
            data_collator=self.data_collator,
            accelerator=self.accelerator,
            heldout_losses=heldout_losses,
            features=features,
        )

    def measure_before(self, model: nn.Module, method: UnlearningMethod | None = None) -> None:
        self.rows_fingerprint = rows_fingerprint(model, self.forget_dataset, self.row_ids)
        if self.eval_dataset is not None:
            losses: dict[str, torch.Tensor] = {}
            features = {} if getattr(method, "uses_head_features", False) else None
            self.metrics = {"before": self.check(model, heldout_losses=losses, features=features)}
            self.eval_losses = losses.get("losses")
            self.head_features = features

    def run(
        self, method: UnlearningMethod, model: nn.Module, request: ForgetRequest, saved: dict[str, torch.Tensor]
    ) -> MethodResult:
        if not self.deferred and self.config.strength_search and self.metrics and method.name in STRENGTH_LADDERS:
            # one-shot edit of rows: its strength chosen from the held-out rows (hf_unlearn.samples)
            return strength_search(
                method,
                model,
                request,
                saved=saved,
                forget_dataset=self.forget_dataset,
                eval_dataset=self.eval_dataset,
                before=self.metrics["before"],
                tolerance=self.config.verification_tolerance,
                check_kw=dict(data_collator=self.data_collator, accelerator=self.accelerator),
            )
        try:
            return method.run(model, request)
        finally:  # read by the method only: not held while a callback's scope waits for the end of training
            self.head_features = None

    def verify(self, model: nn.Module, result: MethodResult) -> tuple[str, str]:
        if self.deferred:  # the callback checks after the fine-tuning (on_train_end)
            self.checks = {"samples": {"skipped": "checked after the fine-tuning on the retained rows"}}
            return PENDING, "the check runs when training ends"
        self.checks = {"samples": self.check(model)}
        if "complete" in result.details:
            self.checks["method"] = {"complete": bool(result.details["complete"])}
        if self.metrics is not None:
            self.metrics["after"] = self.checks["samples"]
        if self.checks.get("method", {}).get("complete") is False:
            why = result.details.get("strength_search", {}).get("reason")
            return INCOMPLETE, "the method could not complete its edit" + (f": {why}" if why else "")
        before = self.metrics["before"] if self.metrics is not None else None
        return decide_samples(self.checks["samples"], self.config.verification_tolerance, before=before)

    def verify_after_training(self, model: nn.Module, report: UnlearningReport) -> tuple[str, str, dict[str, Any]]:
        """The deferred check, once the fine-tuning on the retained rows is done: ``(status, reason, check)``, the same
        on every rank, recorded in ``report``."""
        check = self.check(model)
        before = (report.metrics or {}).get("before")  # the check of the model before the edit
        status, reason = same_on_every_rank(
            decide_samples(check, self.config.verification_tolerance, before=before), self.accelerator
        )
        details = report.details
        details["verification"], details["verification_reason"] = status, reason
        details["verification_checks"] = {"samples": {**check, "after": "fine-tuning on the retained rows"}}
        if report.metrics is not None:
            report.metrics["after"] = check
        return status, reason, check

    def report_details(self, reason: str) -> dict[str, Any]:
        # the rows only by count and fingerprint, never by content
        count = dataset_size(self.forget_dataset)
        return {"forget_rows": {"count": count, "fingerprint": self.rows_fingerprint}, "verification_reason": reason}

    def fingerprint(self) -> str:
        payload = {"method": self.config.method, "forget_rows": self.rows_fingerprint}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        return f"{dataset_size(self.forget_dataset)} training rows"


SCOPES: dict[str, type[ForgetScope]] = {scope.name: scope for scope in (ClassScope, SampleScope)}
