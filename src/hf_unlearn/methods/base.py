"""The contract every unlearning method fulfils: the ``UnlearningMethod`` base class and its ``MethodResult``.

[`FisherUnlearner`] never branches on a method's name: it reads the class attributes below to check the inputs,
calls ``run`` and turns the ``MethodResult`` into the [`UnlearningReport`].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..fisher import compute_fisher
from ..unlearning_config import MethodConfig
from .common import count_changed, match_parameters, restore_

if TYPE_CHECKING:
    from ..mnemonic.codebook import MnemonicCodebook
    from ..report import UnlearningReport
    from ..unlearning_config import UnlearningConfig


@dataclass
class MethodResult:
    """What one run of a method did.

    Args:
        details: method-specific facts (steps found, threshold, weights selected, ...); become ``report.details``.
            A method that checks its own outcome sets ``details["complete"] = False`` when it knows the forgetting
            is incomplete; the unlearner then never reports the edit as verified.
        hyperparameters: the settings as used (after any automatic choice); become ``report.hyperparameters``.
        samples: samples, codes or batches used per data role (``{"forget_batches": 3, "retain_batches": 40}``);
            become ``report.fisher_samples``.
        timings: seconds per phase (``{"fisher": ..., "edit": ...}``); the unlearner adds ``"total"``.
    """

    details: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ForgetRequest:
    """What one forgetting asks of a method (built by [`FisherUnlearner`] after every input check passed).

    Args:
        forget_classes: class ids to forget (``[]`` in samples scope).
        retain_classes: the other class ids (every class in samples scope).
        parameters: names of the parameters the method may change (``target_modules`` matched, a PEFT adapter's own
            weights on a PEFT model); every other parameter must stay bit-identical.
        codebook: the model's [`MnemonicCodebook`], when given.
        forget_dataset / retain_dataset: the data to forget and the data to keep, when given.
        data_collator: batches rows of those data sets.
        eval_dataset: held-out rows (never trained on), when given.
        eval_losses: the model's per-row losses on ``eval_dataset`` before the edit, when the scope measured them.
        head_features: for a method with ``uses_head_features``, the rows' inputs to the output layer before the
            edit, measured by the scope's check: ``{"forget": (x, y), "heldout": (x, y)}`` (features flattened, and
            labels, in each data set's order), each key when measured.
    """

    forget_classes: list[int]
    retain_classes: list[int]
    parameters: list[str]
    codebook: MnemonicCodebook | None = None
    forget_dataset: Any = None
    retain_dataset: Any = None
    data_collator: Any = None
    eval_dataset: Any = None
    eval_losses: Any = None
    head_features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None


class UnlearningMethod:
    """Base class of the unlearning methods registered in ``hf_unlearn.methods.METHODS``.

    A new method is one file (or folder) in ``hf_unlearn/methods/`` holding a subclass and its settings, a
    [`MethodConfig`] dataclass, and ending with ``register_method("my_method", MyMethodConfig, MyMethod)`` (and an
    import line in ``methods/__init__.py``, or an import of the file by the user's code). The subclass sets or
    overrides:

    - ``name``: the registry key, the value of ``UnlearningConfig.method`` (set by ``register_method``).
    - ``config_class``: its settings class (set by ``register_method``); ``run`` reads its settings from
      ``self.method_config``, an instance of it, and the shared ones (``seed``, ``target_modules``, ...) from
      ``self.config``.
    - ``requires_codebook`` / ``requires_forget_data`` / ``requires_retain_data``: inputs that must be given;
      [`FisherUnlearner`] refuses a call without them, with an error naming the argument, before any weight changes.
    - ``uses_codebook`` / ``uses_forget_data``: optional inputs the method uses when they are given.
    - ``uses_head_features``: in samples scope with held-out rows, the scope's check before the edit also keeps the
      rows' inputs to the output layer for the method (``request.head_features``), so that it need not run the
      model over them again.
    - ``scopes``: the ``UnlearningConfig.forget_scope`` values the method supports: ``("classes",)`` by default;
      ``("classes", "samples")`` for a method that can forget chosen training rows (``forget_dataset``) whatever
      their classes. The config refuses any other scope with an error naming ``forget_scope``. In samples scope
      the request holds ``forget_classes=[]`` and ``retain_classes`` = every class.
    - ``fisher_passes``: documentation only, which Fisher kinds the method computes and on what data, e.g.
      ``("batch_true on forget", "batch_true on retain")``.
    - ``supports_peft_adapter``: on a PEFT model (see [`hf_unlearn.peft_utils`]) [`FisherUnlearner`] narrows
      ``parameters`` to the active adapter's weights (LoRA matrices, the trainable head copy) and the frozen base
      weights must stay bit-identical. ``True`` (default): ``run`` honours that narrowed list. ``False``: the edit
      needs base weights, and the method is refused on a PEFT model until the adapter is merged
      (``model.merge_and_unload()``).
    - ``run(model, request)`` (required): edits the model in place as the [`ForgetRequest`] asks (classes, data,
      codebook), touching only the parameters named in ``request.parameters`` (the
      unlearner snapshots exactly those to count changes and to restore the model when the forgetting cannot be
      verified), and returns a [`MethodResult`]. Every process must apply the same edit.
    - ``target_parameters(model)`` (optional): which parameters the edit may touch; by default those matched by
      ``config.target_modules``, else all.
    - ``validate(...)`` (optional): checks beyond the generic ones, run before any weight changes.
    - ``restore(model, saved)`` / ``count_changed(model, saved)`` (optional): undo ``run`` from the unlearner's
      snapshot of ``request.parameters``, and count the weights it changed; a method whose ``run`` changes the
      model's structure (the deep ``mnemonic`` edit growing a PEFT adapter) overrides both.
    - ``describe(report)`` (optional): one or two sentences for the model card saying what the method changed.

    Args:
        config: the [`UnlearningConfig`]; its ``method_config`` holds the method's own settings.
        accelerator: an ``accelerate.Accelerator`` or ``None``; Fisher passes shard over its processes.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    requires_codebook: ClassVar[bool] = False
    requires_forget_data: ClassVar[bool] = False
    requires_retain_data: ClassVar[bool] = False
    uses_codebook: ClassVar[bool] = False
    uses_forget_data: ClassVar[bool] = False
    uses_head_features: ClassVar[bool] = False
    scopes: ClassVar[tuple[str, ...]] = ("classes",)
    fisher_passes: ClassVar[tuple[str, ...]] = ()
    supports_peft_adapter: ClassVar[bool] = True

    def __init__(self, config: UnlearningConfig, accelerator: Any = None):
        self.config = config
        self.accelerator = accelerator

    @property
    def method_config(self) -> MethodConfig:
        """The method's own settings: ``config.method_config``, an instance of ``config_class``."""
        settings = self.config.method_config
        if not isinstance(settings, self.config_class):
            raise ValueError(
                f"`method_config` is a {type(settings).__name__}, not the {self.config_class.__name__} of method "
                f"{self.name!r} (was `method` changed after the UnlearningConfig was made? make a new one)."
            )
        return settings

    def target_parameters(self, model: nn.Module) -> list[str]:
        """Names of the parameters the edit may touch: ``config.target_modules`` matched, else every parameter."""
        return match_parameters(model, self.config.target_modules)

    def fisher(
        self, model: nn.Module, dataset: Any, *, kind: str, parameters: list[str], data_collator: Any, max_samples=None
    ) -> tuple[dict[str, Any], int]:
        """``compute_fisher`` with this method's batch size and accelerator: ``(fisher, samples or batches used)``."""
        return compute_fisher(
            model,
            dataset,
            kind=kind,
            parameters=parameters,
            max_samples=max_samples,
            return_count=True,
            data_collator=data_collator,
            batch_size=self.config.fisher_batch_size,
            accelerator=self.accelerator,
        )

    def validate(
        self,
        model: nn.Module,
        *,
        codebook: MnemonicCodebook | None,
        forget_dataset: Any,
        retain_dataset: Any,
    ) -> None:
        """Extra input checks (the generic ones driven by the class attributes have passed). Raise ``ValueError``
        naming the argument at fault."""

    def restore(self, model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
        """Puts ``model`` back as it was before ``run`` (``saved``: the snapshot of ``request.parameters``)."""
        restore_(model, saved)

    def count_changed(self, model: nn.Module, saved: dict[str, torch.Tensor]) -> int:
        """How many weights ``run`` changed (against the snapshot ``saved``)."""
        return count_changed(model, saved)

    def run(self, model: nn.Module, request: ForgetRequest) -> MethodResult:
        """Edits ``model`` in place so that it forgets what ``request`` names; touches only ``request.parameters``."""
        raise NotImplementedError(f"{type(self).__name__} must implement `run`.")

    @classmethod
    def describe(cls, report: UnlearningReport) -> str:
        """Plain words for the model card: what this method changed in the model (from ``report.hyperparameters``)."""
        return f"The model was edited with the `{cls.name}` method."


def rows_sentence(report: UnlearningReport) -> str:
    """For a samples-scope report: which rows were targeted, by count and fingerprint only (never content); else ``""``.

    Methods append it to their ``describe`` text."""
    details = report.details if isinstance(report.details, dict) else {}
    rows = details.get("forget_rows")
    if details.get("forget_scope") != "samples" or not isinstance(rows, dict):
        return ""
    return (
        f" The data forgotten were {rows.get('count')} chosen training rows (SHA-256 fingerprint of their row ids and "
        f"content: {rows.get('fingerprint')}), whatever their classes; no class was removed."
    )
