"""The latest points of a series or of a charge's part of it, read at the cost of the driver.

A sample read is one range of an index read backwards from its end: (product_sku, parameter,
measured_at, id) per series, an index that carries the columns a sample reads (voided_at, charge_id,
value) so that SQLite answers from it alone; (charge_id, parameter, measured_at, id) per charge.
``CHUNK`` reads go in one statement (on SQLite each statement is a round trip to the driver's
thread). The statements are compiled once per shape (``_statement``) and run on the session's own driver
connection, inside its transaction and snapshot: SQLAlchemy would build a row object per point,
which costs more than reading it. PostgreSQL hands each read over as one array (``ARRAY(subquery)``,
which keeps the index's order: an ordered aggregate would sort the points again, 2.6 ms of 4.8 for
5,000), each point its charge and value in binary (``int8send || float8send``, the stored bits),
joined into one buffer that numpy reads without a Python number per point.

SQLite hands each read over as one row too: its charges, and its values as two lists of integers,
each joined into one text (``group_concat``). A non-zero value v is sent as m and e with
v = m * 2**e: e = floor(log2 |v|) - 54 and m = v / 2**e, an integer below 2**56 (54 rather than the
52 bits of a double's fraction leave room for a log2 that rounds across a power of two either way),
so that ``np.ldexp(m, e)`` gives back the stored bits: dividing by a power of two is exact, and so is
the integer. Zero is 0 and 0 (SQLite stores -0.0 as 0.0). Below 2**-1020 (subnormals, and normals
within a few powers of two of them) 2**e underflows: such a read leaves those values out, and is
read again with each value written in decimal with 21 significant digits (``printf('%!.20e')``), more
than the 17 that name a double, so that parsing gives back the stored bits (SQLite's shorter
``quote`` does not always: 4 of 300,000 random doubles came back one ulp off). The decimal form is
also what a SQLite without its math functions (``log2``, ``floor``, ``pow``) gets. Integers cost
SQLite less to write than that decimal form (three reads of 2,000 points 6.0 -> 4.7 ms), and numpy
parses them six times as fast (2,000 values 0.94 -> 0.15 ms).

A row per point would cost more than its reading: the driver reads rows in its own thread and takes
the GIL back for each, and while the event loop's thread is busy every such turn waits up to the
interpreter's switch interval (5 ms). 2,000 points a row each took 1.9 ms with the loop idle, 21 ms
with it 90 % busy and 270 ms fully busy; as one row, 3 to 6 ms (the load test's spike: a series read
took 12 ms on average, up to 218; 4, up to 27, joined). Either way the values stay the stored
doubles.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ColumnElement,
    Dialect,
    Integer,
    Select,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.spc.chart import FloatArray
from erp_api.quality.summaries.rollup_sql import RAW

# Sample reads per statement (SQLite allows 500 terms in a compound SELECT). One statement for a
# summary's three series instead of three: 28.0 -> 25.0 ms for the uncached summary on SQLite.
CHUNK = 100
# A value as SQLite writes it in decimal: 21 significant digits (the "!" lifts printf's cap of 16).
_EXACT_DOUBLE = "%!.20e"
# A point as PostgreSQL sends it: int8send(charge_id) || float8send(value), both big-endian.
_POINT = np.dtype([("charge", ">i8"), ("value", ">f8")])
Range = tuple[datetime | None, datetime | None]
Owner = Literal["product_sku", "charge_id"]
# How SQLite writes a read's values: as integers (mantissa and exponent) or in decimal.
SqliteForm = Literal["integers", "decimal"]
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Sample:
    """A row's sampled points in series order: the charge of each, and its value."""

    charges: npt.NDArray[np.int64]
    values: FloatArray

    def __len__(self) -> int:
        return int(self.values.size)

    def tail(self, size: int) -> Sample:
        return Sample(self.charges[-size:], self.values[-size:])

    def by_charge(self) -> list[FloatArray]:
        """The values per charge, each in series order, the charges in the order they first appear."""
        if self.charges.size and (self.charges == self.charges[0]).all():
            return [self.values]
        _, first, inverse = np.unique(self.charges, return_index=True, return_inverse=True)
        grouped = self.values[np.argsort(inverse, kind="stable")]
        groups = np.split(grouped, np.cumsum(np.bincount(inverse))[:-1])
        return [groups[i] for i in np.argsort(first, kind="stable")]


NO_SAMPLE = Sample(np.zeros(0, dtype=np.int64), np.zeros(0))


@dataclass(frozen=True, slots=True)
class SampleRead:
    """The latest ``limit`` non-voided points of ``parameter`` whose ``owner`` column is ``owner_value``."""

    owner_value: str | int
    parameter: str
    limit: int


async def read_samples(
    session: AsyncSession, owner: Owner, reads: Sequence[tuple[K, SampleRead]], between: Range
) -> dict[K, Sample]:
    """Each read's latest points (up to its limit) in [start, end) in series order; a read without
    points is left out. The session must have run a statement already (its transaction is open)."""
    connection = await session.connection()
    dialect = connection.dialect
    driver: Any = (await connection.get_raw_connection()).driver_connection
    # The column type as this dialect binds it: SQLite's stored text, not a datetime for the driver to adapt.
    process = RAW.c.measured_at.type.dialect_impl(dialect).bind_processor(dialect)
    start, end = (at if at is None or process is None else process(at) for at in between)
    found: dict[K, Sample] = {}
    form: SqliteForm = "integers" if _sqlite_has_math_functions() else "decimal"
    for first in range(0, len(reads), CHUNK):
        chunk = reads[first : first + CHUNK]
        sql, params = _bound(dialect, owner, chunk, (start, end), form)
        if dialect.name == "postgresql":
            for record in await driver.fetch(sql, *params):
                if record[1]:
                    # Latest first as read: reversed into series order.
                    points = np.frombuffer(b"".join(record[1]), dtype=_POINT)[::-1]
                    found[chunk[record[0]][0]] = Sample(
                        points["charge"].astype(np.int64), points["value"].astype(np.float64)
                    )
            continue
        tiny = []
        for index, charges, *values in await driver.execute_fetchall(sql, params):
            if charges is None:
                continue
            sample = (
                _from_integers(charges, *values) if form == "integers" else _from_decimal(charges, *values)
            )
            if sample is None:
                tiny.append(chunk[index])
            else:
                found[chunk[index][0]] = sample
        if tiny:
            sql, params = _bound(dialect, owner, tiny, (start, end), "decimal")
            for index, charges, values in await driver.execute_fetchall(sql, params):
                found[tiny[index][0]] = _from_decimal(charges, values)
    return found


def _bound(
    dialect: Dialect, owner: Owner, chunk: Sequence[tuple[Any, SampleRead]], between: Range, form: SqliteForm
) -> tuple[str, list[Any]]:
    """The SQL of ``chunk``'s reads and its parameters in the driver's order."""
    since, until = (at is not None for at in between)
    sql, names, defaults = _statement(dialect, owner, len(chunk), since, until, form)
    bound = {**defaults, "since": between[0], "until": between[1]}
    for index, (_key, read) in enumerate(chunk):
        bound |= {f"owner_{index}": read.owner_value, f"parameter_{index}": read.parameter}
        bound[f"limit_{index}"] = read.limit
    return sql, [bound[name] for name in names]


def _from_integers(charges: str, mantissas: str | None, exponents: str | None) -> Sample | None:
    """A SQLite read in the integer form (latest first, as read) as a sample in series order; ``None``
    when it left out a value too small for that form."""
    charge_of = np.fromstring(charges, dtype=np.int64, sep=",")
    mantissa = np.fromstring(mantissas or "", dtype=np.int64, sep=",")
    if mantissa.size != charge_of.size:
        return None
    exponent = np.fromstring(exponents or "", dtype=np.int64, sep=",")
    if exponent.size != charge_of.size:
        raise ValueError(f"a sample read {charge_of.size} charges and {exponent.size} exponents")
    # Below 2**56 and a multiple of 2**(56 - 53) or more: the float is the integer itself.
    return Sample(charge_of[::-1], np.ldexp(mantissa.astype(np.float64), exponent)[::-1])


def _from_decimal(charges: str, values: str) -> Sample:
    """A SQLite read in the decimal form (latest first, as read) as a sample in series order."""
    charge_of = np.fromstring(charges, dtype=np.int64, sep=",")
    value_of = np.fromstring(values, dtype=np.float64, sep=",")
    if charge_of.size != value_of.size:
        raise ValueError(f"a sample read {charge_of.size} charges and {value_of.size} values")
    return Sample(charge_of[::-1], value_of[::-1])


@lru_cache(maxsize=1)
def _sqlite_has_math_functions() -> bool:
    """Whether this process's SQLite library (the driver's) has ``log2``, ``floor`` and ``pow``: an
    optional part of SQLite (``SQLITE_ENABLE_MATH_FUNCTIONS``, 3.35 and later)."""
    with closing(sqlite3.connect(":memory:")) as connection:
        try:
            connection.execute("select log2(2.0), floor(0.5), pow(2.0, -1.0)")
        except sqlite3.OperationalError:
            return False
    return True


# Bounded: every engine (each test app has its own) brings its own dialect.
@lru_cache(maxsize=512)
def _statement(  # noqa: PLR0917 - the cache's key
    dialect: Dialect, owner: Owner, reads: int, since: bool, until: bool, form: SqliteForm
) -> tuple[str, list[str], dict[str, Any]]:
    """The SQL of ``reads`` sample reads and the names of its parameters in order: a row per read,
    its index, then its points latest first (PostgreSQL: as an array of ``bytea``; SQLite: its
    charges, then its values in ``form``, each list joined into one text, NULL without points)."""
    m = RAW.c
    parts: list[Select[*tuple[Any, ...]]] = []
    for index in range(reads):
        where = [
            m[owner] == bindparam(f"owner_{index}"),
            m.parameter == bindparam(f"parameter_{index}"),
            m.voided_at.is_(None),
        ]
        if since:
            where.append(m.measured_at >= bindparam("since"))
        if until:
            where.append(m.measured_at < bindparam("until"))
        newest = (
            select(m.charge_id, m.measured_at, m.id, m.value)
            .where(*where)
            .order_by(m.measured_at.desc(), m.id.desc())
            .limit(bindparam(f"limit_{index}"))
        )
        read: ColumnElement[int] = literal_column(str(index))
        if dialect.name == "postgresql":
            # ARRAY(subquery) keeps the subquery's order (latest first, as the index yields them),
            # so no aggregate sorts them again.
            point = func.int8send(m.charge_id).op("||")(func.float8send(m.value))
            parts.append(select(read, func.array(newest.with_only_columns(point).scalar_subquery())))
        else:
            # An aggregate over a subquery with a LIMIT takes its rows in the subquery's order
            # (SQLite does not flatten such a subquery into it): latest first, both texts alike.
            if form == "decimal":
                latest = newest.subquery("latest")
                value = func.printf(literal_column(f"'{_EXACT_DOUBLE}'"), latest.c.value)
                parts.append(select(read, func.group_concat(latest.c.charge_id), func.group_concat(value)))
                continue
            # A non-zero value's exponent in the integer form (see the module docstring).
            magnitude = cast(func.floor(func.log2(func.abs(m.value))), Integer) - 54
            exponent = case((m.value == 0, 0), else_=magnitude).label("exponent")
            latest = newest.add_columns(exponent).subquery("latest")
            # NULL where 2**exponent underflows (a division by zero): left out of the list.
            mantissa = cast(latest.c.value / func.pow(2.0, latest.c.exponent), Integer)
            parts.append(
                select(
                    read,
                    func.group_concat(latest.c.charge_id),
                    func.group_concat(mantissa),
                    func.group_concat(latest.c.exponent),
                )
            )
    compiled = (parts[0] if len(parts) == 1 else union_all(*parts)).compile(dialect=dialect)
    # Its own parameters (SQLite's OFFSET 0) with their values, ours named, in the driver's order.
    return compiled.string, list(compiled.positiontup or ()), dict(compiled.params)
