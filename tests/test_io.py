"""Atomic writes: the file appears whole or not at all, with the mode the umask gives."""

from __future__ import annotations

import os
import stat

import pytest

from alignrec.io import atomic_open, atomic_path, current_umask, umask_mode, write_json


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it."""
    before = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_writer_gives_the_mode_of_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask and umask_mode() == expected
    write_json(tmp_path / "a.json", {"x": 1})
    with atomic_open(tmp_path / "b.bin", "wb") as handle:
        handle.write(b"bytes")
    with atomic_path(tmp_path / "c.npy") as tmp:
        tmp.write_bytes(b"numpy")
    assert [mode(tmp_path / name) for name in ("a.json", "b.bin", "c.npy")] == [expected] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin", "c.npy"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, umask):
    target = tmp_path / "kept.json"
    write_json(target, {"old": True})
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write('{"new": ')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "old": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["kept.json"]
