"""The query strings of the exports: the filters of the lists they export; CSV adds ``bom``."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from erp_api.charges.schemas import LineName, ProductSku
from erp_api.charges.states import ChargeStatus
from erp_api.quality.alerts.states import AlertStatus
from erp_api.quality.schemas import NamedRule, Parameter
from erp_api.schemas import QueryModel, UtcDatetime

# Charge numbers are upper case: a prefix is matched whatever case it is given in.
NumberPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$"), AfterValidator(str.upper)]


class ChargeExportQuery(QueryModel):
    """Which charges an export holds: the charge list's filters; oldest production time first."""

    status: list[ChargeStatus] | None = Field(
        None, description="Repeat to select several, e.g. ?status=released&status=rejected"
    )
    product_sku: ProductSku | None = None
    line: LineName | None = None
    number_prefix: NumberPrefix | None = Field(
        None, description="Charges whose number starts with this text (case-insensitive)"
    )
    produced_from: UtcDatetime | None = Field(None, description="Produced at or after (inclusive)")
    produced_to: UtcDatetime | None = Field(None, description="Produced at or before (inclusive)")


class MeasurementExportQuery(QueryModel):
    """Which measurements an export holds: of one charge or one product, by parameter, then time."""

    charge_id: Annotated[int, Field(ge=1, lt=2**63)] | None = Field(
        None, description="The charge's measurements (this or product_sku is required)"
    )
    product_sku: ProductSku | None = Field(
        None, description="Measurements of every charge of this product (this or charge_id is required)"
    )
    parameter: Parameter | None = None
    measured_from: UtcDatetime | None = Field(None, description="Measured at or after (inclusive)")
    measured_to: UtcDatetime | None = Field(None, description="Measured before (exclusive)")
    include_voided: bool = Field(
        False, description="Include voided measurements too (the voided column tells them apart)"
    )

    @model_validator(mode="after")
    def _one_series_source(self) -> MeasurementExportQuery:
        # Without either, the export would sort every measurement stored: no index serves that.
        if self.charge_id is None and self.product_sku is None:
            raise ValueError("name a charge_id or a product_sku")
        if self.measured_from and self.measured_to and self.measured_from >= self.measured_to:
            raise ValueError("measured_from must be before measured_to")
        return self


class AlertExportQuery(QueryModel):
    """Which alerts an export holds: the alert list's filters; oldest first."""

    status: list[AlertStatus] | None = Field(
        None, description="Repeat to select several, e.g. ?status=open&status=acknowledged"
    )
    charge_id: Annotated[int, Field(ge=1, lt=2**63)] | None = None
    product_sku: ProductSku | None = None
    parameter: Parameter | None = None
    rule: NamedRule | None = None


class CsvOptions(QueryModel):
    """What only a CSV export takes."""

    bom: bool = Field(
        True,
        description=(
            "Start the file with a UTF-8 byte order mark (the default), which spreadsheet programs need "
            "to read it as UTF-8; bom=false for tools that do not expect one"
        ),
    )


class ChargeCsvQuery(CsvOptions, ChargeExportQuery):
    """The charge export's filters, then the CSV option."""


class MeasurementCsvQuery(CsvOptions, MeasurementExportQuery):
    """The measurement export's filters, then the CSV option."""


class AlertCsvQuery(CsvOptions, AlertExportQuery):
    """The alert export's filters, then the CSV option."""
