"""PEFT models (``peft.PeftModel``, or a transformers model carrying adapters) in hf_unlearn: which weights an
unlearning method may edit.

A PEFT model keeps its base weights frozen and saves only its adapter: the adapter weights of every tuner layer
(LoRA's ``lora_A`` / ``lora_B``, ...) and the trainable copies of the ``modules_to_save`` (usually the
classification head). Unlearning follows the same split: on a PEFT model a method edits only the *adapter
weights* of the active adapter, exactly the tensors that ``save_pretrained`` writes into
``adapter_model.safetensors``; the frozen base weights (and the head's frozen original) stay bit-identical, so the
unlearned adapter can be published alone over the same base model. The deep ``mnemonic`` edit, whose changes reach
base weights, is delivered as adapter weights instead (LoRA grown, edited modules added to ``modules_to_save``:
``hf_unlearn.methods.mnemonic.adapter``). A method whose edit needs base weights is refused with an error that says
how to merge first: ``model = model.merge_and_unload()`` gives a plain transformers model, which every method edits
in full and which saves as a full model.

Nothing here imports ``peft`` unless a PEFT model is passed: a model can only hold PEFT layers once ``peft`` has
been imported by whoever built it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from torch import nn

MERGE_HINT = (
    "merge the adapter into the base model first (`model = model.merge_and_unload()`), then unlearn and save the "
    "merged model"
)


def _peft_classes() -> tuple[type, type] | None:
    """``(BaseTunerLayer, ModulesToSaveWrapper)`` when peft is already imported, else None (no import here)."""
    if "peft" not in sys.modules:
        return None
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import ModulesToSaveWrapper

    return BaseTunerLayer, ModulesToSaveWrapper


def is_peft_model(model: nn.Module) -> bool:
    """Whether ``model`` holds PEFT adapter layers (a ``peft.PeftModel``, a tuner model, or a transformers model with
    ``add_adapter``). Never imports peft."""
    classes = _peft_classes()
    if classes is None or not isinstance(model, nn.Module):
        return False
    return any(isinstance(m, classes) for m in model.modules())


def _active(module: nn.Module) -> list[str]:
    names = getattr(module, "active_adapters", None)
    if names is None:
        names = getattr(module, "active_adapter", None)
    if isinstance(names, str):
        names = [names]
    return list(names or [])


def adapter_module_prefixes(model: nn.Module) -> list[str]:
    """Qualified names of the containers holding the active adapter's weights: ``<layer>.lora_A.<adapter>``, ...
    and ``<wrapper>.modules_to_save.<adapter>`` (the trainable head copy)."""
    classes = _peft_classes()
    if classes is None:
        return []
    tuner_layer, to_save = classes
    prefixes = []
    for name, module in model.named_modules():
        dot = f"{name}." if name else ""
        if isinstance(module, to_save):
            prefixes += [f"{dot}modules_to_save.{a}" for a in _active(module) if a in module.modules_to_save]
        elif isinstance(module, tuner_layer):
            for attr in getattr(module, "adapter_layer_names", ()):
                container = getattr(module, attr, None)
                if isinstance(container, (nn.ModuleDict, nn.ParameterDict)):
                    prefixes += [f"{dot}{attr}.{a}" for a in _active(module) if a in container]
    return prefixes


def adapter_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters of the active adapter (what the adapter file holds), in the model's order."""
    prefixes = adapter_module_prefixes(model)
    return [n for n, _ in model.named_parameters() if any(n == p or n.startswith(p + ".") for p in prefixes)]


def adapter_internal_modules(model: nn.Module) -> set[str]:
    """Names of the modules inside tuner layers' adapter containers and of the frozen originals of the
    ``modules_to_save``: never the model's classification head (a LoRA ``lora_B`` has ``num_labels`` outputs when
    the head itself is adapted)."""
    classes = _peft_classes()
    if classes is None:
        return set()
    tuner_layer, to_save = classes
    roots = []
    for name, module in model.named_modules():
        dot = f"{name}." if name else ""
        if isinstance(module, to_save):
            roots.append(f"{dot}original_module")
        elif isinstance(module, tuner_layer):
            roots += [f"{dot}{attr}" for attr in getattr(module, "adapter_layer_names", ())]
    return {n for n, _ in model.named_modules() if any(n == r or n.startswith(r + ".") for r in roots)}


def calling_layer(model: nn.Module, name: str) -> str:
    """The name of the module the model calls in place of module ``name``: for a tuner layer's ``base_layer`` the
    tuner layer (a LoRA ``Linear``...), for a trainable copy ``<wrapper>.modules_to_save.<adapter>`` the
    ``ModulesToSaveWrapper``; else ``name`` itself. That module gets ``name``'s input and applies what the adapter
    makes of it (base + LoRA delta, or the active head copy)."""
    classes = _peft_classes()
    if classes is None:
        return name
    tuner_layer, to_save = classes
    modules = dict(model.named_modules())
    while True:
        parts = name.split(".")
        if (
            len(parts) >= 2
            and parts[-1] == "base_layer"
            and isinstance(modules.get(".".join(parts[:-1])), tuner_layer)
        ):
            name = ".".join(parts[:-1])
        elif (
            len(parts) >= 3
            and parts[-2] == "modules_to_save"
            and isinstance(modules.get(".".join(parts[:-2])), to_save)
        ):
            name = ".".join(parts[:-2])
        else:
            return name


def base_relative_name(name: str) -> str:
    """A PEFT parameter or module name as the base model names it: ``base_model.model.`` dropped and the wrapper
    parts (``base_layer``, ``modules_to_save.<adapter>``, ``original_module``) removed; ``lora_A.<adapter>`` stays."""
    parts = name.removeprefix("base_model.model.").split(".")
    out, i = [], 0
    while i < len(parts):
        if parts[i] == "modules_to_save" and i + 1 < len(parts):
            i += 2
            continue
        if parts[i] in ("base_layer", "original_module"):
            i += 1
            continue
        out.append(parts[i])
        i += 1
    return ".".join(out)


def restrict_to_adapter(model: nn.Module, names: Iterable[str], method: str) -> list[str]:
    """``names`` narrowed to the active adapter's weights; ``ValueError`` naming ``model`` when none remains."""
    names = list(names)
    adapter = set(adapter_parameter_names(model))
    kept = [n for n in names if n in adapter]
    if not kept:
        shown = ", ".join(f"`{base_relative_name(n)}`" for n in names[:3]) + (", ..." if len(names) > 3 else "")
        raise ValueError(
            f"`model` is a PEFT model and method {method!r} would edit only weights outside its adapter ({shown}), "
            "which stay frozen so that the adapter can be published alone. Adapt those modules (LoRA "
            "`target_modules`, or `modules_to_save` for the classification head), or " + MERGE_HINT + "."
        )
    return kept


class FrozenGuard:
    """Records the version counters of every non-adapter parameter; [`changed`] names those an in-place edit
    touched since (any ``copy_``, ``add_``, ``masked_fill_``... on the parameter bumps its version), at no copy cost.
    A method's contract check, not a sandbox: writes through ``.data`` (its own version counter) are not seen."""

    def __init__(self, model: nn.Module):
        adapter = set(adapter_parameter_names(model))
        self.params = {n: p for n, p in model.named_parameters() if n not in adapter}
        self.versions = {n: (p._version, p.data_ptr()) for n, p in self.params.items()}

    def changed(self) -> list[str]:
        return [n for n, p in self.params.items() if (p._version, p.data_ptr()) != self.versions[n]]
