"""``docs/config.md``, generated from the config's models: every setting, its type, default, rules
and description (the attribute docstring under it in ``config.py``), so the reference cannot drift.

    python -m alignrec.config_reference > docs/config.md

``tests/test_config_reference.py`` fails when the file is out of date.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from annotated_types import MinLen
from pydantic.fields import FieldInfo

from alignrec.config import RunConfig, Section, describe_range, unwrap


def _constraints(annotation: Any, metadata: list[Any]) -> list[str]:
    """What pydantic checks of a value: its length, its range, its choices, the same of each element."""
    found = ["at least one"] if any(isinstance(c, MinLen) and c.min_length == 1 for c in metadata) else []
    bounds = describe_range(metadata)
    if bounds is not None:
        found.append(bounds)
    if typing.get_origin(annotation) is Literal:
        found.append("one of " + ", ".join(f"`{option}`" for option in typing.get_args(annotation)))
    if typing.get_origin(annotation) is list:
        found += [f"each {rule}" for rule in _constraints(*unwrap(typing.get_args(annotation)[0]))]
    return found


def field_rules(cls: type[Section], name: str, info: FieldInfo) -> str:
    """The constraints, then the section's ``check_<name>`` validator, by its docstring."""
    rules = _constraints(unwrap(info.annotation)[0], info.metadata)
    check = getattr(cls, f"check_{name}", None)
    if check is not None:
        rules.append(" ".join(check.__doc__.split()))
    return "; ".join(rules)


def _type(annotation: Any) -> str:
    """As it would be written without its constraints: a choice of strings is a ``str``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is Literal:
        return type(args[0]).__name__
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type(arg) for arg in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type(arg) for arg in args)}]"
    return "None" if annotation is type(None) else annotation.__name__


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The whole reference as Markdown."""
    lines = ["# Configuration reference", "",
             "Generated from `src/alignrec/config.py` by `python -m alignrec.config_reference > docs/config.md`; "
             "do not edit by hand. Set any key in a YAML file (`--config`) or with `--set key=value`.", ""]
    for prefix, cls in _sections(RunConfig).items():
        lines += [f"## `{prefix or 'top level'}`", ""]
        if cls.__doc__:
            lines += [" ".join(cls.__doc__.split()), ""]
        lines += ["| key | type | default | rules | description |", "|---|---|---|---|---|"]
        for name, info in cls.model_fields.items():
            if _is_section(info.annotation):
                continue
            key = f"{prefix}.{name}" if prefix else name
            default = f"`{info.get_default(call_default_factory=True)!r}`"
            description = " ".join((info.description or "").split())
            lines.append(f"| `{key}` | {_cell(f'`{_type(info.annotation)}`')} | {_cell(default)} | "
                         f"{_cell(field_rules(cls, name, info))} | {_cell(description)} |")
        lines.append("")
    return "\n".join(lines)


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Section)


def _sections(cls: type[Section], prefix: str = "") -> dict[str, type[Section]]:
    """Every config section under ``cls`` by its dotted prefix, the top level first."""
    found: dict[str, type[Section]] = {prefix: cls}
    for name, info in cls.model_fields.items():
        if _is_section(info.annotation):
            found.update(_sections(info.annotation, f"{prefix}.{name}" if prefix else name))
    return found


if __name__ == "__main__":
    print(render())
