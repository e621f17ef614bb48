"""The Litestar application: routes, error bodies, logging context, OpenAPI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler

from gateway.auth.caller import provide_caller, provide_db
from gateway.errors import exception_handlers
from gateway.health import health
from gateway.logs import RequestContextMiddleware
from gateway.ratelimit import RateLimitHeaders
from gateway.resources import lifespan
from gateway.routes import accounts, live, me_data, orgs, personas, sessions
from gateway.sentry import sentry_asgi
from gateway.settings import Settings
from gateway.transports.echo import echo
from gateway.transports.live import live_session
from gateway.transports.watch import watch_session
from gateway.vapi import routes as vapi_routes

__all__ = ["WEB_DIR", "create_app", "serve_app"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings, *, extra_routes: Sequence[ControllerRouterHandler] = ()) -> Litestar:
    """Builds the app for `settings`; resources open when it starts (see `gateway.resources`)."""
    return Litestar(
        route_handlers=[
            health,
            accounts.signup, accounts.login, accounts.refresh, accounts.logout, accounts.me,
            orgs.create_invite, orgs.list_members, orgs.update_member, orgs.remove_member, orgs.audit_log,
            me_data.export_data, me_data.delete_account, me_data.curriculum, me_data.complete_curriculum_module,
            personas.list_personas, personas.get_persona, personas.create_persona, personas.update_persona,
            personas.delete_persona,
            sessions.create_session, sessions.list_sessions, sessions.get_session, sessions.list_session_events,
            sessions.delete_session, sessions.recording,
            live.list_live_calls,
            vapi_routes.webhook, vapi_routes.org_webhook, vapi_routes.knowledge_tool, vapi_routes.vapi_llm,
            vapi_routes.get_org_vapi, vapi_routes.put_org_vapi,
            echo, live_session, watch_session,
            *extra_routes,
            # The browser app (plain ES modules, no build step): `/` is its page.
            create_static_files_router(path="/", directories=[WEB_DIR], html_mode=True, include_in_schema=False,
                                       name="web"),
        ],
        # Resolved only for handlers that ask for them: `db` is the caller's tenant transaction.
        dependencies={"db": Provide(provide_db), "caller": Provide(provide_caller)},
        lifespan=[lifespan],
        state=State({"settings": settings}),
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Sparring", version="0.1.0", path="/schema", render_plugins=[ScalarRenderPlugin()]
        ),
        logging_config=None,
        debug=False,
    )


def serve_app(app: Litestar) -> ASGIApp:
    """What the server runs: the app inside the request-id, request-log and Sentry layers. They sit
    outside Litestar so that requests Litestar answers before routing (404, 405) count too."""
    return RequestContextMiddleware(sentry_asgi(RateLimitHeaders(app)))
