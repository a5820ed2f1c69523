"""How specifications and measurements look on the wire: plain dicts serialized once by orjson."""

from __future__ import annotations

from typing import Any

from erp_api.quality.models import Measurement, QualitySpec
from erp_api.quality.records import StoredMeasurement


def spec_dict(spec: QualitySpec) -> dict[str, Any]:
    return {
        "product_sku": spec.product_sku,
        "parameter": spec.parameter,
        "unit": spec.unit,
        "lsl": spec.lsl,
        "usl": spec.usl,
        "target": spec.target,
        "created_at": spec.created_at,
        "updated_at": spec.updated_at,
    }


def measurement_dict(measurement: Measurement | StoredMeasurement) -> dict[str, Any]:
    return {
        "id": measurement.id,
        "charge_id": measurement.charge_id,
        "parameter": measurement.parameter,
        "value": measurement.value,
        "measured_at": measurement.measured_at,
        "created_at": measurement.created_at,
    }
