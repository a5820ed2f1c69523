"""The documented analysis result is the one the runner stores: every field typed, none left out."""

from __future__ import annotations

import httpx
import orjson
from starlette.applications import Starlette

from erp_api.analyses.schemas import AnalysisResult, AnalysisViolation, ParameterAnalysis
from erp_api.quality.service import QualityService
from erp_api.quality.spc.series import Baseline
from tests.analyses.helpers import measured_charge


async def test_a_stored_analysis_result_matches_its_schema_field_for_field(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    charge_id = await measured_charge(client, points=60)
    service = QualityService(app.state.resources.sessions, app.state.resources.cache)
    for baseline in (None, {"diameter": Baseline(center=10.0, sigma=0.01)}):
        # What the runner stores: the analyzer's report as JSON.
        stored = orjson.loads(orjson.dumps(await service.analyze_charge(charge_id, baseline=baseline)))
        result = AnalysisResult.model_validate(stored)
        assert result.anomaly_count > 0
        assert set(stored) == set(AnalysisResult.model_fields)
        for parameter in stored["parameters"]:
            assert set(parameter) == set(ParameterAnalysis.model_fields)
            for violation in parameter["violations"]:
                assert set(violation) == set(AnalysisViolation.model_fields)
