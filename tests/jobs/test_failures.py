"""Which failures are retried, and how a failure reads in the job record."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from erp_api.errors import NotFound
from erp_api.jobs.failures import AnalysisTimedOut, describe_failure, is_transient


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        PoolTimeout("QueuePool limit reached"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out connecting"),
    ],
)
def test_database_and_network_failures_are_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        NotFound("charge 7 does not exist"),
        ValueError("baseline sigma must be finite and > 0"),
        IntegrityError("INSERT", {}, Exception("duplicate")),
        AnalysisTimedOut("the analysis took longer than its limit of 60 s"),
    ],
)
def test_everything_else_is_permanent(exc: Exception) -> None:
    assert not is_transient(exc)


def test_a_failure_reads_as_one_line_without_sql_or_trace() -> None:
    assert describe_failure(NotFound("charge 7 does not exist")) == "charge 7 does not exist"
    assert describe_failure(ValueError("bad\nsecond line")) == "ValueError: bad"
    sql = ProgrammingError("SELECT secret FROM t", {}, Exception("syntax error"))
    assert describe_failure(sql) == "database error (ProgrammingError); see the worker log"
    long = describe_failure(RuntimeError("x" * 2000))
    assert len(long) == 500 and long.endswith("…")
