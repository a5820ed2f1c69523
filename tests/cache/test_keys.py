"""Keys are injective (different arguments never share a key) and stable across processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache.keys import MAX_PLAIN_KEY_LENGTH, encode_key
from tests.cache.key_values import Color, Level, Mode, to_wire

REPO = Path(__file__).resolve().parents[2]

timezones = (
    st.none() | st.just(dt.UTC) | st.integers(-18, 18).map(lambda h: dt.timezone(dt.timedelta(hours=h)))
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.dates()
    | st.datetimes(timezones=timezones)
    | st.decimals()
    | st.uuids()
    | st.sampled_from([*Color, *Level, *Mode])
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=4) | st.integers(-3, 3), children, max_size=4)
    ),
    max_leaves=12,
)


def canonical(value: Any) -> Any:
    """What makes two arguments the same argument: their type and exact content."""
    if isinstance(value, dict):
        return ("dict", frozenset((canonical(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(canonical(item) for item in value))
    if isinstance(value, enum_types := (Color, Level, Mode)):
        assert isinstance(value, enum_types)
        return ("enum", type(value).__qualname__, value.name)
    if isinstance(value, float | Decimal | dt.date):
        return (type(value).__name__, str(value) if not isinstance(value, float) else value.hex())
    return (type(value).__name__, value)


@settings(max_examples=300)
@given(st.lists(values, max_size=30))
def test_keys_are_equal_exactly_when_arguments_are_the_same(batch: list[Any]) -> None:
    key_of: dict[Any, str] = {}
    value_of: dict[str, Any] = {}
    for value in batch:
        same, key = canonical(value), encode_key(value)
        assert key_of.setdefault(same, key) == key
        assert value_of.setdefault(key, same) == same


@given(st.text(), st.data())
def test_moving_a_boundary_between_strings_changes_the_key(text: str, data: st.DataObject) -> None:
    first = data.draw(st.integers(0, len(text)))
    second = data.draw(st.integers(0, len(text)).filter(lambda index: index != first))

    assert encode_key((text[:first], text[first:])) != encode_key((text[:second], text[second:]))


@given(st.integers())
def test_numbers_strings_and_bools_of_one_value_never_share_a_key(number: int) -> None:
    forms: list[Any] = [number, str(number), float(number), Decimal(number), str(number).encode(), (number,)]
    if number in (0, 1):
        forms.append(bool(number))

    assert len({encode_key(form) for form in forms}) == len(forms)


@given(values, values)
def test_nesting_is_part_of_the_key(left: Any, right: Any) -> None:
    assert encode_key(((left,), right)) != encode_key((left, (right,)))
    assert encode_key([left, right]) != encode_key((left, right))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (None, ""),
        (("a:b", "c"), ("a", "b:c")),
        (1, "1"),
        (1, 1.0),
        (1, True),
        ("1", 1.0),
        (0.0, -0.0),
        (b"ab", "ab"),
        (b"ab", "6162"),
        ("", ()),
        ((), []),
        ({}, []),
        ({"a": 1}, {"a": "1"}),
        (Level.LOW, 1),
        (Mode.FAST, "fast"),
        (Color.RED, Level.LOW),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.date(2024, 1, 2), dt.datetime(2024, 1, 2)),
        (dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2, tzinfo=dt.UTC)),
        (Decimal("1.0"), Decimal("1.00")),
        (uuid.UUID(int=1), uuid.UUID(int=1).hex),
        (("x",) * 100, ("x",) * 101),
    ],
)
def test_distinct_arguments_get_distinct_keys(a: Any, b: Any) -> None:
    assert encode_key(a) != encode_key(b)


def test_dict_key_order_does_not_matter() -> None:
    assert encode_key({"a": 1, "b": 2, 3: None}) == encode_key({3: None, "b": 2, "a": 1})


def test_short_keys_stay_readable_and_long_ones_are_digested() -> None:
    assert encode_key(("get", 42)) == "(s3:geti42;)"
    long_key = encode_key(("x" * MAX_PLAIN_KEY_LENGTH,))
    assert long_key.startswith("#")
    assert len(long_key) == 41
    assert encode_key("ünïcode").startswith("#")


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, frozenset(), complex(1, 1), (1, object()), {(1, 2): 3, object(): 1}, [b"a", {1}]],
)
def test_unsupported_types_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        encode_key(value)


@pytest.mark.slow
def test_keys_are_the_same_in_another_process() -> None:
    collected: list[Any] = [
        None,
        ("get", 42),
        [1.5, -0.0, float("inf")],
        {"b": b"\x00\xff", "a": dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.UTC)},
        (Color.GREEN, Level.HIGH, Mode.FAST, uuid.UUID(int=7), Decimal("3.14"), dt.date(2020, 2, 29)),
        "x" * 500,
    ]

    @settings(max_examples=200, database=None)
    @given(values)
    def collect(value: Any) -> None:
        collected.append(value)

    collect()
    worker = subprocess.run(
        [sys.executable, "-m", "tests.cache.key_worker"],
        input=json.dumps([to_wire(value) for value in collected]),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        timeout=60,
        check=True,
    )

    assert json.loads(worker.stdout) == [encode_key(value) for value in collected]
