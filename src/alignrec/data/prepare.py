"""``alignrec data prepare``: read a source, build the dataset, save it with its manifest."""

from __future__ import annotations

from pathlib import Path

from alignrec.config import FORMATS, DataConfig
from alignrec.data.build import FilterOptions, build_dataset
from alignrec.data.builtin import BUILTINS, load_builtin
from alignrec.data.csv_format import load_csv
from alignrec.data.dataset import SequenceDataset
from alignrec.data.lcrec import load_lcrec
from alignrec.data.raw import RawData
from alignrec.data.recbole import load_recbole
from alignrec.errors import DataError


def read_source(config: DataConfig) -> tuple[RawData, dict[str, object]]:
    """The raw data a config points at, and a description of it for the manifest."""
    if config.path is None:
        if config.dataset not in BUILTINS:
            raise DataError(
                f"data.dataset={config.dataset!r} is not built in ({', '.join(BUILTINS)}); "
                "or give data.path and data.format for your own data"
            )
        return load_builtin(config.dataset), {"builtin": config.dataset}
    path = Path(config.path).expanduser().resolve()
    if config.format == "recbole":
        raw = load_recbole(path, config.encoding)
    elif config.format == "lcrec":
        raw = load_lcrec(path, config.encoding)
    elif config.format == "csv":
        item_path = Path(config.item_path).expanduser().resolve() if config.item_path else None
        raw = load_csv(path, config.columns, config.separator, item_path, config.item_columns, config.encoding)
    else:
        raise DataError(
            f"data.format={config.format!r}: choose one of {', '.join(FORMATS)} for data.path {path}"
        )
    # the encoding is recorded only when it is not the default, so that UTF-8 datasets keep their fingerprint
    encoding = {} if config.encoding == "utf-8" else {"encoding": config.encoding}
    return raw, {"format": config.format, "path": str(path), **encoding}


def prepare_dataset(config: DataConfig, out: str | Path | None = None) -> SequenceDataset:
    """Read, filter and re-index; save into ``out`` when given."""
    raw, source = read_source(config)
    options = FilterOptions(
        min_user_interactions=config.min_user_interactions,
        min_item_interactions=config.min_item_interactions,
        min_rating=config.min_rating,
        max_history=config.max_history,
    )
    dataset = build_dataset(raw, options, source)
    if out is not None:
        dataset.save(out)
    return dataset
