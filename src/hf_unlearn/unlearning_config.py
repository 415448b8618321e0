"""UnlearningConfig: what to forget, with which method, and how the outcome is checked.

What every method shares lives here; each method's own settings are a [`MethodConfig`] subclass registered with it
(``hf_unlearn.methods.METHOD_CONFIGS``) and held in ``UnlearningConfig.method_config``, as PEFT gives each tuner its
own config class.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

CONFIG_FILE = "unlearning_config.json"
FORGET_SCOPES = ("classes", "samples")
BUILT_IN_METHODS = (
    "mnemonic",
    "mnemonic_head",
    "fisher_mask",
    "ssd",
    "fisher_noise",
    "logit_suppression",
    "neggrad_plus",
)
DEFAULT_METHOD = {"classes": "mnemonic", "samples": "neggrad_plus"}  # when `method` is not given


# ------------------------------------------------------------------------------------------------------ validation
def check_number(
    obj: Any,
    name: str,
    low: float = 0.0,
    high: float = math.inf,
    *,
    closed: str = "()",
    optional: bool = False,
    integer: bool = False,
) -> None:
    """Raises a ``ValueError`` naming ``name`` unless ``getattr(obj, name)`` is a number (an ``int`` when
    ``integer``) in the interval from ``low`` to ``high``, ``closed`` giving its brackets (``"[)"``: low included);
    ``None`` passes when ``optional``."""
    v = getattr(obj, name)
    if v is None and optional:
        return
    number = not isinstance(v, bool) and isinstance(v, int if integer else (int, float))
    ok = number and (v >= low if closed[0] == "[" else v > low) and (v <= high if closed[1] == "]" else v < high)
    if ok:
        return
    if high == math.inf and low == 0 and closed[0] == "(":
        what = "a positive integer" if integer else "a positive finite number"
    elif high == math.inf:
        what = f"{'an integer' if integer else 'a number'} >= {low:g}"
    else:
        what = f"{'an integer' if integer else 'a number'} in {closed[0]}{low:g}, {high:g}{closed[1]}"
    raise ValueError(f"`{name}` must be {what}{' or None' if optional else ''}, got {v!r}.")


def check_choice(obj: Any, name: str, choices: tuple[Any, ...]) -> None:
    """Raises a ``ValueError`` naming ``name`` unless ``getattr(obj, name)`` is one of ``choices``."""
    v = getattr(obj, name)
    if isinstance(v, bool) or v not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {v!r}.")


def check_bool(obj: Any, name: str) -> None:
    if not isinstance(getattr(obj, name), bool):
        raise ValueError(f"`{name}` must be True or False, got {getattr(obj, name)!r}.")


# ---------------------------------------------------------------------------------------------------- MethodConfig
@dataclass
class MethodConfig:
    """Base class of a method's own settings, registered with the method (``register_method(name, config_cls,
    method_cls)``) and held in ``UnlearningConfig.method_config``.

    A subclass is a dataclass whose fields each carry ``metadata={"help": ...}`` (the ``hf-unlearn forget`` flag's
    help) and are checked in ``__post_init__`` with a ``ValueError`` naming the field. Field names are flags of
    ``hf-unlearn forget``, so they carry the method's prefix (``mask_ratio``, ``ssd_alpha``) unless two methods mean
    the same setting by them.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _settings_of(method: str) -> type[MethodConfig]:
    from .methods import METHOD_CONFIGS

    return METHOD_CONFIGS[method]


def _owners(name: str) -> list[str]:
    """Registered methods whose config has a field ``name``."""
    from .methods import METHOD_CONFIGS

    return sorted(m for m, c in METHOD_CONFIGS.items() if name in {f.name for f in dataclasses.fields(c)})


def _foreign_setting(name: str, method: str, where: str) -> ValueError:
    """The error for a setting ``name`` that method ``method``'s config does not have."""
    owners = _owners(name)
    fields = [f.name for f in dataclasses.fields(_settings_of(method))]
    if owners:
        return ValueError(
            f"`{name}` is a setting of method {' and '.join(map(repr, owners))}, not of method {method!r} (its "
            f"settings: {fields or 'none'})."
        )
    return ValueError(f"{where} has no setting {name!r} for method {method!r} (its settings: {fields or 'none'}).")


# ------------------------------------------------------------------------------------------------ UnlearningConfig
@dataclass
class UnlearningConfig:
    r"""
    Configuration for [`FisherUnlearner`]: what to forget, with which method, and how the outcome is checked. The
    method's own settings are its registered config class, given as ``method_config`` (see each method's config:
    [`MnemonicDeepConfig`], [`MnemonicHeadConfig`], [`FisherMaskConfig`], [`SSDConfig`], [`FisherNoiseConfig`],
    [`LogitSuppressionConfig`], [`NegGradPlusConfig`]). Works with [`~transformers.HfArgumentParser`]: each field is
    a flag (``--method_config`` takes JSON). Save and load it with [`save_pretrained`] / [`from_pretrained`] (a sorted
    JSON file recording the library version and the nested method settings).

    Parameters that control what is forgotten:
        method (`str`, defaults to `"mnemonic"` for classes, `"neggrad_plus"` for samples):
            A method registered in `hf_unlearn.methods.METHODS`: `"neggrad_plus"` (samples scope only, the default
            there: fine-tuning on the retained rows with forget-loss ascent), `"mnemonic"` (from the model's mnemonic
            codes, no training data; removes the forgotten classes from the representation), `"mnemonic_head"` (the
            same codes, output layer only: hides the classes' output), `"fisher_mask"`, `"ssd"`, `"fisher_noise"`
            (from forget and retain data) or `"logit_suppression"` (the baseline that only lowers the output bias).
        method_config (the method's config class, a `dict` or a JSON string; defaults to the method's defaults):
            The method's own settings, e.g. `FisherMaskConfig(mask_ratio=0.05)` or `{"mask_ratio": 0.05}` (a dict or
            JSON string is converted to `METHOD_CONFIGS[method]`). A setting of another method is refused with an
            error naming it. The old flat spelling (`UnlearningConfig(mask_ratio=0.05)`, `config.mask_ratio`) still
            works for one release, with a `FutureWarning`.
        forget_scope (`str`, defaults to `"classes"`):
            What is forgotten: `"classes"` (every sample of `forget_classes`) or `"samples"` (exactly the training
            rows given as `forget_dataset`, or as `forget_rows` of a `train_dataset`, whatever their classes). A
            method declares the scopes it supports (`UnlearningMethod.scopes`): `fisher_mask`, `ssd` and
            `fisher_noise` do both; `mnemonic` (codes are per class) and `logit_suppression` (an output bias per
            class) only `"classes"`. In samples scope success is not accuracy 0 on the forgotten rows but looking
            like held-out data (see `verification_tolerance`).
        forget_classes (`list[str]`, defaults to `[]`):
            Classes to forget: ids or label names (e.g. `3` or `"LOC"`). Required in classes scope; must stay empty
            in samples scope (the rows say what is forgotten).
        seed (`int`, defaults to `0`):
            Seed for anything random (Fisher-noise draws, SSD's shuffled full-data pass, the rows recipe).
        target_modules (`list[str]` or `None`, defaults to `None`):
            Parameters the edit may touch (module or parameter names, wildcards allowed). Default: the output layer
            for mnemonic `"search"`, the output bias for `"logit_suppression"`, every parameter otherwise.

    Parameters that control how the outcome is checked:
        verification_tolerance (`float`, defaults to `0.05`):
            Classes scope: after the edit, the forget classes' accuracy is measured on every evidence available (their
            learned codes, the forget samples, the forget-class rows of the evaluation data). The forgetting counts as
            verified when it is at most this on every one of them. Samples scope: the forget rows' accuracy (at their
            training labels) may exceed the held-out accuracy on `eval_dataset` by at most this, and their
            loss-based membership AUC against the held-out rows may exceed 0.5 by at most the larger of this and two
            standard errors of a chance AUC, and the held-out accuracy may fall by at most the larger of this and two
            binomial standard errors from that of the model before the edit (a wrecked model would otherwise make the
            forget rows "look like" held-out rows); without `eval_dataset` the outcome is "unverified".
            Classes scope also requires that the model recognised each forget class before the edit on some evidence
            (accuracy above this): a class it already got wrong has nothing to forget and is not counted.
        max_retained_drop (`float`, defaults to `0.05`):
            Classes scope: the retained classes' accuracy is measured before and after the edit on the same evidence
            (their codes, up to 512 retained samples, the retained rows of the evaluation data); a fall of more than
            this on any of them makes the edit "incomplete" (refused and restored unless `allow_incomplete`).
        allow_incomplete (`bool`, defaults to `False`):
            By default an edit that cannot be verified (accuracy above the tolerance, or no evidence at all) raises
            `UnlearningIncompleteError` and the model is restored. With `True` the edit is kept and the report
            records `"incomplete"` or `"unverified"`.

    Parameters that control one-shot edits of rows (`"fisher_mask"`, `"ssd"`, `"fisher_noise"` in samples scope):
        strength_search (`bool`, defaults to `True`):
            With `eval_dataset` (held-out rows), the edit's strength is chosen from the held-out rows: from weak to
            the configured value (`mask_ratio`, `ssd_alpha`, `noise_alpha` is the strongest rung), the first strength
            whose edit passes the samples verification is kept; none passing, the model is restored and the edit is
            reported incomplete. `False`: the configured strength, once.

    Parameters that control the Fisher passes (`"fisher_mask"`, `"ssd"`, `"fisher_noise"`):
        fisher_batch_size (`int`, defaults to `16`):
            Samples per Fisher chunk or mini-batch.
        max_forget_samples (`int` or `None`), max_retain_samples (`int` or `None`), defaults to `None`:
            Caps on the samples the Fisher passes read.
    """

    # Parameters that control what is forgotten
    method: str | None = field(
        default=None,
        metadata={
            "help": f"Unlearning method: a name registered in hf_unlearn.methods.METHODS {BUILT_IN_METHODS}. "
            "Default: mnemonic for --forget_scope classes, neggrad_plus for --forget_scope samples. Its settings "
            "are the flags grouped under its name below."
        },
    )
    method_config: MethodConfig | str | dict | None = field(
        default=None,
        metadata={
            "help": "The method's settings as JSON (e.g. '{\"mask_ratio\": 0.05}'; in a --config file, a mapping); "
            "the method's own flags below win over it. Default: the method's defaults."
        },
    )
    forget_scope: str = field(
        default="classes",
        metadata={
            "help": "'classes' (forget every sample of --forget_classes) or 'samples' (forget exactly the given "
            "training rows, whatever their classes; fisher_mask, ssd, fisher_noise)."
        },
    )
    forget_classes: list[str] = field(
        default_factory=list,
        metadata={"help": "Classes to forget: ids or label names (e.g. 3 or 'LOC'); empty in samples scope."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for anything random (Fisher-noise draws, SSD's shuffle)."})
    target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Parameters the edit may touch (module/parameter names, wildcards allowed). Default: the output "
            "layer for mnemonic 'search', the output bias for logit_suppression, every parameter otherwise."
        },
    )

    # Parameters that control how the outcome is checked
    verification_tolerance: float = field(
        default=0.05,
        metadata={
            "help": "Largest forget-class accuracy, on every evidence available (learned codes, forget samples, "
            "forget-class rows of the eval data), at which the forgetting counts as verified. Samples scope: how far the "
            "forget rows' accuracy may exceed the held-out rows' and the held-out accuracy may fall (at least 2 s.e.)."
        },
    )
    max_retained_drop: float = field(
        default=0.05,
        metadata={
            "help": "Classes scope: largest fall of the retained classes' accuracy, on every evidence measured before "
            "and after the edit (their codes, retained samples, retained rows of the eval data), at which the "
            "forgetting counts as verified; a larger fall makes the edit incomplete (refused and restored)."
        },
    )
    allow_incomplete: bool = field(
        default=False,
        metadata={
            "help": "Keep an edit whose forgetting is incomplete or cannot be checked (the report says so) instead "
            "of raising UnlearningIncompleteError and restoring the model."
        },
    )

    # Parameters that control one-shot edits of rows
    strength_search: bool = field(
        default=True,
        metadata={
            "help": "Samples scope, fisher_mask / ssd / fisher_noise: choose the edit's strength from the held-out "
            "rows (eval_dataset), up to the configured value; False: the configured strength once."
        },
    )

    # Parameters that control the Fisher passes
    fisher_batch_size: int = field(
        default=16,
        metadata={
            "help": "fisher_mask / ssd / fisher_noise: samples per Fisher chunk / mini-batch. The batched kinds depend "
            "on it: the Fisher-masking authors use 128 and SSD's 64 (set those to reproduce them); 16 is kept as the "
            "default because the library's measured results and small-data defaults were set with it."
        },
    )
    max_forget_samples: int | None = field(default=None, metadata={"help": "Cap on forget samples for the Fisher."})
    max_retain_samples: int | None = field(default=None, metadata={"help": "Cap on retain samples for the Fisher."})

    def __post_init__(self):
        from .methods import METHODS

        flat = self.__dict__.pop("_flat_settings", {})  # old flat names, set by __init__ (see _accept_flat_names)
        if self.method is None:  # the scope's default method
            self.method = DEFAULT_METHOD.get(self.forget_scope, DEFAULT_METHOD["classes"])
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {sorted(METHODS)}, got {self.method!r}.")
        self.method_config = self._method_settings(self.method_config, flat)
        if isinstance(self.forget_classes, (int, str)):
            self.forget_classes = [self.forget_classes]
        self.forget_classes = list(self.forget_classes)
        if self.forget_scope not in FORGET_SCOPES:
            raise ValueError(f"`forget_scope` must be one of {FORGET_SCOPES}, got {self.forget_scope!r}.")
        if self.forget_scope == "samples" and self.forget_classes:
            raise ValueError(
                "`forget_classes` must be empty with forget_scope='samples': the rows given say what is forgotten "
                "(use forget_scope='classes' to forget whole classes)."
            )
        scopes = getattr(METHODS[self.method], "scopes", ("classes",))
        if self.forget_scope not in scopes:
            able = sorted(n for n, m in METHODS.items() if self.forget_scope in getattr(m, "scopes", ("classes",)))
            raise ValueError(
                f"`forget_scope` {self.forget_scope!r} is not supported by method {self.method!r} (it forgets "
                f"{' or '.join(scopes)} only); methods that do: {able}."
            )
        t = self.verification_tolerance
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t < 1.0:
            raise ValueError(f"`verification_tolerance` must lie in [0, 1), got {t!r}.")
        d = self.max_retained_drop
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d <= 1.0:
            raise ValueError(f"`max_retained_drop` must lie in [0, 1], got {d!r}.")
        check_bool(self, "allow_incomplete")
        check_bool(self, "strength_search")
        if int(self.fisher_batch_size) < 1:
            raise ValueError(f"`fisher_batch_size` must be >= 1, got {self.fisher_batch_size}.")
        for name in ("max_forget_samples", "max_retain_samples"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"`{name}` must be >= 1 or None, got {v}.")

    def _method_settings(self, value: Any, flat: dict[str, Any]) -> MethodConfig:
        """``method_config`` as the method's config class (from an instance, a dict, JSON or ``None``), with the
        deprecated flat settings ``flat`` applied."""
        config_cls = _settings_of(self.method)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as e:
                raise ValueError(f"`method_config` is not valid JSON ({e}): {value!r}.") from e
        if value is None:
            value = {}
        if isinstance(value, dict):
            value = {str(k): v for k, v in value.items()}
            for name in value:
                if name not in _field_names(config_cls):
                    raise _foreign_setting(name, self.method, "`method_config`")
            value = config_cls(**value)
        if not isinstance(value, config_cls):
            raise ValueError(
                f"`method_config` must be a {config_cls.__name__} (the settings of method {self.method!r}), a dict "
                f"or a JSON string, got {type(value).__name__}."
            )
        if flat:
            for name in flat:
                if name not in _field_names(config_cls):
                    raise _foreign_setting(name, self.method, "`UnlearningConfig`")
            warnings.warn(
                f"Passing {', '.join(f'{k}=' for k in flat)} to UnlearningConfig is deprecated and will be removed in "
                f"the next release: pass method_config={{{', '.join(f'{k!r}: ...' for k in flat)}}} (the "
                f"{config_cls.__name__} of method {self.method!r}) instead.",
                FutureWarning,
                stacklevel=5,
            )
            value = dataclasses.replace(value, **flat)
        return value

    # old flat names: read and set through to method_config, with a FutureWarning (one release)
    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("method_config")
        if isinstance(settings, MethodConfig) and name in _field_names(type(settings)):
            warnings.warn(
                f"`UnlearningConfig.{name}` is deprecated and will be removed in the next release: read "
                f"`config.method_config.{name}`.",
                FutureWarning,
                stacklevel=2,
            )
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        settings = self.__dict__.get("method_config")
        if name not in _OWN_FIELDS and isinstance(settings, MethodConfig) and name in _field_names(type(settings)):
            warnings.warn(
                f"Setting `UnlearningConfig.{name}` is deprecated and will be removed in the next release: set "
                f"`config.method_config.{name}`.",
                FutureWarning,
                stacklevel=2,
            )
            setattr(settings, name, value)
            return
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Writes ``unlearning_config.json`` (sorted keys, the method's settings nested under ``method_config``, the
        library version) into ``save_directory``."""
        from . import __version__

        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_FILE)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({**self.to_dict(), "hf_unlearn_version": __version__}, f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> UnlearningConfig:
        """Reads ``unlearning_config.json`` from ``directory`` (or the file itself); unknown keys are ignored.

        A file written before the method settings were nested (flat ``mask_ratio``, ``ssd_alpha``, ...) still loads:
        the chosen method's flat settings go into ``method_config`` with a ``FutureWarning``, the other methods'
        (their defaults, in such a file) are dropped."""
        path = os.path.join(directory, CONFIG_FILE) if os.path.isdir(directory) else str(directory)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"`directory` {str(directory)!r} holds no {CONFIG_FILE}.")
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        kwargs = {k: v for k, v in d.items() if k in _OWN_FIELDS}
        flat = {k: v for k, v in d.items() if k not in _OWN_FIELDS and _owners(k)}
        if flat and "method_config" not in d:
            method = kwargs.get("method") or DEFAULT_METHOD.get(kwargs.get("forget_scope", "classes"), "mnemonic")
            mine = {k: v for k, v in flat.items() if k in _field_names(_settings_of(method))}
            if method == "mnemonic_head" and mine.get("mnemonic_variant") == "deep":
                mine["mnemonic_variant"] = "search"  # what "deep" meant for mnemonic_head
            if mine:
                warnings.warn(
                    f"{path} holds the method's settings as flat keys ({', '.join(sorted(mine))}), a layout that "
                    "will not load after the next release: they are read into `method_config`; save the config "
                    "again to write the new layout.",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs["method_config"] = mine
        return cls(**kwargs)


_OWN_FIELDS = frozenset(f.name for f in dataclasses.fields(UnlearningConfig))


@functools.cache
def _field_names(config_cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(config_cls) if f.init)


def _accept_flat_names(cls: type) -> None:
    """Lets ``cls(**kwargs)`` take the old flat method settings (``mask_ratio=...``) for one release: they are kept
    aside for ``__post_init__``, which moves them into ``method_config`` with a ``FutureWarning``."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        flat = {k: kwargs.pop(k) for k in list(kwargs) if k not in _OWN_FIELDS}
        for name in flat:
            if not _owners(name):
                raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument {name!r}")
        object.__setattr__(self, "_flat_settings", flat)
        init(self, *args, **kwargs)

    cls.__init__ = __init__


_accept_flat_names(UnlearningConfig)
