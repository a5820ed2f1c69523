"""The application's process-wide setup."""

from __future__ import annotations

import gc

from erp_api.app import freeze_startup_heap


def test_what_is_alive_after_the_first_startup_is_frozen_once_per_process() -> None:
    freeze_startup_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0, "the startup objects are out of the collector's sight"
    freeze_startup_heap()
    assert gc.get_freeze_count() == frozen, "a later startup (another app in the process) freezes nothing"
