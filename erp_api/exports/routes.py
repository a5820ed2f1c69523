"""HTTP routes of the exports: parse the filters, pick the format, stream (``stream.ExportStream``)."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request

from erp_api.exports.formats import CSV_MEDIA_TYPE, NDJSON_MEDIA_TYPE, CsvFormat, ExportFormat, NdjsonFormat
from erp_api.exports.schemas import (
    AlertCsvQuery,
    AlertExportQuery,
    ChargeCsvQuery,
    ChargeExportQuery,
    MeasurementCsvQuery,
    MeasurementExportQuery,
)
from erp_api.exports.service import Export
from erp_api.exports.stream import ExportStream
from erp_api.http import read_query
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "exports"
CAP_NOTE = "; at most ERP_EXPORT_MAX_ROWS rows (a larger export ends as an incomplete transfer)"


def _csv(what: str, query: type[BaseModel]) -> Operation:
    summary = f"Export {what} as CSV for spreadsheets (UTF-8 with a BOM unless bom=false), streamed{CAP_NOTE}"
    return Operation(summary, TAG, query=query, responses={200: None}, produces={200: CSV_MEDIA_TYPE})


def _ndjson(what: str, query: type[BaseModel]) -> Operation:
    summary = f"Export {what} as NDJSON (one JSON object per line), streamed{CAP_NOTE}"
    return Operation(summary, TAG, query=query, responses={200: None}, produces={200: NDJSON_MEDIA_TYPE})


def _stream(request: Request, export: Export, export_format: ExportFormat) -> ExportStream:
    return ExportStream(export, export_format, max_rows=resources(request).settings.export_max_rows)


@describe(_csv("charges, oldest first", ChargeCsvQuery))
async def export_charges_csv(request: Request) -> ExportStream:
    query = read_query(request, ChargeCsvQuery)
    return _stream(request, resources(request).exports.charges(query), CsvFormat(bom=query.bom))


@describe(_ndjson("charges, oldest first", ChargeExportQuery))
async def export_charges_ndjson(request: Request) -> ExportStream:
    query = read_query(request, ChargeExportQuery)
    return _stream(request, resources(request).exports.charges(query), NdjsonFormat())


@describe(_csv("measurements by parameter and time", MeasurementCsvQuery))
async def export_measurements_csv(request: Request) -> ExportStream:
    query = read_query(request, MeasurementCsvQuery)
    return _stream(request, resources(request).exports.measurements(query), CsvFormat(bom=query.bom))


@describe(_ndjson("measurements by parameter and time", MeasurementExportQuery))
async def export_measurements_ndjson(request: Request) -> ExportStream:
    query = read_query(request, MeasurementExportQuery)
    return _stream(request, resources(request).exports.measurements(query), NdjsonFormat())


@describe(_csv("quality alerts, oldest first", AlertCsvQuery))
async def export_alerts_csv(request: Request) -> ExportStream:
    query = read_query(request, AlertCsvQuery)
    return _stream(request, resources(request).exports.alerts(query), CsvFormat(bom=query.bom))


@describe(_ndjson("quality alerts, oldest first", AlertExportQuery))
async def export_alerts_ndjson(request: Request) -> ExportStream:
    query = read_query(request, AlertExportQuery)
    return _stream(request, resources(request).exports.alerts(query), NdjsonFormat())


routes = [
    Endpoint("/exports/charges.csv", export_charges_csv, "GET", Role.VIEWER),
    Endpoint("/exports/charges.ndjson", export_charges_ndjson, "GET", Role.VIEWER),
    Endpoint("/exports/measurements.csv", export_measurements_csv, "GET", Role.VIEWER),
    Endpoint("/exports/measurements.ndjson", export_measurements_ndjson, "GET", Role.VIEWER),
    Endpoint("/exports/alerts.csv", export_alerts_csv, "GET", Role.VIEWER),
    Endpoint("/exports/alerts.ndjson", export_alerts_ndjson, "GET", Role.VIEWER),
]
