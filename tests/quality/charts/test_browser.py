"""The chart pictures as a person sees them: a real server, a real headless Chromium opening the SVG
URLs directly (under the API's Content-Security-Policy), and the screenshots checked pixel by pixel.

Chromium draws an SVG document at its own size from the top-left corner, one pixel per unit, so a
violation marker's centre in the SVG is the pixel to look at in the screenshot.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from matplotlib.image import imread

from erp_api.http import API_PREFIX
from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import running_server
from tests.services import REQUIRE_SERVICES

pytestmark = pytest.mark.slow

RED = (214, 39, 40)  # violation markers (#d62728)
BAR = (174, 199, 232)  # histogram bars (#aec7e8)
ORANGE = (255, 127, 14)  # the normal curve with sigma within (#ff7f0e)
SHIFTED_CHARGE = 20
_MARKER = re.compile(
    r'<g class="violation" data-rules="([^"]+)"><title>[^<]*</title><circle cx="([\d.]+)" cy="([\d.]+)"'
)
Image = npt.NDArray[np.uint8]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not installed (Debian: apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason}, and ERP_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
        pytest.skip(reason)
    return path


def screenshot(url: str, directory: Path, name: str) -> Image:
    """The page at ``url`` as headless Chromium renders it in a 1200 x 800 window, as RGB bytes."""
    png = directory / f"{name}.png"
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={directory / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1200,800",
        url,
    ]
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0 and png.exists(), result.stderr.decode(errors="replace")[-2000:]
    pixels = np.asarray(imread(png))[:, :, :3]
    return np.rint(pixels * 255).astype(np.uint8)


def close_to(image: Image, colour: tuple[int, int, int], tolerance: int = 12) -> npt.NDArray[np.bool_]:
    return (np.abs(image.astype(np.int16) - np.array(colour, dtype=np.int16)) <= tolerance).all(axis=2)


def share(mask: npt.NDArray[np.bool_]) -> float:
    return float(mask.mean())


def seed(http: httpx.Client) -> None:
    """A spec, and 30 charges of 5 values around 10 each; one charge is shifted by 8 sigma."""
    response = http.put(
        "/quality/specs/PUMP-A/diameter_mm", json={"unit": "mm", "lsl": 9.0, "usl": 11.0, "target": 10.0}
    )
    assert response.status_code == 201, response.text
    rng = random.Random(20261130)
    for serial in range(1, 31):
        charge = {
            "charge_number": f"C-{serial:03d}",
            "product_sku": "PUMP-A",
            "quantity": "1",
            "unit": "pcs",
            "line": "L1",
            "produced_at": f"2026-03-{serial:02d}T06:00:00Z",
        }
        created = http.post("/charges", json=charge)
        assert created.status_code == 201, created.text
        shift = 0.8 if serial == SHIFTED_CHARGE else 0.0
        items = [
            {
                "parameter": "diameter_mm",
                "value": round(10.0 + shift + rng.gauss(0, 0.1), 4),
                "measured_at": f"2026-03-{serial:02d}T07:{minute:02d}:00Z",
            }
            for minute in range(5)
        ]
        stored = http.post(f"/charges/{created.json()['id']}/measurements", json={"items": items})
        assert stored.status_code == 201, stored.text


def test_both_pictures_render_in_a_real_browser(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
    upgrade(load_settings(database_url=database))
    env = {
        "ERP_DATABASE_URL": database,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_CACHE_BACKEND": "memory",
        "ERP_ACCESS_LOG": "false",
        "ERP_AUTH_ENABLED": "false",
    }
    chart_path = "/quality/control-chart.svg?product_sku=PUMP-A&parameter=diameter_mm&chart=xbar_r"
    capability_path = "/quality/capability.svg?product_sku=PUMP-A&parameter=diameter_mm"
    with running_server(env) as server:
        api = f"{server.base_url}{API_PREFIX}"
        with httpx.Client(base_url=api, timeout=10) as http:
            seed(http)
            svg = http.get(chart_path)
            assert svg.headers["content-type"] == "image/svg+xml"
            assert "style-src 'sha256-" in svg.headers["content-security-policy"]
        chart = screenshot(api + chart_path, tmp_path, "chart")
        capability = screenshot(api + capability_path, tmp_path, "capability")

    # The shifted charge breaks N1 on the X-bar chart; every marker is drawn red where the SVG puts it.
    markers = [(rules, float(x), float(y)) for rules, x, y in _MARKER.findall(svg.text)]
    assert any(rules.split(",")[0] == "N1" for rules, _, _ in markers)
    red = close_to(chart, RED)
    for rules, x, y in markers:
        column, row = round(x), round(y)
        assert red[row - 1 : row + 2, column - 1 : column + 2].all(), f"no red marker for {rules} at {x}, {y}"

    for image in (chart, capability):
        white = close_to(image, (255, 255, 255), tolerance=3)
        assert 0.02 < 1 - share(white) < 0.5  # a drawing, neither blank nor a filled page
        # Without its style sheet (blocked by a CSP) an SVG paints its frames and bars solid black.
        assert share(close_to(image, (0, 0, 0), tolerance=40)) < 0.01
    assert share(close_to(capability, BAR)) > 0.002
    assert close_to(capability, ORANGE, tolerance=30).sum() > 20
