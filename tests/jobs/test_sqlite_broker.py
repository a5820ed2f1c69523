"""The embedded broker keeps its message table bounded: delivered messages do not pile up."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from erp_api.jobs import sqlite_broker
from erp_api.settings import load_settings
from tasks.celery_app import create_celery


def test_delivered_messages_older_than_the_visibility_timeout_are_purged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broker.sqlite3"
    app = create_celery(
        load_settings(broker_url=f"sqla+sqlite:///{path}", broker_visibility_timeout_seconds=3600)
    )
    for analysis_id in range(3):
        app.send_task("erp.analysis.run", args=[analysis_id], queue="high_priority")
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        channel._get("high_priority")  # delivered: kombu hides the row and keeps it
        channel._get("high_priority")
        with sqlite3.connect(path) as db:
            # kombu stamps deliveries with naive local time.
            two_hours_ago = (datetime.now() - timedelta(hours=2)).isoformat(sep=" ")
            db.execute("UPDATE kombu_message SET timestamp = ? WHERE visible = 0", (two_hours_ago,))
        monkeypatch.setattr(sqlite_broker, "PURGE_EVERY_SECONDS", 0.0)
        channel._get("high_priority")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT visible FROM kombu_message").fetchall()
    assert rows == [(0,)]  # the two old deliveries are gone; the one just delivered stays
