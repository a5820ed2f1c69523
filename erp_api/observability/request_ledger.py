"""The requests finished since the last flush, and what they add to the HTTP metrics and access log.

Per request the middleware only counts a start and appends one tuple of plain values; route
labels, metric updates and access lines are worked out in one tight loop over a batch, when the
``FlushWindow`` says so (at once at low traffic, every ``FLUSH_SECONDS`` under load): done per
request, the same work costs several times as much, because it runs cold between the rest of the
request's code.

``flush()`` also runs before every scrape of ``/metrics`` (the middleware leaves the ledger in the
scope under ``SCOPE_KEY``) and at shutdown, so a scrape is never behind and the last requests of a
worker are not lost.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Mount
from starlette.types import Scope

from erp_api.observability.log_output import FlushWindow
from erp_api.observability.logging import UtcTimestamp, access_line, info_enabled, write_log_lines
from erp_api.observability.metrics import (
    HTTP_LATENCY_BUCKETS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    HTTP_REQUESTS_IN_PROGRESS,
)
from erp_api.observability.route_labels import UNMATCHED, route_template

SCOPE_KEY = "erp.request_ledger"
# Any other method shares one label, so a client cannot mint label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UPPER_BOUNDS = (*HTTP_LATENCY_BUCKETS, float("inf"))

# (method, route object or ready template, root path after and before routing, status, started and
#  finished (perf_counter), path, request id): no scope, so that nothing of the request stays alive
# for the garbage collector to scan until the flush.
_Finished = tuple[str, object, str, str, int, float, float, str, str]


class _Series:
    """What one (method, route) added since the last flush: counts per status, durations."""

    __slots__ = ("buckets", "statuses", "total")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * len(_UPPER_BOUNDS)
        self.total = 0.0


class RequestLedger:
    """Notes requests as they start and finish; ``flush()`` turns the notes into metrics and logs."""

    def __init__(self, access_log: bool = True) -> None:
        self._access_log = access_log
        self._finished: list[_Finished] = []
        self._started: dict[str, int] = {}
        self._ended: dict[str, int] = {}
        self._reported: dict[str, int] = {}
        self._templates: dict[tuple[int, str, str], str] = {}
        self._window = FlushWindow(self.flush)
        self._clock = UtcTimestamp()
        # Resolved label children: .labels() validates and locks on every call, a dict lookup does not.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}
        self._gauges: dict[str, Gauge] = {}
        self._after_flush: list[Callable[[], None]] = []

    def also_on_flush(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` at the end of every flush (metrics that change with requests, such as the
        cache backend's own counters, kept as current as the request metrics)."""
        self._after_flush.append(hook)

    def started(self, method: str) -> None:
        # Nothing to flush yet: the flush before each scrape reports requests still in flight.
        self._started[method] = self._started.get(method, 0) + 1

    def finished(  # noqa: PLR0917 -- the hot path: positional, no keyword dict per call
        self,
        method: str,
        scope: Scope,
        outer_root_path: str,
        status: int,
        start: float,
        end: float,
        request_id: str,
    ) -> None:
        route = scope.get("route")
        if route is None and status != 404:
            route = route_template(scope, outer_root_path, status)  # answered before routing: rare
        self._finished.append(
            (
                method,
                route,
                scope.get("root_path", ""),
                outer_root_path,
                status,
                start,
                end,
                scope["path"],
                request_id,
            )
        )
        self._window.added(len(self._finished))

    def flush(self) -> None:
        """Record everything noted so far in the metrics and the access log."""
        finished, self._finished = self._finished, []
        series: dict[tuple[str, str], _Series] = {}
        lines: list[bytes] = []
        log = self._access_log and info_enabled()
        wall_offset = time.time() - time.perf_counter()
        for raw_method, route, root_path, outer_root_path, status, start, ended, path, request_id in finished:
            method = raw_method if raw_method in KNOWN_METHODS else "other"
            seconds = ended - start
            template = (
                route if isinstance(route, str) else self._template(route, root_path, outer_root_path, status)
            )
            key = (method, template)
            tally = series.get(key)
            if tally is None:
                tally = series[key] = _Series()
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            tally.buckets[bisect_left(_UPPER_BOUNDS, seconds)] += 1  # the first bound >= seconds
            tally.total += seconds
            if log:
                stamp = self._clock.format(ended + wall_offset)
                lines.append(access_line(raw_method, template, path, status, seconds, request_id, stamp))
        for key, tally in series.items():
            for status, count in tally.statuses.items():
                self._counter((*key, status)).inc(count)
                self._ended[key[0]] = self._ended.get(key[0], 0) + count
            _add_observations(self._histogram(key), tally)
        for method, started in self._started.items():
            in_flight = started - self._ended.get(method, 0)
            if self._reported.get(method) != in_flight:
                self._gauge(method).set(in_flight)
                self._reported[method] = in_flight
        if lines:
            write_log_lines(lines)
        for hook in self._after_flush:
            hook()

    def _template(self, route: object, root_path: str, outer_root_path: str, status: int) -> str:
        if route is None or (isinstance(route, Mount) and status == 404):
            return UNMATCHED
        key = (id(route), root_path, outer_root_path)
        template = self._templates.get(key)
        if template is None:
            # Routes live as long as the app, so their ids stay theirs; one entry per route and root.
            template = route_template({"route": route, "root_path": root_path}, outer_root_path, status)
            self._templates[key] = template
        return template

    def _counter(self, key: tuple[str, str, int]) -> Counter:
        child = self._counters.get(key)
        if child is None:
            method, route, status = key
            child = self._counters[key] = HTTP_REQUESTS.labels(method, route, str(status))
        return child

    def _histogram(self, key: tuple[str, str]) -> Histogram:
        child = self._histograms.get(key)
        if child is None:
            child = self._histograms[key] = HTTP_REQUEST_DURATION.labels(*key)
        return child

    def _gauge(self, method: str) -> Gauge:
        child = self._gauges.get(method)
        if child is None:
            child = self._gauges[method] = HTTP_REQUESTS_IN_PROGRESS.labels(method)
        return child


def _add_observations(histogram: Histogram, tally: _Series) -> None:
    # Histogram has no public way to add many observations at once; these are the values its own
    # observe() increments (per-bucket counts and the sum), so the exposition is the same. The
    # tests of the scraped histogram catch a prometheus-client release that changes them.
    histogram._sum.inc(tally.total)
    for bucket, count in zip(histogram._buckets, tally.buckets, strict=True):
        if count:
            bucket.inc(count)
