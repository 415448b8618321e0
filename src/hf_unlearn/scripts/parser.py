"""The parser of the ``hf-unlearn`` commands: flags from dataclasses, ``--config`` YAML, one-line errors.

It builds its flags with plain ``argparse`` (as ``transformers.HfArgumentParser`` does, without importing
transformers, so that ``--help`` is immediate) and reads ``--config file.yaml`` first: the YAML keys fill the flags,
flags given on the command line win. ``train`` also takes every ``MnemonicConfig`` / ``TrainingArguments`` field:
their names, kinds, defaults and help are read from the source files with ``ast`` ([`mnemonic_config_fields`]), and
their values are handed to ``HfArgumentParser`` when the command runs ([`DataclassArgumentParser.passthrough_argv`]).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import os
import re
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any


class CLIError(Exception):
    """An error in the command line: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------------- parser
def string_to_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false (yes/no, 1/0), got {value!r}")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=36, width=119)


def _field_type(hint: Any) -> tuple[Any, bool]:
    """``(base type, is_list)`` of a dataclass field's type hint (``X | None`` is ``X``)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else str
        origin = typing.get_origin(hint)
    if origin in (list, Sequence, typing.List):  # noqa: UP006
        (item,) = typing.get_args(hint) or (str,)
        return item, True
    return hint, False


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


class DataclassArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose flags are the fields of dataclasses, like ``transformers.HfArgumentParser``.

    Each field ``name`` becomes ``--name`` with its type, default and ``metadata["help"]``; ``bool`` fields take
    ``--name`` / ``--name true|false`` and, when they default to ``True``, ``--no_name`` (help from
    ``metadata["no_help"]``). Fields named in ``required`` (or with ``metadata["required"]``) are required flags.
    [`parse`] returns one dataclass instance per type, in order. Errors raise [`CLIError`] with one line.

    Args:
        dataclass_types: the dataclasses whose fields are flags.
        prog: the command's name in usage and error lines.
        description: text under the usage line.
        required: names of fields that must be given.
        defaults: defaults that differ from the dataclasses' own.
        usage: the usage line (default: every flag).
        groups: ``(title, [field names])`` pairs shown first, in this order (``named_groups[title]`` takes more
            flags); the other fields follow, grouped by dataclass.
    """

    def __init__(
        self,
        dataclass_types: Sequence[type],
        prog: str,
        description: str = "",
        *,
        required: Iterable[str] = (),
        groups: Sequence[tuple[str, Sequence[str]]] = (),
        defaults: dict[str, Any] | None = None,
        usage: str | None = None,
    ):
        super().__init__(
            prog=prog, usage=usage, description=description, allow_abbrev=False, formatter_class=_HelpFormatter
        )
        self.dataclass_types = list(dataclass_types)
        self.required_fields = set(required)
        self.field_defaults = dict(defaults or {})
        self.passthrough: dict[str, dict[str, Any]] = {}
        self.add_argument(
            "--config",
            metavar="FILE.yaml",
            help="YAML file whose keys set this command's flags (flags on the command line win).",
        )
        fields = {}
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)
            for f in dataclasses.fields(dtype):
                if f.init:
                    fields[f.name] = (f, hints[f.name])
        self._fields = fields
        self.named_groups: dict[str, argparse._ArgumentGroup] = {}
        placed: set[str] = set()
        for title, names in groups:
            group = self.named_groups[title] = self.add_argument_group(title)
            for name in names:
                if name in fields:
                    self._add_field(group, *fields[name])
                    placed.add(name)
        for dtype in self.dataclass_types:
            rest = [f for f in dataclasses.fields(dtype) if f.init and f.name not in placed]
            if rest:
                group = self.add_argument_group((dtype.__doc__ or dtype.__name__).strip().splitlines()[0].rstrip("."))
                for f in rest:
                    self._add_field(group, *fields[f.name])

    def _add_field(self, group: argparse._ArgumentGroup, f: dataclasses.Field, hint: Any) -> None:
        base, is_list = _field_type(hint)
        default = self.field_defaults.get(f.name, _default_of(f))
        help_ = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": help_}
        if typing.get_origin(base) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(base))
            base = type(kwargs["choices"][0])
        if base is bool:
            kwargs.update(type=string_to_bool, nargs="?", const=True, metavar="{true,false}")
        else:
            kwargs["type"] = base if base in (int, float, str) else str
            if is_list:
                kwargs["nargs"] = "+"
        if f.name in self.required_fields or f.metadata.get("required"):
            kwargs["required"] = True
        elif help_ is not argparse.SUPPRESS and default not in (None, False, []):
            kwargs["help"] = f"{help_} (default: {' '.join(map(str, default)) if is_list else default})"
        group.add_argument(f"--{f.name}", **kwargs)
        if base is bool and default is True:
            no_help = f.metadata.get("no_help", f"Sets --{f.name} to false.")
            group.add_argument(f"--no_{f.name}", action="store_false", dest=f.name, help=no_help)

    def add_passthrough_arguments(self, fields: Sequence[dict[str, Any]], group: argparse._ArgumentGroup) -> None:
        """Adds flags whose values are only collected (as strings) for another parser: see [`passthrough_argv`]."""
        for info in fields:
            name = info["name"]
            kwargs: dict[str, Any] = {"dest": f"passthrough.{name}", "default": None, "help": info["help"]}
            if info["kind"] == "bool":
                kwargs.update(nargs="?", const="true", metavar="{true,false}")
            elif info["kind"] == "list":
                kwargs.update(nargs="+", metavar=name.upper())
            else:
                kwargs["metavar"] = name.upper()
            if info.get("required"):
                kwargs["required"] = True
            elif info.get("default") not in (None, "None"):
                kwargs["help"] = f"{info['help']} (default: {info['default']})".strip()
            group.add_argument(f"--{name}", **kwargs)
            self.passthrough[name] = info
            if info.get("no_flag"):
                group.add_argument(
                    f"--no_{name}",
                    dest=f"passthrough.{name}",
                    action="store_const",
                    const="false",
                    help=f"Sets --{name} to false.",
                )

    # ------------------------------------------------------------------------------------------------ parsing
    def error(self, message: str):
        # argparse would print the whole usage (a hundred flags for train): one line instead
        m = re.match(r"the following arguments are required: (.*)", message)
        if m:
            first = m.group(1).split(", ")[0].split("/")[0]
            raise CLIError(f"{first} is required (see `{self.prog} --help`)")
        raise CLIError(f"{message} (see `{self.prog} --help`)")

    def _apply_config(self, path: str) -> None:
        import yaml

        if not os.path.isfile(path):
            raise CLIError(f"--config {path!r} is not a file.")
        try:
            with open(path, encoding="utf-8") as f:
                values = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise CLIError(f"--config {path!r} is not valid YAML ({' '.join(str(e).split())}).") from e
        if not isinstance(values, dict):
            raise CLIError(f"--config {path!r} must hold a mapping of flag names to values.")
        dests = {a.dest: a for a in self._actions}
        defaults = {}
        for key, value in values.items():
            dest = key if key in dests and key in self._fields else f"passthrough.{key}"
            if dest not in dests:
                raise CLIError(f"--config {path!r}: {key!r} is not a flag of `{self.prog}`.")
            if dest.startswith("passthrough."):
                value = _as_argv_values(value)
            elif value is not None and callable(dests[dest].type):  # as if typed on the command line
                convert = dests[dest].type
                try:
                    value = [convert(str(v)) for v in value] if isinstance(value, list) else convert(str(value))
                except (ValueError, argparse.ArgumentTypeError) as e:
                    raise CLIError(f"--config {path!r}: {key!r} has a bad value {value!r} ({e}).") from e
            defaults[dest] = value
            for action in self._actions:
                if action.dest == dest:
                    action.required = False
        self.set_defaults(**defaults)

    def parse(self, argv: Sequence[str]) -> tuple:
        """Parses ``argv`` (after ``--config``'s YAML) into one instance per dataclass type, in order."""
        self.parse_namespace(argv)
        return self.make_dataclasses()

    def parse_namespace(self, argv: Sequence[str]) -> argparse.Namespace:
        """Parses ``argv`` (after ``--config``'s YAML) into ``self.namespace`` (no dataclass built yet)."""
        argv = [str(a) for a in argv]
        for i, arg in enumerate(argv):
            if arg == "--config" and i + 1 < len(argv):
                self._apply_config(argv[i + 1])
            elif arg.startswith("--config="):
                self._apply_config(arg.split("=", 1)[1])
        # unknown flags first (argparse would complain about a missing required flag before a misspelled one)
        if "-h" in argv or "--help" in argv:
            self.print_help()
            raise SystemExit(0)
        required = [a for a in self._actions if a.required]
        for action in required:
            action.required = False
        try:
            _, unknown = self.parse_known_args(argv)
        finally:
            for action in required:
                action.required = True
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        self.namespace = self.parse_args(argv)
        return self.namespace

    def make_dataclasses(self) -> tuple:
        """One instance per dataclass type from the parsed flags; their ``__post_init__`` checks the values."""
        values = vars(self.namespace)
        out = []
        for dtype in self.dataclass_types:
            names = {f.name for f in dataclasses.fields(dtype) if f.init}
            out.append(dtype(**{k: v for k, v in values.items() if k in names}))
        return tuple(out)

    def passthrough_argv(self) -> list[str]:
        """The pass-through flags given (on the command line or in ``--config``), as an argv for another parser."""
        argv: list[str] = []
        for name in self.passthrough:
            value = getattr(self.namespace, f"passthrough.{name}", None)
            if value is None:
                continue
            argv.append(f"--{name}")
            argv.extend(value if isinstance(value, list) else [value])
        return argv


def _as_argv_values(value: Any) -> str | list[str]:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return [_as_argv_values(v) for v in value]
    return str(value)


# ------------------------------------------------------------------------------- TrainingArguments, read statically
def _class_fields(path: str, class_name: str) -> list[dict[str, Any]]:
    """Name, kind, default and help of each field of a dataclass, read from its source file with ``ast``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    out = []
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        annotation = ast.unparse(stmt.annotation).replace(" ", "")
        default, help_, init = None, "", True
        call = stmt.value
        if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) == "field":
            for kw in call.keywords:
                if kw.arg == "default":
                    default = ast.unparse(kw.value)
                elif kw.arg == "default_factory":
                    default = ast.unparse(kw.value) + "()"
                elif kw.arg == "init":
                    init = ast.unparse(kw.value) != "False"
                elif kw.arg == "metadata" and isinstance(kw.value, ast.Dict):
                    for k, v in zip(kw.value.keys, kw.value.values):
                        if isinstance(k, ast.Constant) and k.value == "help":
                            try:
                                help_ = ast.literal_eval(v)
                            except ValueError:
                                help_ = ast.unparse(v)
        elif call is not None:
            default = ast.unparse(call)
        if not init:
            continue
        alternatives = set(annotation.split("|"))
        kind = "list" if "list[" in annotation.lower() else "bool" if "bool" in alternatives else "value"
        help_ = " ".join(str(help_).split()).replace("%", "%%")
        out.append({"name": stmt.target.id, "kind": kind, "default": default, "help": help_})
        if kind == "bool" and default == "True":
            out[-1]["no_flag"] = True
    return out


def mnemonic_config_fields() -> list[dict[str, Any]]:
    """Every field of ``MnemonicConfig`` (``TrainingArguments`` plus the mnemonic ones), read without importing.

    Falls back on importing the classes when their source cannot be read.
    """
    try:
        spec = importlib.util.find_spec("transformers")
        ta_path = os.path.join(spec.submodule_search_locations[0], "training_args.py")
        mc_path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "mnemonic", "config.py")
        fields = {f["name"]: f for f in _class_fields(ta_path, "TrainingArguments")}
        for f in _class_fields(mc_path, "MnemonicConfig"):
            fields[f["name"]] = f  # the subclass's default and help win; new fields go last
        return list(fields.values())
    except (OSError, StopIteration, SyntaxError, TypeError, AttributeError):  # pragma: no cover - unusual installs
        return _imported_fields()


def _imported_fields() -> list[dict[str, Any]]:  # pragma: no cover - fallback of mnemonic_config_fields
    from ..mnemonic import MnemonicConfig

    out = []
    for f in dataclasses.fields(MnemonicConfig):
        if not f.init:
            continue
        text = str(f.type)
        kind = "list" if "list[" in text.lower() else "bool" if "bool" in text else "value"
        default = _default_of(f)
        info = {"name": f.name, "kind": kind, "default": repr(default), "help": f.metadata.get("help", "")}
        if kind == "bool" and default is True:
            info["no_flag"] = True
        out.append(info)
    return out
