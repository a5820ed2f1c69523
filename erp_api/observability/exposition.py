"""``GET /metrics``: the Prometheus text format, of this process or of all workers."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from erp_api.observability import request_ledger
from erp_api.observability.multiprocess import render_all_workers
from erp_api.resources import resources


async def metrics_endpoint(request: Request) -> Response:
    """Every metric in the classic text format (0.0.4), which every Prometheus version reads.

    Rendered off the event loop: multiprocess mode reads one file per worker.
    """
    ctx = resources(request)
    ledger = request.scope.get(request_ledger.SCOPE_KEY)
    if ledger is not None:
        ledger.flush()  # its flush copies the cache's counters too
    else:
        ctx.cache_counters.record()
    directory = ctx.settings.prometheus_multiproc_dir
    if directory is None:
        body = await run_in_threadpool(generate_latest, REGISTRY)
    else:
        body = await run_in_threadpool(render_all_workers, directory)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4, headers={"Cache-Control": "no-store"})
