"""``GET /api/v1/audit``: the audit trail, newest first, in keyset pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from erp_api.audit.schemas import AuditPage, AuditQuery
from erp_api.http import paged_response, read_query
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "audit"


@describe(
    Operation(
        "Audit trail, newest first: who changed what, when, before and after",
        TAG,
        query=AuditQuery,
        responses={200: AuditPage},
    )
)
async def list_audit_events(request: Request) -> Response:
    query = read_query(request, AuditQuery)
    page = await resources(request).audit.page(query)
    return paged_response(request, page, {"Cache-Control": "no-store"})


routes = [Endpoint("/audit", list_audit_events, "GET", Role.QUALITY_MANAGER)]
