"""The API docs at `/schema`: Swagger UI 5 (it reads OpenAPI 3.1) from the `swagger-ui-bundle-v2`
package, served by this app (no CDN: the page works self-hosted and offline), under the same strict
Content-Security-Policy as every page: no inline script or style, every asset from this origin."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped]
from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

__all__ = ["ASSETS_PATH", "SWAGGER_DIR", "OfflineSwaggerPlugin", "docs_assets_router"]

SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS_PATH = "/schema-assets"  # Swagger UI's dist files, as the package ships them
INIT_SCRIPT = "/api-docs.js"  # web/api-docs.js: starts Swagger UI on the page's OpenAPI JSON


class OfflineSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI whose script, styles and start-up all come from this app."""

    def __init__(self, *, path: str = "/swagger") -> None:
        super().__init__(path=path, favicon='<link rel="icon" href="/favicon.svg" type="image/svg+xml">', style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec = escape(self.get_openapi_json_route(request), quote=True)
        return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  {self.favicon}
  <link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-spec="{spec}"><noscript>The API docs need JavaScript; the schema itself is at
    <a href="{spec}">{spec}</a>.</noscript></div>
  <script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{INIT_SCRIPT}"></script>
</body>
</html>""".encode()


def docs_assets_router() -> Router:
    return create_static_files_router(path=ASSETS_PATH, directories=[SWAGGER_DIR], include_in_schema=False,
                                      name="schema-assets")
