"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, tuned for one machine.

kombu hands every transport option to ``sqlalchemy.create_engine``, so the stock transport cannot
take a polling interval (its default is one second per empty poll). This transport builds the
engine itself (busy timeout, WAL) and keeps the message table bounded: kombu only hides delivered
messages, so rows delivered longer ago than ``visibility_timeout`` are deleted now and then.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kombu.transport import sqlalchemy as kombu_sqlalchemy
from sqlalchemy import create_engine, delete, event
from sqlalchemy.engine import Engine

PURGE_EVERY_SECONDS = 60.0


class Channel(kombu_sqlalchemy.Channel):
    _last_purge = 0.0

    def _engine_from_config(self) -> Engine:
        url: str = self.connection.client.hostname
        options = self.connection.client.transport_options
        path = url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": float(options.get("connect_timeout", 5.0))})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        self._maybe_purge_delivered()
        return super()._get(queue)  # type: ignore[no-untyped-call]

    def _maybe_purge_delivered(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = now
        keep = float(self.connection.client.transport_options.get("visibility_timeout", 3600.0))
        # kombu stamps a message with local time when it is delivered (hidden).
        cutoff = datetime.now() - timedelta(seconds=keep)
        message = self.message_cls
        self.session.execute(delete(message).where(message.visible.is_(False), message.sent_at < cutoff))
        self.session.commit()


class Transport(kombu_sqlalchemy.Transport):
    Channel = Channel
