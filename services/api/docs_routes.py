"""Interactive API docs (`/docs`) served from files inside the package, never from a CDN.

FastAPI's default `/docs` page loads Swagger UI from jsDelivr, which fails on the isolated networks
our users run on and leaks every docs visit to a third party. `install_offline_docs` serves the
vendored swagger-ui-dist bundle (Apache-2.0, see docs_assets/swagger-ui/VERSION) instead. Create the
app with `docs_url=None` and call it once.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_ASSETS = Path(__file__).resolve().parent / "docs_assets" / "swagger-ui"
ASSETS_MOUNT = "/docs-assets"
DOCS_PATH = "/docs"


def install_offline_docs(app: FastAPI) -> None:
    """Mount the Swagger UI assets and serve `/docs` pointing at them and at `app.openapi_url`."""
    app.mount(ASSETS_MOUNT, StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url=f"{ASSETS_MOUNT}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_MOUNT}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_MOUNT}/favicon-32x32.png",
        )
