"""How specifications, measurements, limits and inspections look on the wire: plain dicts serialized
once by orjson."""

from __future__ import annotations

from typing import Any

from erp_api.quality.models import ControlLimits, Inspection, Measurement, QualitySpec
from erp_api.quality.records import StoredMeasurement
from erp_api.quality.spc.chart import zone_line


def spec_dict(spec: QualitySpec) -> dict[str, Any]:
    return {
        "product_sku": spec.product_sku,
        "parameter": spec.parameter,
        "unit": spec.unit,
        "lsl": spec.lsl,
        "usl": spec.usl,
        "target": spec.target,
        "rules": spec.rules,
        "rule_ids": spec.rule_ids.split(",") if spec.rule_ids else None,
        "auto_hold": spec.auto_hold,
        "created_at": spec.created_at,
        "updated_at": spec.updated_at,
    }


def measurement_dict(measurement: Measurement | StoredMeasurement) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": measurement.id,
        "charge_id": measurement.charge_id,
        "parameter": measurement.parameter,
        "value": measurement.value,
        "measured_at": measurement.measured_at,
        "created_at": measurement.created_at,
        "voided": False,
        "void_reason": None,
        "voided_at": None,
        "voided_by": None,
    }
    if isinstance(measurement, Measurement) and measurement.voided_at is not None:
        document["voided"] = True
        document["void_reason"] = measurement.void_reason
        document["voided_at"] = measurement.voided_at
        document["voided_by"] = measurement.voided_by
    return document


def limits_dict(limits: ControlLimits) -> dict[str, Any]:
    lcl, ucl = zone_line(limits.center, limits.sigma, 3)
    return {
        "id": limits.id,
        "product_sku": limits.product_sku,
        "parameter": limits.parameter,
        "center": limits.center,
        "sigma": limits.sigma,
        "ucl": ucl,
        "lcl": lcl,
        "source": limits.source,
        "basis": limits.basis,
        "created_by": limits.created_by,
        "created_at": limits.created_at,
    }


def inspection_dict(inspection: Inspection) -> dict[str, Any]:
    return {
        "id": inspection.id,
        "charge_id": inspection.charge_id,
        "characteristic": inspection.characteristic,
        "form": "defectives" if inspection.inspected is not None else "defects",
        "inspected": inspection.inspected,
        "nonconforming": inspection.nonconforming,
        "units": inspection.units,
        "nonconformities": inspection.nonconformities,
        "inspected_at": inspection.inspected_at,
        "created_at": inspection.created_at,
    }
