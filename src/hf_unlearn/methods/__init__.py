"""The unlearning methods, one file each, and their registry.

``METHODS`` maps a method's name (``UnlearningConfig.method``) to its [`UnlearningMethod`] subclass. Each method
file ends with ``register_method(TheClass)``; importing this package imports them all.
"""

from __future__ import annotations

from .base import ForgetRequest, MethodResult, UnlearningMethod

METHODS: dict[str, type[UnlearningMethod]] = {}


def register_method(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Adds ``cls`` to ``METHODS`` under ``cls.name``; returns ``cls`` (usable as a class decorator).

    Raises:
        TypeError: if ``cls`` is not a subclass of ``UnlearningMethod``.
        ValueError: if ``cls.name`` is missing, not a string, or already registered.
    """
    if not (isinstance(cls, type) and issubclass(cls, UnlearningMethod)):
        raise TypeError(f"`cls` must be a subclass of UnlearningMethod, got {cls!r}.")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"`{cls.__name__}.name` must be a non-empty string (the registry key), got {name!r}.")
    if name in METHODS:
        raise ValueError(
            f"An unlearning method named {name!r} is already registered ({METHODS[name].__name__}); pick another name."
        )
    METHODS[name] = cls
    return cls


# the built-in methods register themselves on import
from . import fisher_mask, fisher_noise, logit_suppression, mnemonic, retain_finetune, ssd  # noqa: E402,F401

__all__ = ["METHODS", "ForgetRequest", "MethodResult", "UnlearningMethod", "register_method"]
