"""Exports are read in chunks of CHUNK_ROWS here, so that every test's export spans several chunks."""

from __future__ import annotations

import pytest

from erp_api.settings import Settings

CHUNK_ROWS = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"export_chunk_rows": CHUNK_ROWS})
