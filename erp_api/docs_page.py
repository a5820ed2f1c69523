"""The API docs page: Swagger UI at ``/docs``, from the files of the ``swagger-ui-bundle-v2`` package.

Nothing comes from a CDN: the page, Swagger UI's script and style sheet, and the few lines that
start it are served by this app, so the docs work offline and behind a strict proxy. Swagger UI's
files are served under their version (``/docs/static/5.31.0/swagger-ui-bundle.js``) and cached by
browsers for a year; another version is another URL. The page reads ``/openapi.json``.

The app's CSP (``default-src 'none'``) would stop the page from running anything; the docs page
carries its own, as narrow as Swagger UI allows: scripts, styles and requests to this origin only,
images also as ``data:`` URLs (Swagger UI's icons), no framing, no inline script. The security
headers middleware keeps a header a response sets itself.

``/`` redirects to ``/docs``. All of it is public: the schema it shows is public too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from erp_api.errors import NotFound
from erp_api.security.access import Endpoint
from erp_api.security.roles import PUBLIC

DOCS_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# Swagger UI's files that the page uses, and their types.
SWAGGER_UI_FILES: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# Starts Swagger UI on the page: a file of its own, since the CSP allows no inline script.
START_SCRIPT_NAME: Final = "start.js"
START_SCRIPT: Final = """\
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.documentElement.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
  });
});
"""
PAGE_STYLE_NAME: Final = "page.css"
PAGE_STYLE: Final = "body { margin: 0; background: #fafafa; }\n"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class SwaggerUi:
    version: str
    assets: dict[str, Asset]


@cache
def swagger_ui() -> SwaggerUi:
    """Swagger UI's version and the files the page loads, read once from the package."""
    vendor = files("swagger_ui_bundle").joinpath("vendor")
    (directory,) = (entry for entry in vendor.iterdir() if entry.name.startswith("swagger-ui-"))
    assets = {
        name: Asset(directory.joinpath(name).read_bytes(), kind) for name, kind in SWAGGER_UI_FILES.items()
    }
    assets[START_SCRIPT_NAME] = Asset(START_SCRIPT.encode(), "text/javascript; charset=utf-8")
    assets[PAGE_STYLE_NAME] = Asset(PAGE_STYLE.encode(), "text/css; charset=utf-8")
    return SwaggerUi(directory.name.removeprefix("swagger-ui-"), assets)


def docs_html(root_path: str) -> str:
    """The page, its links under ``root_path`` (where the app is mounted behind a proxy)."""
    static = f"{root_path}/docs/static/{swagger_ui().version}"
    return f"""\
<!DOCTYPE html>
<html lang="en" data-openapi-url="{root_path}/openapi.json">
<head>
<meta charset="utf-8">
<title>erp-api - API docs</title>
<link rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="stylesheet" href="{static}/{PAGE_STYLE_NAME}">
<link rel="icon" type="image/png" href="{static}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{static}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/{START_SCRIPT_NAME}"></script>
</body>
</html>
"""


async def docs_page(request: Request) -> Response:
    return Response(
        docs_html(request.scope.get("root_path", "")),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


async def docs_asset(request: Request) -> Response:
    bundle = swagger_ui()
    asset = bundle.assets.get(request.path_params["asset"])
    if request.path_params["version"] != bundle.version or asset is None:
        raise NotFound(f"no docs file at {request.url.path}")
    return Response(asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE})


async def to_docs(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/docs", status_code=307)


routes = [
    Endpoint("/", to_docs, "GET", PUBLIC, include_in_schema=False),
    Endpoint("/docs", docs_page, "GET", PUBLIC, include_in_schema=False),
    Endpoint("/docs/static/{version}/{asset}", docs_asset, "GET", PUBLIC, include_in_schema=False),
]
