"""The application's process-wide setup."""

from __future__ import annotations

import gc

import pytest

from erp_api.app import AppState, create_app, freeze_startup_heap
from erp_api.settings import Settings


def test_what_is_alive_after_the_first_startup_is_frozen_once_per_process() -> None:
    freeze_startup_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0, "the startup objects are out of the collector's sight"
    freeze_startup_heap()
    assert gc.get_freeze_count() == frozen, "a later startup (another app in the process) freezes nothing"


def test_app_state_reads_as_plain_attributes_and_stays_starlettes_mapping() -> None:
    state = AppState()
    state.resources = "opened"
    state["events"] = "hub"
    assert "resources" in vars(state), "read without State.__getattr__'s failed look-up first"
    assert (state.resources, state["resources"], state.events) == ("opened", "opened", "hub")
    assert dict(state._state) == {"resources": "opened", "events": "hub"}, "Starlette's mapping holds them"
    state.resources = "reopened"
    assert (state.resources, state._state["resources"]) == ("reopened", "reopened")
    del state.resources
    del state["events"]
    assert len(state) == 0
    with pytest.raises(AttributeError):
        _ = state.resources


def test_the_application_keeps_its_state_in_app_state() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    assert isinstance(app.state, AppState)
