"""Headless Chromium for tests, driven over the DevTools protocol: open a page, run its JavaScript,
read what it wrote, and what it logged (console messages, exceptions, CSP violations).

Debian's ``chromium`` is all it needs (no WebDriver, no browser download): the browser is started as
a process of its own (``processes.running_process``) with ``--remote-debugging-port=0``, and the
port it picked is read from the ``DevToolsActivePort`` file it writes; the ``websockets`` client
speaks the protocol. Each page is a target attached in flat mode, so that one connection serves all.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from testing.processes import ServiceProcess, running_process

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0


def find_chromium() -> str | None:
    """The Chromium executable on the PATH, if any."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class BrowserError(RuntimeError):
    """A DevTools call failed, or a page's script threw."""


class Browser:
    """One DevTools connection to a running Chromium."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._ids = itertools.count(1)
        self._pages: dict[str, Page] = {}

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float = CALL_TIMEOUT) -> dict[str, Any]:  # fmt: skip
        """Send one command and wait for its answer, filing the events that arrive meanwhile."""
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._connection.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{method}: no answer within {timeout} s")
            answer = json.loads(self._connection.recv(timeout=remaining))
            if answer.get("id") == call_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            page = self._pages.get(answer.get("sessionId", ""))
            if page is not None and "method" in answer:
                page.file_event(answer["method"], answer.get("params", {}))

    def open(self, url: str) -> Page:
        """A new tab showing ``url``, once its document has loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = self._pages[session] = Page(self, session)
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(domain, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        page.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")
        return page


class Page:
    """A tab: evaluate JavaScript in it and read what it logged."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session
        self.log: list[str] = []

    def file_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
            )
            self.log.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.log.append(
                f"exception: {details.get('exception', {}).get('description', details.get('text'))}"
            )
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.log.append(f"{entry.get('source')}.{entry.get('level')}: {entry.get('text')}")

    def evaluate(self, expression: str, *, timeout: float = CALL_TIMEOUT) -> Any:
        """The value of ``expression`` (a promise is awaited), as JSON-compatible data."""
        result = self._browser.call(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": True,
                "returnByValue": True,
                "timeout": timeout * 1000,
            },
            session=self._session,
            timeout=timeout + 5,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description", details.get("text")))
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = CALL_TIMEOUT) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} still false after {timeout} s; page log: {self.log}")
            time.sleep(0.05)

    def text(self, selector: str) -> str | None:
        """The text of the first element matching ``selector`` (None if there is none)."""
        value = self.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? null")
        return None if value is None else str(value)


def _devtools_endpoint(profile: Path) -> str | None:
    lines = (
        (profile / "DevToolsActivePort").read_text().splitlines()
        if (profile / "DevToolsActivePort").exists()
        else []
    )
    return f"ws://127.0.0.1:{lines[0]}{lines[1]}" if len(lines) >= 2 else None


@contextmanager
def headless_chromium(executable: str | None = None) -> Iterator[Browser]:
    """Chromium without a display, a fresh profile, its DevTools on a free port; stopped afterwards."""
    executable = executable or find_chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium on the PATH (apt-get install chromium)")
    profile = Path(tempfile.mkdtemp(prefix="erp-chromium-"))
    command = [
        executable,
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]

    def ready(_process: ServiceProcess) -> bool:
        return _devtools_endpoint(profile) is not None

    try:
        with running_process("chromium", command, {}, ready=ready, start_timeout=STARTUP_TIMEOUT) as process:
            endpoint = _devtools_endpoint(profile)
            assert endpoint is not None, process.log()
            with connect(endpoint, max_size=None, open_timeout=10) as connection:
                yield Browser(connection)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
