"""``alignrec compare``: one table of every model evaluated on a dataset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from alignrec.errors import AlignrecError
from alignrec.io import read_json

COLUMNS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr", "coverage@10")
SHORT = "\u2020"
SHORT_NOTE = f"{SHORT} a cut-off above the model's list length: the value is its metric at that length"


def metric_cell(row: dict[str, Any], metric: str) -> str:
    """A metric as a table shows it: 4 decimals, flagged where the model ranked fewer items than the
    cut-off (a list of 20 scored "at 50" is its Recall@20 under a name that promises more); '-' if absent."""
    if metric not in row["metrics"]:
        return "-"
    cell = f"{row['metrics'][metric]:.4f}"
    ranked = row.get("diagnostics", {}).get("ranked_items")
    if "@" in metric and ranked is not None and int(metric.split("@")[1]) > ranked:
        cell += SHORT
    return cell


def flagged(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> bool:
    return any(metric_cell(row, c).endswith(SHORT) for row in rows for c in columns)


def collect_metrics(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Every ``metrics.json`` at or below the given run directories, in path order."""
    rows: list[dict[str, Any]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.name == "metrics.json":
            found = [path]
        elif path.is_dir():
            found = sorted(path.rglob("metrics.json"))
        else:
            raise AlignrecError(f"{path}: no such run directory or metrics.json")
        if not found:
            raise AlignrecError(f"{path}: holds no metrics.json; run a model or `alignrec evaluate` into it")
        for file in found:
            row = read_json(file)
            row["path"] = str(file.parent)
            rows.append(row)
    return rows


def row_labels(rows: list[dict[str, Any]]) -> list[str]:
    """Model names; a name shared by several rows (ablations of one model) gets its run folder's name."""
    counts = Counter(row["model"] for row in rows)
    return [
        f"{row['model']} ({Path(row['path']).name})" if counts[row["model"]] > 1 and row.get("path") else row["model"]
        for row in rows
    ]


def comparison_table(rows: list[dict[str, Any]]) -> Table:
    datasets = sorted({row["dataset"] for row in rows})
    table = Table(title=f"{', '.join(datasets)}: leave-one-out, full ranking", title_justify="left",
                  caption=SHORT_NOTE if flagged(rows) else None, caption_justify="left")
    table.add_column("model")
    table.add_column("split")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    table.add_column("wall time", justify="right")
    table.add_column("users", justify="right")
    for row, label in zip(rows, row_labels(rows), strict=True):
        wall = row.get("wall_time_s")
        table.add_row(
            label,
            row["split"],
            *(metric_cell(row, c) for c in COLUMNS),
            f"{wall:.0f} s" if wall is not None else "-",
            f"{row['num_users']:,}",
        )
    return table


def print_comparison(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
    console.width = max(console.width, 132)  # keep the table whole when piped
    console.print(comparison_table(rows))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = "| model | split | " + " | ".join(COLUMNS) + " | wall time (s) |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for row, label in zip(rows, row_labels(rows), strict=True):
        cells = [metric_cell(row, c) for c in COLUMNS]
        wall = row.get("wall_time_s")
        wall_cell = f"{wall:.0f}" if wall is not None else "-"
        lines.append(f"| {label} | {row['split']} | " + " | ".join(cells) + f" | {wall_cell} |")
    if flagged(rows):
        lines += ["", SHORT_NOTE]
    return "\n".join(lines)
