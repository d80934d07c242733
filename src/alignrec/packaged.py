"""Model files shipped inside registry packages: found through importlib, never imported."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alignrec.errors import AlignrecError


def package_folders(package: str, what: str, install: str, alternative: str) -> list[Path]:
    """The folders of an installed package; a clear error naming the install command if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AlignrecError(
            f"{what}: package {package!r} is not installed; run `{install}` or {alternative}"
        )
    return [Path(folder) for folder in spec.submodule_search_locations]
