"""The rule checker's background loop with a fake checker: woken by commits, sweeping, surviving
failures, retrying failed rows alone, stopping cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from erp_api.quality.alerts.rule_check_runner import RuleCheckRunner
from erp_api.quality.alerts.rule_checker import CheckFailed, CheckOutcome

HANG_GUARD = 10.0


@dataclass
class Call:
    limit: int
    created_before: datetime | None
    only: list[int] | None
    skip: list[int]


@dataclass
class FakeChecker:
    """Records each check; ``failures`` are raised by the next calls, in order."""

    failures: list[BaseException] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event | None = None

    async def check(
        self,
        limit: int,
        *,
        created_before: datetime | None = None,
        only: Collection[int] | None = None,
        skip: Collection[int] = (),
    ) -> CheckOutcome:
        self.calls.append(Call(limit, created_before, None if only is None else list(only), sorted(skip)))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        return CheckOutcome(claimed=list(only or []))

    async def wait_for(self, predicate: Any) -> None:
        async with asyncio.timeout(HANG_GUARD):
            while not any(predicate(call) for call in self.calls):
                self.called.clear()
                await self.called.wait()


def runner(checker: FakeChecker, **options: Any) -> RuleCheckRunner:
    return RuleCheckRunner(checker, sweep_seconds=options.pop("sweep_seconds", 3600), **options)


async def test_it_sweeps_at_start_and_checks_every_waiting_row_when_notified() -> None:
    checker = FakeChecker()
    loop = runner(checker)
    await loop.start()
    try:
        await checker.wait_for(lambda call: call.created_before is not None)  # the sweep
        loop.notify()
        await checker.wait_for(lambda call: call.created_before is None)
    finally:
        await loop.stop()


async def test_a_failing_check_is_retried_and_the_loop_keeps_running() -> None:
    checker = FakeChecker(failures=[RuntimeError("database gone"), RuntimeError("still gone")])
    loop = runner(checker)
    await loop.start()
    try:
        loop.notify()
        async with asyncio.timeout(HANG_GUARD):
            while len(checker.calls) < 3 or checker.failures:
                checker.called.clear()
                await checker.called.wait()
        loop.notify()
        await checker.wait_for(lambda call: call.created_before is None)
    finally:
        await loop.stop()


async def test_rows_of_a_failed_check_are_skipped_then_retried_one_at_a_time() -> None:
    checker = FakeChecker(failures=[CheckFailed([7, 8])])
    loop = runner(checker)
    await loop.start()
    try:
        await checker.wait_for(lambda call: call.only == [7])
        await checker.wait_for(lambda call: call.only == [8])
        # The first call failed; later claims skip its rows until each is retried alone.
        assert any(call.skip == [7, 8] for call in checker.calls[1:] if call.only is None)
        assert all(call.only is None or len(call.only) == 1 for call in checker.calls)
    finally:
        await loop.stop()


async def test_stop_waits_for_the_check_in_flight() -> None:
    checker = FakeChecker(gate=asyncio.Event())
    loop = runner(checker)
    await loop.start()
    await checker.wait_for(lambda call: True)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    checker.gate.set()
    async with asyncio.timeout(HANG_GUARD):
        await stopping


async def test_stop_cancels_a_check_that_outlives_the_timeout() -> None:
    checker = FakeChecker(gate=asyncio.Event())
    loop = runner(checker, stop_timeout_seconds=0.05)
    await loop.start()
    await checker.wait_for(lambda call: True)
    async with asyncio.timeout(HANG_GUARD):
        await loop.stop()


async def test_gauges_are_counted_at_start_and_after_an_alert_moves() -> None:
    counted = asyncio.Event()
    counts = 0

    async def refresh() -> None:
        nonlocal counts
        counts += 1
        counted.set()

    loop = runner(FakeChecker(), refresh_gauges=refresh)
    await loop.start()
    try:
        async with asyncio.timeout(HANG_GUARD):
            await counted.wait()
            counted.clear()
            loop.alerts_changed()
            await counted.wait()
        assert counts >= 2
    finally:
        await loop.stop()


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="sweep_seconds"):
        runner(FakeChecker(), sweep_seconds=0)
