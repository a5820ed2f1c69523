"""The HTTP edges of the service as served (``python -m erp_api serve``), spoken to over raw sockets:
idle, header and body timeouts, truncated bodies, forwarded headers, a database outage (PostgreSQL
behind a proxy that refuses or black-holes, a locked SQLite file) and the request deadline."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import sqlite3
import subprocess
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url

from testing.processes import Server, running_server, serve_command
from tests.charges.helpers import charge_payload
from tests.tcp_proxy import BLACK_HOLE, REFUSE, TcpProxy

pytestmark = pytest.mark.slow

TIMEOUT = 1.0
"""The header, body and keep-alive timeouts of the servers here, in seconds."""
MARGIN = 1.5
"""How much later than its timeout a server may act on a loaded machine."""

CHARGES = "/api/v1/charges"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/problem+json"
        document: dict[str, object] = json.loads(self.body)
        return document


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=15)


def request_bytes(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: edge", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if body or method in ("POST", "PATCH", "PUT"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_unread: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()
"""Bytes a read took past the answer it read: the start of the next (pipelined) answer."""


def read_answer(sock: socket.socket) -> Answer:
    """One response: the head, then a body of its Content-Length. What one read brings past it (a
    client that reads late gets pipelined answers together) is kept for the next call."""
    data = _unread.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed within the body"
        body += chunk
    if len(body) > length:
        _unread[sock] = body[length:]
    return Answer(int(status_line.split()[1]), headers, body[:length])


def closed_by_server(sock: socket.socket) -> bool:
    """True if the server closes the connection (EOF) before the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def trickle(sock: socket.socket, data: bytes, interval: float = 0.1) -> None:
    """Send ``data`` a byte every ``interval``, until it is all sent or the server answers."""
    for byte in data:
        sock.sendall(bytes([byte]))
        if select.select([sock], [], [], interval)[0]:
            return


def ask(server: Server, method: str, path: str, body: bytes = b"", **headers: str) -> Answer:
    with connect(server) as sock:
        sock.sendall(request_bytes(method, path, body, headers))
        return read_answer(sock)


def assert_no_request_failed(server: Server) -> None:
    """No request met an unhandled error (background loops do log their failed rounds with a trace)."""
    log = server.process.log()
    assert '"unhandled_error"' not in log
    assert "Exception in ASGI application" not in log


def edge_env(database_url: str, tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        "ERP_DATABASE_URL": database_url,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_AUTH_ENABLED": "false",
        "ERP_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
        "ERP_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
        "ERP_KEEP_ALIVE_TIMEOUT_SECONDS": str(TIMEOUT),
        "ERP_REQUEST_TIMEOUT_SECONDS": "10",
        **settings,
    }


@pytest.fixture(scope="module")
def sqlite_file(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("edges") / "erp.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return path


@pytest.fixture(scope="module")
def server(sqlite_file: Path) -> Iterator[Server]:
    env = edge_env(
        f"sqlite+aiosqlite:///{sqlite_file}", sqlite_file.parent, ERP_DB_CONNECT_TIMEOUT_SECONDS="1"
    )
    with running_server(env, command=serve_command()) as served:
        yield served
    assert_no_request_failed(served)


# Idle connections and slow headers --------------------------------------------------------------


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_header_timeout(server: Server) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        assert closed_by_server(sock)
        assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + MARGIN


def test_headers_sent_a_byte_at_a_time_get_a_408_within_the_header_timeout(server: Server) -> None:
    head = request_bytes("GET", "/health", headers={"X-Padding": "p" * 100})[:-4]  # never ends
    with connect(server) as sock:
        started = time.monotonic()
        trickle(sock, head)
        answer = read_answer(sock)
        assert answer.status == 408
        assert answer.problem()["type"] == "https://erp-api.dev/problems/request-timeout"
        assert answer.headers["connection"] == "close"
        assert closed_by_server(sock)
        assert time.monotonic() - started < TIMEOUT + MARGIN


def test_headers_longer_than_the_limit_get_a_431_and_the_connection_closed(server: Server) -> None:
    """Sent without end, as fast as the socket takes them: refused once past the limit (16 KiB)."""
    with connect(server) as sock:
        sock.sendall(b"GET /api/v1/charges HTTP/1.1\r\nHost: edge\r\n")
        padding = b"X-Padding: " + b"a" * 1000 + b"\r\n"
        for _ in range(1000):  # 1 MB, if nothing stopped it
            try:
                sock.sendall(padding)
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([sock], [], [], 0)[0]:
                break
        # Without the limit the server would still be waiting for the end of the headers.
        assert select.select([sock], [], [], 5)[0], "headers past the limit were taken without an answer"
        answer = read_answer(sock)
        assert answer.status == 431
        assert answer.problem()["type"] == "https://erp-api.dev/problems/request-header-fields-too-large"
        assert answer.headers["connection"] == "close"
        assert closed_by_server(sock)


def test_headers_just_under_the_limit_are_served(server: Server) -> None:
    padding = "a" * (16 * 1024 - 200)  # with the request line and Host, just under 16 KiB
    answer = ask(server, "GET", f"{CHARGES}?limit=1", **{"X-Padding": padding})
    assert answer.status == 200


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(server: Server) -> None:
    with connect(server) as sock:
        for _ in range(2):  # kept alive between requests sent in time
            sock.sendall(request_bytes("GET", "/health"))
            assert read_answer(sock).status == 200
        started = time.monotonic()
        assert closed_by_server(sock)
        assert time.monotonic() - started < TIMEOUT + MARGIN


# Slow and truncated bodies ---------------------------------------------------------------------


def test_a_body_that_stops_arriving_gets_a_408_and_the_connection_closed(server: Server) -> None:
    body = json.dumps(charge_payload(1)).encode()
    with connect(server) as sock:
        sock.sendall(request_bytes("POST", CHARGES, body)[: -len(body) // 2])
        started = time.monotonic()
        answer = read_answer(sock)
        assert answer.status == 408
        assert answer.problem()["title"] == "Request timeout"
        assert answer.headers["connection"] == "close"
        assert closed_by_server(sock)
        assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + MARGIN


def test_a_body_sent_a_byte_at_a_time_gets_a_408_within_the_body_timeout(server: Server) -> None:
    body = json.dumps(charge_payload(2)).encode()
    message = request_bytes("POST", CHARGES, body)
    with connect(server) as sock:
        sock.sendall(message[: -len(body)])
        started = time.monotonic()
        trickle(sock, body)
        answer = read_answer(sock)
        assert answer.status == 408
        assert closed_by_server(sock)
        assert time.monotonic() - started < TIMEOUT + MARGIN
    assert ask(server, "GET", f"{CHARGES}?line=L1").status == 200
    assert b"CH-2026-000002" not in ask(server, "GET", f"{CHARGES}?line=L1").body


def test_a_body_cut_short_by_a_half_close_gets_a_400_at_once(server: Server) -> None:
    body = json.dumps(charge_payload(3)).encode()
    with connect(server) as sock:
        sock.sendall(request_bytes("POST", CHARGES, body)[:-10])
        time.sleep(0.1)
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        answer = read_answer(sock)
        assert answer.status == 400
        problem = answer.problem()
        assert problem["type"] == "https://erp-api.dev/problems/incomplete-body"
        assert f"of the {len(body)} bytes" in str(problem["detail"])
        assert closed_by_server(sock)
        assert time.monotonic() - started < TIMEOUT / 2


def test_a_complete_body_on_a_kept_alive_connection_is_served_as_before(server: Server) -> None:
    with connect(server) as sock:
        for serial in (4, 5):
            sock.sendall(request_bytes("POST", CHARGES, json.dumps(charge_payload(serial)).encode()))
            assert read_answer(sock).status == 201


# Writes ----------------------------------------------------------------------------------------


def test_pipelined_answers_arrive_whole_and_in_order(server: Server) -> None:
    """Head and body of each answer leave together (``CoalescingTransport``), one answer after another."""
    with connect(server) as sock:
        paths = [f"{CHARGES}/{900_000 + n}" for n in (1, 2, 3)]  # none exists: each 404 names its path
        sock.sendall(b"".join(request_bytes("GET", path) for path in paths))
        answers = [read_answer(sock) for _ in paths]
    assert [answer.status for answer in answers] == [404, 404, 404]
    assert [answer.problem()["instance"] for answer in answers] == paths


def test_a_streamed_answer_sends_its_head_before_its_first_event(server: Server) -> None:
    """The live event stream has nothing to send yet: its head must not wait for the first event."""
    with connect(server) as sock:
        sock.sendall(request_bytes("GET", "/api/v1/events", headers={"Accept": "text/event-stream"}))
        sock.settimeout(2)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            assert chunk, "closed before the head"
            head += chunk
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-type: text/event-stream" in head.lower()


# Forwarded headers -----------------------------------------------------------------------------


def _anonymous_statuses(server: Server, forwarded_for: list[str]) -> list[int]:
    return [ask(server, "GET", CHARGES, **{"X-Forwarded-For": address}).status for address in forwarded_for]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        # Loopback is not trusted by default: rotating X-Forwarded-For does not escape the limit.
        ("", [401, 401, 429, 429]),
        # Behind a trusted proxy each forwarded address is counted on its own.
        ("127.0.0.1", [401, 401, 401, 401]),
    ],
)
def test_forwarded_addresses_count_only_from_trusted_proxies(
    trusted: str, expected: list[int], sqlite_template: Path, tmp_path: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "erp.sqlite3")
    env = edge_env(
        f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3",
        tmp_path,
        ERP_AUTH_ENABLED="true",
        ERP_RATE_LIMIT_ANONYMOUS="2",
        ERP_TRUSTED_PROXIES=trusted,
    )
    with running_server(env, command=serve_command()) as served:
        assert _anonymous_statuses(served, ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]) == (
            expected
        )


# The database unavailable ----------------------------------------------------------------------


def assert_unavailable(answer: Answer) -> None:
    assert answer.status == 503, answer.body
    assert answer.headers["retry-after"] == "5"
    assert answer.problem()["type"] == "https://erp-api.dev/problems/service-unavailable"


def test_a_locked_sqlite_database_is_a_503_with_retry_after(server: Server, sqlite_file: Path) -> None:
    lock = sqlite3.connect(sqlite_file, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with connect(server) as sock:
            sock.sendall(request_bytes("POST", CHARGES, json.dumps(charge_payload(6)).encode()))
            assert_unavailable(read_answer(sock))
            # Answered on a connection that stays open for the next request.
            sock.sendall(request_bytes("GET", "/health"))
            assert read_answer(sock).status == 200
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert ask(server, "POST", CHARGES, json.dumps(charge_payload(6)).encode()).status == 201


@pytest.fixture
def postgres_proxy(postgres_url: str) -> Iterator[tuple[TcpProxy, str]]:
    upstream = make_url(postgres_url)
    with TcpProxy((upstream.host or "127.0.0.1", upstream.port or 5432)) as proxy:
        yield proxy, upstream.set(port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize("outage", [REFUSE, BLACK_HOLE], ids=["refused", "black-holed"])
def test_a_postgres_outage_is_a_503_with_retry_after_and_ends_with_it(
    outage: object, postgres_proxy: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = postgres_proxy
    env = edge_env(url, tmp_path, ERP_DB_CONNECT_TIMEOUT_SECONDS="1", ERP_DB_POOL_TIMEOUT_SECONDS="1")
    with running_server(env, command=serve_command()) as served:
        assert ask(served, "GET", f"{CHARGES}?line=before").status == 200
        proxy.cut(outage)  # type: ignore[arg-type]
        with connect(served) as sock:
            for line in ("during-1", "during-2"):  # the same connection, kept open
                started = time.monotonic()
                sock.sendall(request_bytes("GET", f"{CHARGES}?line={line}"))
                assert_unavailable(read_answer(sock))
                assert time.monotonic() - started < 5
            sock.sendall(request_bytes("POST", CHARGES, json.dumps(charge_payload(7)).encode()))
            assert_unavailable(read_answer(sock))
        proxy.restore()
        deadline = time.monotonic() + 10
        while (status := ask(served, "GET", f"{CHARGES}?line=after").status) != 200:
            assert status == 503
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert_no_request_failed(served)


@pytest.mark.postgres
def test_no_answer_within_the_request_deadline_is_a_504_and_a_closed_connection(
    postgres_proxy: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = postgres_proxy
    env = edge_env(
        url,
        tmp_path,
        ERP_REQUEST_TIMEOUT_SECONDS="2",
        ERP_DB_CONNECT_TIMEOUT_SECONDS="20",
        ERP_DB_POOL_TIMEOUT_SECONDS="20",
    )
    with running_server(env, command=serve_command()) as served:
        assert ask(served, "GET", f"{CHARGES}?line=before").status == 200
        proxy.cut(BLACK_HOLE)
        with connect(served) as sock:
            started = time.monotonic()
            sock.sendall(request_bytes("GET", f"{CHARGES}?line=stuck"))
            answer = read_answer(sock)
            assert answer.status == 504
            assert answer.problem()["type"] == "https://erp-api.dev/problems/deadline-exceeded"
            assert answer.headers["connection"] == "close"
            assert closed_by_server(sock)
            assert 1.8 <= time.monotonic() - started < 2 + MARGIN
        proxy.restore()


@pytest.mark.postgres
def test_a_postgres_outage_met_while_authenticating_is_the_same_503(
    postgres_proxy: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = postgres_proxy
    key = "erp_edge-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"
    env = edge_env(
        url,
        tmp_path,
        ERP_AUTH_ENABLED="true",
        ERP_BOOTSTRAP_ADMIN_KEY=key,
        ERP_AUTH_CACHE_TTL_SECONDS="0",  # every request looks its key up
        ERP_DB_CONNECT_TIMEOUT_SECONDS="1",
        ERP_DB_POOL_TIMEOUT_SECONDS="1",
    )
    with running_server(env, command=serve_command()) as served:
        bearer = {"Authorization": f"Bearer {key}"}
        assert ask(served, "GET", f"{CHARGES}?line=before", **bearer).status == 200
        proxy.cut(REFUSE)
        with connect(served) as sock:
            for line in ("during-1", "during-2"):
                sock.sendall(request_bytes("GET", f"{CHARGES}?line={line}", headers=bearer))
                assert_unavailable(read_answer(sock))
        proxy.restore()
    assert_no_request_failed(served)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ERP_TRUSTED_PROXIES",
            "10.0.0.1,proxy.local",
            "ERP_TRUSTED_PROXIES: must be IP addresses or networks",
        ),
        ("ERP_BODY_TIMEOUT_SECONDS", "30", "ERP_BODY_TIMEOUT_SECONDS: must be less than ERP_REQUEST_TIMEOUT"),
    ],
)
def test_serve_refuses_edge_settings_it_cannot_keep(variable: str, value: str, message: str) -> None:
    finished = subprocess.run(
        serve_command(),
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert message in finished.stderr
