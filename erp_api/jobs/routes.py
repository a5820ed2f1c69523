"""HTTP routes for operators: the status of the background jobs, and starting a periodic job by hand."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from erp_api.errors import NotFound
from erp_api.http import json_response
from erp_api.jobs.schemas import JobPath, JobRunAccepted, JobStatusOut
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "jobs"
_JOB_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@describe(
    Operation(
        "Each background job's runs (last, count, success rate, durations) and the queue lengths",
        TAG,
        responses={200: JobStatusOut},
    )
)
async def job_status(request: Request) -> Response:
    return json_response(await resources(request).jobs.status(), headers={"Cache-Control": "no-store"})


@describe(
    Operation("Run a periodic job now", TAG, path=JobPath, responses={202: JobRunAccepted}, errors=(404, 503))
)
async def run_job(request: Request) -> Response:
    name = request.path_params["name"]
    if not _JOB_NAME.fullmatch(name):
        raise NotFound(f"no periodic job is called {name[:64]!r}")
    return json_response(await resources(request).jobs.run(name), 202)


routes = [
    # Queue lengths and broker errors are the service's internals; whoever may run a job sees them.
    Endpoint("/jobs/status", job_status, "GET", Role.ADMIN),
    Endpoint("/jobs/{name}/run", run_job, "POST", Role.ADMIN),
]
