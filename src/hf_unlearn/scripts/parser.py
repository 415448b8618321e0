"""The parser of the ``hf-unlearn`` commands: ``transformers.HfArgumentParser`` with ``--config`` and one-line errors.

As TRL's ``TrlParser``: every field of the dataclasses given is a flag in both spellings (``--output_dir`` and
``--output-dir``, as ``HfArgumentParser`` adds them); ``--config file.yaml`` sets flags from the file's keys, and
flags on the command line win. Settings dataclasses (a method's own settings) add flags that are set only when given,
grouped per dataclass, and gathered into one mapping field (``method_config``). Every error (unknown flag, bad value, missing flag, a value a dataclass refuses) is a
[`CLIError`]: one line naming the flag, exit status 2.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import re
import types
import typing
import warnings
from collections.abc import Sequence
from typing import Any

from transformers import HfArgumentParser
from transformers.hf_argparser import string_to_bool


class CLIError(Exception):
    """An error in the command line or a failed run: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def flags_in_message(message: str, parser: argparse.ArgumentParser | None) -> str:
    """hf_unlearn's errors name fields as `` `field` `` (or `` `field=value` ``): ``--field`` when it is a flag here."""
    if parser is None:
        return message
    flags = {s[2:] for s in parser._option_string_actions if s.startswith("--")}

    def flag(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        if name not in flags:
            return m.group(0)
        return f"--{name}" if value is None else f"--{name} {value.lower() if value in ('True', 'False') else value}"

    return re.sub(r"`(\w+)(?:=([^`\s]+))?`", flag, message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wide help; ``(default: ...)`` after the flags whose default says something (not None, False or empty)."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=36, width=119)

    def _get_help_string(self, action: argparse.Action) -> str:
        help_, default = action.help or "", action.default
        if (
            action.help is argparse.SUPPRESS
            or action.required
            or not action.option_strings
            or isinstance(action, argparse._StoreFalseAction)
            or default is None
            or default is False
            or default == []
            or default == ""
            or default is argparse.SUPPRESS
        ):
            return help_
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{help_} (default: {shown.replace('%', '%%')})"


class HfUnlearnParser(HfArgumentParser):
    """``HfArgumentParser`` for the ``hf-unlearn`` commands: ``--config``, one-line errors, flags in groups.

    Args:
        dataclass_types: the dataclasses whose fields are flags (a field name shared by two is one flag filling both).
        prog: the command's name in usage and error lines.
        description: text under the usage line.
        required: names of fields that must be given (besides fields with ``metadata["required"]``).
        groups: ``(title, [field names])`` pairs shown first in ``--help``; the other fields follow, one group per
            dataclass.
        titles: the titles of the dataclasses' groups (default: the first line of each one's docstring).
        defaults: defaults that differ from the dataclasses' own.
        usage: the usage line (default: every flag).
        settings: ``(label, dataclass)`` pairs, e.g. ``("--method ssd", SSDConfig)``: their fields are flags too, one
            group per dataclass (a field already a flag is not repeated), set only when given (on the command line
            or in ``--config``); ``given_settings()`` returns them.
        settings_field: a field of ``dataclass_types`` (``"method_config"``) that receives the given settings as a
            dict, over its own value (a JSON string, or a mapping in ``--config``, whose keys are settings flags).

    Field metadata: ``help``, ``required``, ``aliases`` (as ``HfArgumentParser``), and ``no_help``, the help of the
    ``--no_<name>`` flag of a boolean field that defaults to True.
    """

    def __init__(
        self,
        dataclass_types: Sequence[type],
        prog: str | None = None,
        description: str = "",
        *,
        required: Sequence[str] = (),
        groups: Sequence[tuple[str, Sequence[str]]] = (),
        titles: dict[type, str] | None = None,
        defaults: dict[str, Any] | None = None,
        usage: str | None = None,
        settings: Sequence[tuple[str, type]] = (),
        settings_field: str | None = None,
    ):
        super().__init__(
            (), prog=prog, usage=usage, description=description, allow_abbrev=False, formatter_class=_HelpFormatter
        )
        self.add_argument("--config", metavar="FILE.yaml", help="YAML file of flag values (flags given here win).")
        self.dataclass_types = list(dataclass_types)
        self.field_actions: dict[str, argparse.Action] = {}  # field name -> its flag
        fields = {}
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)
            for f in dataclasses.fields(dtype):
                if f.init:
                    fields.setdefault(f.name, (f, hints[f.name]))
        for title, names in groups:
            group = self.add_argument_group(title)
            for name in names:
                if name in fields:
                    self._add_field(group, *fields.pop(name))
        for dtype in self.dataclass_types:
            rest = [f.name for f in dataclasses.fields(dtype) if f.name in fields]
            if rest:
                group = self.add_argument_group((titles or {}).get(dtype) or _title(dtype))
                for name in rest:
                    self._add_field(group, *fields.pop(name))
        self.settings_field = settings_field
        self.settings_fields: dict[str, list[tuple[str, Any]]] = {}  # setting -> (label, default) of each dataclass
        for label, dtype in settings:
            for f in dataclasses.fields(dtype):
                if f.init:
                    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                    self.settings_fields.setdefault(f.name, []).append((label, default))
        for label, dtype in settings:
            hints = typing.get_type_hints(dtype)
            new = [f for f in dataclasses.fields(dtype) if f.init and f.name not in self.field_actions]
            shared = [f.name for f in dataclasses.fields(dtype) if f.init and f.name in self.field_actions]
            title = f"settings of {label} ({dtype.__name__})"
            owners = {self.settings_fields[n][0][0] for n in shared}  # the first dataclass that has each
            if len(owners) == 1:
                title += f", and the settings of {owners.pop()} above"
            elif shared:
                title += f", and {', '.join('--' + n for n in shared)} above"
            group = self.add_argument_group(title)
            for f in new:
                first = len(self._actions)
                self._add_field(group, f, hints[f.name])
                for action in self._actions[first:]:
                    action.default = argparse.SUPPRESS  # in the namespace only when given
                    if not isinstance(action, argparse._StoreFalseAction):
                        action.help = _with_defaults(action.help, self.settings_fields[f.name])
        self.set_defaults(**(defaults or {}))
        for name in required:
            self.field_actions[name].required = True

    def _add_field(self, group: argparse._ArgumentGroup, f: dataclasses.Field, hint: Any) -> None:
        f = copy.copy(f)  # HfArgumentParser rewrites the field's type: a copy, so the dataclass's own stays
        f.type = hint
        metadata = dict(f.metadata)
        no_help = metadata.pop("no_help", f"Sets --{f.name} to false.")
        f.metadata = types.MappingProxyType(metadata)
        first = len(self._actions)
        self._parse_dataclass_field(group, f)
        self.field_actions[f.name] = self._actions[first]
        for action in self._actions[first:]:
            if action.type is string_to_bool:  # --flag alone means true, also when the default is None
                action.nargs, action.const, action.metavar = "?", True, "{true,false}"
            elif isinstance(action, argparse._StoreFalseAction):
                action.help = no_help

    # ---------------------------------------------------------------------------------------------------- parsing
    def error(self, message: str):
        raise CLIError(f"{_one_line(message)} (see `{self.prog} --help`)")

    def parse(self, argv: Sequence[str]) -> tuple:
        """Parses ``argv`` (over ``--config``'s values) into one instance per dataclass type, in order."""
        self.parse_namespace(argv)
        return self.make_dataclasses()

    def parse_namespace(self, argv: Sequence[str]) -> argparse.Namespace:
        """Parses ``argv`` (over ``--config``'s values) into ``self.namespace``; no dataclass is built yet."""
        argv = self._apply_config([str(a) for a in argv])
        if "-h" in argv or "--help" in argv:
            self.print_help()
            raise SystemExit(0)
        required = [a for a in self._actions if a.required]
        for action in required:  # a misspelled flag is reported before the missing one it may be
            action.required = False
        try:
            namespace, unknown = self.parse_known_args(argv)
        finally:
            for action in required:
                action.required = True
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        for action in required:
            if getattr(namespace, action.dest) in (None, []):
                raise CLIError(f"{action.option_strings[0]} is required (see `{self.prog} --help`)")
        self.namespace = namespace
        if self.settings_field is not None:
            self._gather_settings(namespace)
        return namespace

    def given_settings(self) -> dict[str, Any]:
        """The settings flags given (on the command line or in ``--config``), by field name."""
        return {name: getattr(self.namespace, name) for name in self.settings_fields if hasattr(self.namespace, name)}

    def _gather_settings(self, namespace: argparse.Namespace) -> None:
        """Puts the given settings into ``namespace.<settings_field>`` (a dict), over its JSON or mapping value."""
        name = self.settings_field
        value, given = getattr(namespace, name, None), self.given_settings()
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as e:
                raise CLIError(f"--{name} is not valid JSON ({_one_line(e)}): {value!r}.") from e
            if not isinstance(value, dict):
                raise CLIError(f"--{name} must be a JSON object of settings, got {value!r}.")
        if given:
            setattr(namespace, name, {**(value or {}), **given})
        elif value is not None:
            setattr(namespace, name, value)

    def make_dataclasses(self) -> tuple:
        """One instance per dataclass type from the parsed flags; a value one refuses is a one-line error."""
        values = vars(self.namespace)
        out = []
        for dtype in self.dataclass_types:
            names = {f.name for f in dataclasses.fields(dtype) if f.init}
            try:
                out.append(dtype(**{k: v for k, v in values.items() if k in names}))
            except (ValueError, TypeError) as e:
                raise CLIError(_one_line(flags_in_message(str(e), self))) from e
        return tuple(out)

    # ----------------------------------------------------------------------------------------------------- config
    def _apply_config(self, argv: list[str]) -> list[str]:
        """Sets the values of each ``--config FILE`` as defaults; returns ``argv`` without them."""
        rest, i = [], 0
        while i < len(argv):
            if argv[i] == "--config":
                if i + 1 == len(argv):
                    self.error("argument --config: expected one argument")
                self._read_config(argv[i + 1])
                i += 2
                continue
            if argv[i].startswith("--config="):
                self._read_config(argv[i].split("=", 1)[1])
            else:
                rest.append(argv[i])
            i += 1
        return rest

    def _read_config(self, path: str) -> None:
        import yaml

        where = f"--config {path!r}"
        if not os.path.isfile(path):
            raise CLIError(f"{where} is not a file.")
        try:
            with open(path, encoding="utf-8") as f:
                values = yaml.safe_load(f) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise CLIError(f"{where} is not valid YAML ({_one_line(e)}).") from e
        if not isinstance(values, dict):
            raise CLIError(f"{where} must hold a mapping of flag names to values.")
        defaults = {}
        nested = values.get(self.settings_field) if self.settings_field is not None else None
        if isinstance(nested, dict):  # `method_config:` a mapping of settings
            values = {k: v for k, v in values.items() if k != self.settings_field}
            for key in nested:
                if str(key).replace("-", "_") not in self.settings_fields:
                    raise CLIError(f"{where}: {key!r} under {self.settings_field!r} is not a setting of any method.")
            values.update(nested)
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name in self.settings_fields and not (isinstance(nested, dict) and key in nested):
                warnings.warn(
                    f"{where}: the top-level key {key!r} is deprecated and will be refused after the next release: "
                    f"put it under '{self.settings_field}:'.",
                    FutureWarning,
                    stacklevel=2,
                )
            action = self.field_actions.get(name)
            if action is None:
                raise CLIError(f"{where}: {key!r} is not a flag of `{self.prog}`.")
            try:
                defaults[name] = _typed(action, value)
            except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
                raise CLIError(f"{where}: {key!r} has a bad value {value!r} ({_one_line(e)}).") from e
            action.required = False
        self.set_defaults(**defaults)


def _typed(action: argparse.Action, value: Any) -> Any:
    """A YAML value converted as the same value typed on the command line would be."""
    if value is None or isinstance(value, dict) or not callable(action.type):
        return value
    many = action.nargs in ("+", "*")
    if isinstance(value, list) and not many:
        raise ValueError("expected one value, got a list")
    items = [action.type(str(v)) for v in (value if isinstance(value, list) else [value])]
    if action.choices is not None and any(v not in action.choices for v in items):
        raise ValueError(f"choose from {', '.join(map(str, action.choices))}")
    return items if many else items[0]


def _with_defaults(help_: str | None, defaults: list[tuple[str, Any]]) -> str:
    """``help_`` and the default of a settings flag; per dataclass when they differ (``None`` is not shown)."""
    values = {repr(d) for _, d in defaults}
    if len(values) == 1:
        shown = "" if defaults[0][1] is None else str(defaults[0][1])
    else:
        shown = ", ".join(f"{d} for {label}" for label, d in defaults)
    return (f"{help_ or ''} (default: {shown})" if shown else help_ or "").replace("%", "%%")


def _title(dtype: type) -> str:
    doc = (dtype.__doc__ or "").strip()
    if not doc or doc.startswith(f"{dtype.__name__}("):  # the signature dataclasses writes when there is no docstring
        return dtype.__name__
    return doc.splitlines()[0].strip().rstrip(".:")
