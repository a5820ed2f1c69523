"""Log output and the flush window that batches the access log under load."""

from __future__ import annotations

import asyncio
import threading

import pytest

from erp_api.observability.log_output import FLUSH_SECONDS, MAX_PENDING, FlushWindow, JsonLineWriter


class Batch:
    """A batch of items and a record of each flush (what it wrote out)."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.flushes: list[list[int]] = []
        self.window = FlushWindow(self.flush)

    def add(self, *items: int) -> None:
        self.items.extend(items)
        self.window.added(len(self.items))

    def flush(self) -> None:
        items, self.items = self.items, []
        self.flushes.append(items)


def test_every_line_is_written_and_flushed_when_logged(capsys: pytest.CaptureFixture[str]) -> None:
    writer = JsonLineWriter()
    writer.msg(b'{"n":1}')
    assert capsys.readouterr().out == '{"n":1}\n'
    writer.write_lines([b'{"n":2}', b'{"n":3}'])
    assert capsys.readouterr().out == '{"n":2}\n{"n":3}\n'


async def test_after_a_quiet_spell_the_first_item_is_flushed_at_once() -> None:
    batch = Batch()
    batch.add(1)
    assert batch.flushes == [[1]]


async def test_items_added_while_the_window_is_open_are_flushed_together_when_it_closes() -> None:
    batch = Batch()
    batch.add(1)
    batch.add(2)
    batch.add(3, 4)
    assert batch.flushes == [[1]]
    await asyncio.sleep(FLUSH_SECONDS * 3)
    assert batch.flushes == [[1], [2, 3, 4]]
    batch.add(5)  # the window has closed: at once again
    assert batch.flushes[-1] == [5]


async def test_a_full_batch_is_flushed_without_waiting_for_the_window() -> None:
    batch = Batch()
    batch.add(0)
    batch.add(*range(1, MAX_PENDING + 1))
    assert [len(flushed) for flushed in batch.flushes] == [1, MAX_PENDING]


def test_without_an_event_loop_every_item_is_flushed_at_once() -> None:
    batch = Batch()
    threads = [threading.Thread(target=batch.add, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
        thread.join()
    assert batch.flushes == [[0], [1]]


async def test_items_left_in_the_window_of_a_closed_loop_go_out_with_the_next_item() -> None:
    batch = Batch()

    async def add_and_leave() -> None:
        batch.add(1)
        batch.add(2)

    # That loop closes before its window does; the next item, on this loop, finds no open window.
    await asyncio.get_running_loop().run_in_executor(None, asyncio.run, add_and_leave())
    assert batch.flushes == [[1]]
    batch.add(3)
    assert batch.flushes == [[1], [2, 3]]
