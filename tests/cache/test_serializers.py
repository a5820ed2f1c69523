"""Serialization: bytes stored as they are, JSON via orjson, never pickle, unknown formats refused."""

from __future__ import annotations

import pytest

from cache.serializers import JSON, RAW, UnknownFormat, deserialize, serialize


def test_bytes_are_stored_as_they_are() -> None:
    body = b'{"id": 42}\x00\xff'

    fmt, data = serialize(body)

    assert (fmt, data) == (RAW, body)
    assert data is body  # no copy on the fast path
    assert deserialize(fmt, data) is body


@pytest.mark.parametrize("value", [bytearray(b"abc"), memoryview(b"abc")])
def test_bytes_like_values_become_bytes(value: bytes) -> None:
    assert serialize(value) == (RAW, b"abc")


@pytest.mark.parametrize("value", [None, 0, 1.5, "text", [1, "a", None], {"a": {"b": [True, False]}}])
def test_json_values_round_trip(value: object) -> None:
    fmt, data = serialize(value)

    assert fmt == JSON
    assert deserialize(fmt, data) == value


@pytest.mark.parametrize("value", [{1, 2}, object(), {1: "non-string key"}, complex(1, 2)])
def test_values_that_would_need_pickle_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        serialize(value)


def test_unknown_format_is_reported_not_guessed() -> None:
    with pytest.raises(UnknownFormat):
        deserialize(99, b"\x80\x04K\x01.")  # a pickle of 1: never unpickled
