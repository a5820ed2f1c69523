"""Locust scenarios: a read-heavy ERP day.

- ``FrontendUser`` lists and filters charges, pages through them, opens one, views its measurements
  and the quality summary (most of the traffic);
- ``ProductionLine`` posts measurements, single and batched;
- ``QualityEngineer`` sets specs, starts analyses and polls them, quarantines and releases charges.

Requests are named by route template so the report has one row per route. Data comes from the demo
data the service seeds (its charges, products and lines). ``ERP_LOAD_API_KEY`` is sent as a bearer
token when set. ``ERP_LOAD_SPIKE=1`` runs the spike profile (base load, then three times it).
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Any

from locust import HttpUser, LoadTestShape, between, events, task

from erp_api.http import API_PREFIX

API = API_PREFIX
PARAMETERS = ("diameter_mm", "weight_g", "hardness_hrc")
MEASURABLE = ("in_production", "quarantined")
SAMPLE_PAGES = 4


class DemoData:
    """Charges fetched once per Locust process from the service itself."""

    charges: list[dict[str, Any]] = []
    products: list[str] = []
    lines: list[str] = []
    # The parameters with a spec, per product: measurements of any other parameter are refused (422).
    parameters: dict[str, list[str]] = {}


@events.test_start.add_listener
def _load_demo_data(environment: Any, **_: Any) -> None:
    import httpx

    headers = _auth_headers()
    cursor = None
    charges: list[dict[str, Any]] = []
    with httpx.Client(base_url=environment.host, headers=headers, timeout=30) as http:
        for _ in range(SAMPLE_PAGES):
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = http.get(f"{API}/charges", params=params).raise_for_status().json()
            charges.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        parameters: dict[str, list[str]] = {}
        cursor = None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = http.get(f"{API}/quality/specs", params=params).raise_for_status().json()
            for spec in page["items"]:
                parameters.setdefault(spec["product_sku"], []).append(spec["parameter"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    if not charges:
        raise RuntimeError("the target serves no charges; seed demo data first (make seed)")
    DemoData.charges = charges
    DemoData.products = sorted({c["product_sku"] for c in charges})
    DemoData.lines = sorted({c["line"] for c in charges})
    DemoData.parameters = parameters


def _auth_headers() -> dict[str, str]:
    key = os.environ.get("ERP_LOAD_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _charge(*statuses: str) -> dict[str, Any]:
    pool = [c for c in DemoData.charges if c["status"] in statuses] if statuses else DemoData.charges
    return random.choice(pool or DemoData.charges)


def _parameter(charge: dict[str, Any]) -> str:
    """A parameter the charge's product has a spec for (else one of the common ones: a 422)."""
    return random.choice(DemoData.parameters.get(charge["product_sku"]) or PARAMETERS)


class ErpUser(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.client.headers.update(_auth_headers())


class FrontendUser(ErpUser):
    weight = 12
    wait_time = between(0.05, 0.3)

    @task(6)
    def open_charge(self) -> None:
        charge = _charge()
        name = f"GET {API}/charges/{{id}}"
        response = self.client.get(f"{API}/charges/{charge['id']}", name=name)
        etag = response.headers.get("etag")
        if etag and random.random() < 0.3:
            self.client.get(f"{API}/charges/{charge['id']}", headers={"If-None-Match": etag}, name=name)

    @task(4)
    def list_filtered(self) -> None:
        params: dict[str, Any] = {"limit": 50}
        choice = random.random()
        if choice < 0.4:
            params["product_sku"] = random.choice(DemoData.products)
        elif choice < 0.7:
            params["line"] = random.choice(DemoData.lines)
        elif choice < 0.9:
            params["status"] = random.choice(["released", "in_production", "quarantined"])
        self.client.get(f"{API}/charges", params=params, name=f"GET {API}/charges")

    @task(2)
    def page_through(self) -> None:
        params: dict[str, Any] = {"limit": 25, "product_sku": random.choice(DemoData.products)}
        for _ in range(3):
            body = self.client.get(f"{API}/charges", params=params, name=f"GET {API}/charges (page)").json()
            if not body.get("next_cursor"):
                break
            params["cursor"] = body["next_cursor"]

    @task(2)
    def view_measurements(self) -> None:
        charge = _charge("released", "quarantined", "in_production")
        self.client.get(
            f"{API}/charges/{charge['id']}/measurements",
            params={"parameter": random.choice(PARAMETERS), "limit": 100},
            name=f"GET {API}/charges/{{id}}/measurements",
        )

    @task(2)
    def quality_summary(self) -> None:
        self.client.get(
            f"{API}/quality/summary",
            params={"product_sku": random.choice(DemoData.products)},
            name=f"GET {API}/quality/summary",
        )


class ProductionLine(ErpUser):
    weight = 3
    wait_time = between(0.05, 0.2)

    @task(5)
    def post_single(self) -> None:
        # Released and rejected charges take no measurements (409).
        charge = _charge(*MEASURABLE)
        self.client.post(
            f"{API}/charges/{charge['id']}/measurements",
            json={"parameter": _parameter(charge), "value": random.gauss(50, 2)},
            name=f"POST {API}/charges/{{id}}/measurements",
        )

    @task(1)
    def post_batch(self) -> None:
        charge = _charge(*MEASURABLE)
        now = datetime.now(UTC).isoformat()
        items = [
            {"parameter": _parameter(charge), "value": random.gauss(50, 2), "measured_at": now}
            for _ in range(100)
        ]
        self.client.post(
            f"{API}/charges/{charge['id']}/measurements",
            json={"items": items},
            name=f"POST {API}/charges/{{id}}/measurements (batch)",
        )


class QualityEngineer(ErpUser):
    weight = 1
    wait_time = between(0.5, 2.0)

    @task(2)
    def set_spec(self) -> None:
        product = random.choice(DemoData.products)
        self.client.put(
            f"{API}/quality/specs/{product}/weight_g",
            json={"unit": "g", "lsl": 45.0, "usl": 55.0, "target": 50.0},
            name=f"PUT {API}/quality/specs/{{product_sku}}/{{parameter}}",
        )

    @task(2)
    def analyse_and_poll(self) -> None:
        charge = _charge("released", "quarantined", "in_production")
        response = self.client.post(
            f"{API}/charges/{charge['id']}/analyses",
            json={"rules": random.choice(["nelson", "western_electric"])},
            name=f"POST {API}/charges/{{id}}/analyses",
        )
        if response.status_code != 202:
            return
        status_url = response.json()["status_url"]
        for _ in range(10):
            body = self.client.get(status_url, name=f"GET {API}/analyses/{{id}}").json()
            if body.get("status") in {"succeeded", "failed"}:
                return
            self._sleep(0.2)

    @task(1)
    def recall_and_release(self) -> None:
        charge = _charge("released")
        url = f"{API}/charges/{charge['id']}/transitions"
        name = f"POST {API}/charges/{{id}}/transitions"
        with self.client.post(
            url, json={"to": "quarantined", "reason": "load test recall"}, name=name, catch_response=True
        ) as r:
            if r.status_code == 409:  # another engineer got there first: an expected outcome
                r.success()
                return
        with self.client.post(
            url, json={"to": "released", "reason": "load test re-release"}, name=name, catch_response=True
        ) as r:
            if r.status_code == 409:
                r.success()

    def _sleep(self, seconds: float) -> None:
        import gevent

        gevent.sleep(seconds)


if os.environ.get("ERP_LOAD_SPIKE") == "1":
    # Locust runs a shape class whenever the locustfile defines one, so it exists only for spike runs.

    class SpikeShape(LoadTestShape):
        """Base load for a third of the run, three times it for a third, then base load again."""

        use_common_options = True

        def tick(self) -> tuple[int, float] | None:
            options = self.runner.environment.parsed_options if self.runner else None
            base = int(getattr(options, "num_users", 10) or 10)
            total = float(getattr(options, "run_time", 60) or 60)
            run_time = self.get_run_time()
            if run_time >= total:
                return None
            users = base * 3 if total / 3 <= run_time < 2 * total / 3 else base
            return users, float(max(1, users))
