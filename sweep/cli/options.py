"""Command-line options generated from frozen config dataclasses, so each option is written once.

A field `num_rows: int | None = field(default=None, metadata={"help": ...})` becomes
`--num-rows INT|none`; `bool` fields become `--flag / --no-flag`; tuples take comma-separated
values; a field without a help text is not an option. Only options the user gave are passed
on, so the dataclass defaults stay the one source of truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["add_dataclass_options", "describe_dataclass", "given_options"]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for `X | None`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def _parser_for(annotation: Any, option: str) -> tuple[Any, str]:
    """(argparse type callable, metavar) for a field annotation; an optional field also takes
    `none` for None."""
    inner, optional = _unwrap(annotation)
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]

        def parse(text: str) -> tuple:
            try:
                return tuple(item(part.strip()) for part in text.split(",") if part.strip())
            except ValueError as exc:
                raise argparse.ArgumentTypeError(
                    f"{option} takes comma-separated {item.__name__} values, got {text!r}"
                ) from exc

        metavar = f"{item.__name__.upper()},..."
    elif inner in (int, float, str, Path):
        metavar = inner.__name__.upper() if inner is not Path else "PATH"

        def parse(text: str) -> Any:
            try:
                return inner(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(
                    f"{option} takes {_article(inner)}, got {text!r}") from exc
    else:
        raise TypeError(f"option {option}: unsupported field type {annotation!r}")
    if not optional:
        return parse, metavar
    return (lambda text: None if text.strip().lower() == "none" else parse(text)), f"{metavar}|none"


def _article(kind: type) -> str:
    return {int: "an integer", float: "a number"}.get(kind, kind.__name__)


def _offered(cls: type, only: tuple[str, ...] | None,
             exclude: tuple[str, ...]) -> list[dataclasses.Field]:
    """The fields that are options: those with a help text, narrowed by `only` and `exclude`."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata
            and (only is None or f.name in only) and f.name not in exclude]


def add_dataclass_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                          prefix: str = "", only: tuple[str, ...] | None = None,
                          exclude: tuple[str, ...] = (),
                          aliases: Mapping[str, str] | None = None) -> None:
    """An option per documented field of `cls` (`--PREFIX-NAME`, dest `PREFIX_NAME`); `aliases`
    gives a field a second spelling, e.g. {"num_threads": "--threads"}. Options the user does not
    give are not set, so the dataclass default stays the one source (see `given_options`)."""
    hints = typing.get_type_hints(cls)
    for f in _offered(cls, only, exclude):
        dest = prefix.replace("-", "_") + f.name
        names = ["--" + dest.replace("_", "-"),
                 *([aliases[f.name]] if aliases and f.name in aliases else [])]
        text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        inner, _ = _unwrap(hints[f.name])
        if inner is bool:
            parser.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=f"{text} (default: {default})")
            continue
        convert, metavar = _parser_for(hints[f.name], names[0])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        shown = "required" if required else f"default: {_show(default)}"
        parser.add_argument(*names, dest=dest, type=convert, metavar=metavar, required=required,
                            default=argparse.SUPPRESS, help=f"{text} ({shown})")


def given_options(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict:
    """The fields of `cls` the user actually gave on the command line (keys without `prefix`)."""
    prefix = prefix.replace("-", "_")
    names = {prefix + f.name: f.name for f in _offered(cls, None, ())}
    return {names[k]: v for k, v in vars(args).items() if k in names}


def describe_dataclass(cls: type) -> list[tuple[str, str, str]]:
    """(option with its value syntax, default, help) rows, for `collide datasets`."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        option = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = "required" if required else _show(f.default)
        inner, _ = _unwrap(hints[f.name])
        if inner is bool:
            shown = f"{option}/--no-{option[2:]}"
        else:
            shown = f"{option} {_parser_for(hints[f.name], option)[1]}"
        rows.append((shown, default, f.metadata.get("help", "")))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
