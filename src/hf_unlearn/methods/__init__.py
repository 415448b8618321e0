"""The unlearning methods and their registry.

``METHODS`` maps a method's name (``UnlearningConfig.method``) to its [`UnlearningMethod`] subclass and
``METHOD_CONFIGS`` (a read-only view of it) to its settings class, a [`MethodConfig`] subclass held in
``UnlearningConfig.method_config``. Each method ends with ``register_method(name, config_cls, method_cls)``.

The built-in methods are imported (and so registered) on the first look into ``METHODS``; their settings classes
(``configs.py``) need no torch, so ``METHOD_CONFIGS`` lists them without importing it (``hf-unlearn forget --help``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..unlearning_config import MethodConfig
from .configs import (
    FisherMaskConfig,
    FisherNoiseConfig,
    LogitSuppressionConfig,
    MnemonicDeepConfig,
    MnemonicHeadConfig,
    NegGradPlusConfig,
    SSDConfig,
)

if TYPE_CHECKING:
    from .base import ForgetRequest, MethodResult, UnlearningMethod

# the built-in methods, in the order --help lists them, and the modules that register them
BUILT_IN_CONFIGS: dict[str, type[MethodConfig]] = {
    "mnemonic_head": MnemonicHeadConfig,
    "mnemonic": MnemonicDeepConfig,
    "fisher_mask": FisherMaskConfig,
    "ssd": SSDConfig,
    "fisher_noise": FisherNoiseConfig,
    "logit_suppression": LogitSuppressionConfig,
    "neggrad_plus": NegGradPlusConfig,
}
_BUILT_IN_MODULES = ("mnemonic", "fisher_mask", "ssd", "fisher_noise", "logit_suppression", "retain_finetune")


class _Registry(dict):
    """``METHODS``: a dict that imports the built-in methods (which register themselves) before its first read."""

    loaded = False

    def load(self) -> None:
        if not _Registry.loaded:
            _Registry.loaded = True
            for module in _BUILT_IN_MODULES:
                importlib.import_module(f"{__name__}.{module}")

    def __getitem__(self, name: str) -> Any:
        self.load()
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self.load()
        return super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        self.load()
        return super().__iter__()

    def __len__(self) -> int:
        self.load()
        return super().__len__()

    def __repr__(self) -> str:
        self.load()
        return super().__repr__()

    def get(self, name: str, default: Any = None) -> Any:
        self.load()
        return super().get(name, default)

    def keys(self):
        self.load()
        return super().keys()

    def values(self):
        self.load()
        return super().values()

    def items(self):
        self.load()
        return super().items()


METHODS: dict[str, type[UnlearningMethod]] = _Registry()


class _MethodConfigs(Mapping):
    """``METHOD_CONFIGS``: each method's settings class (``METHODS[name].config_class``), read-only. Before the
    built-in methods are imported it answers from their settings classes (no torch) and the methods registered."""

    def _names(self) -> list[str]:
        if _Registry.loaded:
            return list(METHODS)
        return [*BUILT_IN_CONFIGS, *(n for n in dict.keys(METHODS) if n not in BUILT_IN_CONFIGS)]

    def __getitem__(self, name: str) -> type[MethodConfig]:
        if dict.__contains__(METHODS, name):
            return dict.__getitem__(METHODS, name).config_class
        if not _Registry.loaded and name in BUILT_IN_CONFIGS:
            return BUILT_IN_CONFIGS[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


METHOD_CONFIGS: Mapping[str, type[MethodConfig]] = _MethodConfigs()


def register_method(
    name: str | type[UnlearningMethod],
    config_cls: type[MethodConfig] | None = None,
    method_cls: type[UnlearningMethod] | None = None,
) -> type[UnlearningMethod]:
    """Registers ``method_cls`` under ``name`` with its settings class ``config_cls``; returns ``method_cls``.

    ``register_method(MyMethod)`` (one argument, usable as a class decorator) registers ``MyMethod`` under
    ``MyMethod.name`` with its ``config_class`` (default: the empty [`MethodConfig`], no settings of its own).

    Raises:
        TypeError: if ``method_cls`` is not a subclass of ``UnlearningMethod`` or ``config_cls`` not a dataclass
            subclassing ``MethodConfig``.
        ValueError: if the name is missing, not a string, already registered or not ``method_cls.name``, or a
            setting's name is one of ``UnlearningConfig``'s own fields.
    """
    from ..unlearning_config import UnlearningConfig
    from .base import UnlearningMethod

    if method_cls is None and config_cls is None and isinstance(name, type):  # the one-argument form
        method_cls, name = name, getattr(name, "name", None)
        config_cls = getattr(method_cls, "config_class", MethodConfig)
    if not (isinstance(method_cls, type) and issubclass(method_cls, UnlearningMethod)):
        raise TypeError(f"`method_cls` must be a subclass of UnlearningMethod, got {method_cls!r}.")
    if not isinstance(name, str) or not name:
        raise ValueError(f"`{method_cls.__name__}.name` must be a non-empty string (the registry key), got {name!r}.")
    if getattr(method_cls, "name", name) != name:
        raise ValueError(f"`name` {name!r} differs from `{method_cls.__name__}.name` {method_cls.name!r}.")
    if not (isinstance(config_cls, type) and issubclass(config_cls, MethodConfig)) or not dataclasses.is_dataclass(
        config_cls
    ):
        raise TypeError(f"`config_cls` must be a dataclass subclassing MethodConfig, got {config_cls!r}.")
    if dict.__contains__(METHODS, name) or (name in BUILT_IN_CONFIGS and name in METHODS):
        raise ValueError(
            f"An unlearning method named {name!r} is already registered ({METHODS[name].__name__}); pick another name."
        )
    shared = {f.name for f in dataclasses.fields(UnlearningConfig)} & {f.name for f in dataclasses.fields(config_cls)}
    if shared:
        raise ValueError(
            f"`{config_cls.__name__}` repeats UnlearningConfig's own field(s) {sorted(shared)}; rename them."
        )
    method_cls.name = name
    method_cls.config_class = config_cls
    dict.__setitem__(METHODS, name, method_cls)
    return method_cls


def __getattr__(name: str) -> Any:  # the base classes import torch: on first use
    if name in ("ForgetRequest", "MethodResult", "UnlearningMethod"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILT_IN_CONFIGS",
    "METHODS",
    "METHOD_CONFIGS",
    "ForgetRequest",
    "MethodConfig",
    "MethodResult",
    "UnlearningMethod",
    "register_method",
]
