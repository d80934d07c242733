"""Stored lists survive the round trip, and the digest sees any change but not the order."""

from __future__ import annotations

import numpy as np
import pytest

from alignrec.recommender import NO_ITEM
from alignrec.serve import records


def test_round_trip_drops_padding_and_keeps_the_flag() -> None:
    value = records.encode(np.array([5, 2, NO_ITEM]), np.array([0.5, 0.25, -np.inf]), fallback=True)
    cached = records.decode(value)
    assert cached.items == (5, 2) and cached.scores == (0.5, 0.25) and cached.fallback
    assert not records.decode(records.encode(np.array([1]), np.array([1.0]), False)).fallback


def test_decode_refuses_another_format() -> None:
    value = bytearray(records.encode(np.array([1]), np.array([1.0]), False))
    value[0] = 99
    with pytest.raises(ValueError, match="format 99"):
        records.decode(bytes(value))


def test_digest_ignores_order_and_sees_every_byte() -> None:
    rows = [("u1", b"\x01\x02"), ("u2", b"\x03")]
    assert records.digest(rows) == records.digest(rows[::-1])
    assert records.digest(rows) != records.digest([("u1", b"\x01\x02"), ("u2", b"\x04")])
    # length prefixes: moving a byte from a key into its value changes the digest
    assert records.digest([("u1", b"x")]) != records.digest([("u", b"1x")])
