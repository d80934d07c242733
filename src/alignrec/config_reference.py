"""``docs/config.md``, generated from the config's dataclasses: every setting, its type, default, rules
and description (the attribute docstring under it in ``config.py``), so the reference cannot drift.

    python -m alignrec.config_reference > docs/config.md

``tests/test_config_reference.py`` fails when the file is out of date.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from typing import Any

from alignrec import config as config_module
from alignrec.config import Check, Each, InCatalog, MultipleOf, OneOf, Range, RunConfig


def _docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings: the string literal right under ``name: type = ...`` in the class body."""
    body = ast.parse(inspect.getsource(cls)).body[0].body  # type: ignore[attr-defined]
    found = {}
    for statement, following in zip(body, body[1:], strict=False):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            found[statement.target.id] = " ".join(following.value.value.split())
    return found


def _rule(rule: Any) -> str:
    if isinstance(rule, Range):
        return rule.describe()
    if isinstance(rule, OneOf):
        return "one of " + ", ".join(f"`{o}`" for o in rule.options)
    if isinstance(rule, Each):
        return ("at least one; " if rule.nonempty else "") + "each " + _rule(rule.rule)
    if isinstance(rule, MultipleOf):
        return f"a multiple of `{rule.other}`"
    if isinstance(rule, InCatalog):
        return "models of `alignrec.catalog`, each after those it is built from"
    if isinstance(rule, Check):
        return rule.fix
    return type(rule).__name__


def _default(item: dataclasses.Field) -> str:
    if item.default is not dataclasses.MISSING:
        value = item.default
    elif item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
    else:
        return ""
    return f"`{value!r}`".replace("|", "\\|")


def _type(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return f"`{text}`".replace("|", "\\|")


def render() -> str:
    """The whole reference as Markdown."""
    lines = ["# Configuration reference", "",
             "Generated from `src/alignrec/config.py` by `python -m alignrec.config_reference > docs/config.md`; "
             "do not edit by hand. Set any key in a YAML file (`--config`) or with `--set key=value`.", ""]
    for prefix, cls in _sections(RunConfig).items():
        docs, hints = _docstrings(cls), typing.get_type_hints(cls, vars(config_module))
        lines += [f"## `{prefix or 'top level'}`", ""]
        if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
            lines += [" ".join(cls.__doc__.split()), ""]
        lines += ["| key | type | default | rules | description |", "|---|---|---|---|---|"]
        for item in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[item.name]):
                continue
            key = f"{prefix}.{item.name}" if prefix else item.name
            rules = "; ".join(_rule(r) for r in item.metadata.get("checks", ())).replace("|", "\\|")
            lines.append(f"| `{key}` | {_type(item.type)} | {_default(item)} | {rules} | "
                         f"{docs.get(item.name, '').replace('|', chr(92) + '|')} |")
        lines.append("")
    return "\n".join(lines)


def _sections(cls: type, prefix: str = "") -> dict[str, type]:
    """Every config dataclass under ``cls`` by its dotted prefix, the top level first."""
    found = {prefix: cls}
    hints = typing.get_type_hints(cls, vars(config_module))
    for item in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[item.name]):
            found.update(_sections(hints[item.name], f"{prefix}.{item.name}" if prefix else item.name))
    return found


if __name__ == "__main__":
    print(render())
