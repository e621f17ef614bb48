"""The Litestar application: routes, error bodies, logging context, OpenAPI, and the checks every
request gets before a handler sees it (no input answers a 500):

- JSON bodies (`SparringRequest.json`): nested at most `MAX_JSON_DEPTH` levels, no NUL character in
  any string or key (Postgres stores none): 400 naming the field.
- Query and path parameters (`check_parameters`): no NUL, integers within 64 bits: 400 naming
  the parameter.
- Every response (`SecurityHeaders`): a self-only Content-Security-Policy, no framing, nosniff,
  a same-origin referrer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send

from gateway.api_docs import OfflineSwaggerPlugin, docs_assets_router
from gateway.auth.caller import provide_caller, provide_db
from gateway.errors import ApiError, ErrorBody, exception_handlers
from gateway.health import health
from gateway.logs import RequestContextMiddleware
from gateway.ratelimit import RateLimitHeaders
from gateway.resources import lifespan
from gateway.routes import (
    accounts,
    chat,
    knowledge,
    live,
    me_data,
    org_sso,
    orgs,
    personas,
    scores,
    sessions,
    sso,
    uploads,
    webrtc,
)
from gateway.sentry import sentry_asgi
from gateway.settings import Settings
from gateway.transports.echo import echo
from gateway.transports.live import live_session
from gateway.transports.watch import watch_session
from gateway.vapi import routes as vapi_routes

__all__ = [
    "CONTENT_SECURITY_POLICY", "MAX_JSON_DEPTH", "WEB_DIR", "SecurityHeaders", "SparringRequest", "check_json",
    "check_parameters", "create_app", "serve_app",
]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_JSON_DEPTH = 64  # far more than any request needs; msgspec itself gives up near 1,000
INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


# --- request checks ----------------------------------------------------------------------------
def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def check_json(value: Any) -> None:
    """Refuses a decoded JSON value nested deeper than `MAX_JSON_DEPTH` or holding a NUL character
    in any string or object key. Iterative: a deep value cannot exhaust the stack here.

    Raises:
        ApiError: 400 `nested_too_deep` or `nul_character`, naming the field.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ApiError(400, "nul_character", "text may not contain NUL (\\u0000) characters",
                               field=where or None)
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ApiError(400, "nested_too_deep", f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep",
                               field=where or None)
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and "\x00" in key:
                        raise ApiError(400, "nul_character", "keys may not contain NUL (\\u0000) characters",
                                       field=_path(where, key.replace("\x00", "")))
                    stack.append((child, _path(where, key), depth + 1))
            else:
                stack.extend((child, _path(where, i), depth + 1) for i, child in enumerate(item))


class SparringRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body (what `data: JSONBody[...]` is decoded from) is checked
    by `check_json`; JSON too deep for the decoder itself is a 400 too, not a RecursionError."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            raise ApiError(400, "nested_too_deep", f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep") \
                from None
        check_json(value)
        return value


async def check_parameters(request: Request[Any, Any, Any]) -> None:
    """Before every HTTP handler: query and path parameters hold no NUL, and integers fit in 64 bits
    (Postgres' bigint), so that no parameter reaches the database as something it refuses.

    Raises:
        ApiError: 400 `invalid_parameter`, naming the parameter.
    """
    params: list[tuple[str, Any]] = list(request.path_params.items())
    if request.scope.get("query_string"):  # most requests have none: no query dict is built for them
        params += request.query_params.multi_items()
    for name, value in params:
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise ApiError(400, "invalid_parameter", f"{name} may not contain NUL characters", field=name)
        digits = value.strip()
        if _INTEGER.fullmatch(digits) and (len(digits.lstrip("+-0")) > 19 or abs(int(digits)) > INT64_MAX):
            raise ApiError(400, "invalid_parameter", f"{name} is out of range (at most {INT64_MAX})", field=name)


# --- OpenAPI: the error answers every operation may give ---------------------------------------
_ERROR_ANSWERS = {
    400: "Bad input: the body or a parameter; `field` names it",
    401: "Not signed in, or the token is invalid or expired",
    403: "Signed in, but not allowed",
    404: "No such resource (or not one the caller may see)",
    409: "Conflicts with what exists (e.g. the email is taken)",
    413: "The request body is too large",
    415: "The body is not in a format the operation takes (e.g. a file that is not audio)",
    429: "Over a rate limit; Retry-After says when to try again",
    503: "Unavailable right now (overloaded, or a dependency is down); try again later",
}
ERROR_RESPONSES = {status: ResponseSpec(data_container=ErrorBody, description=text, generate_examples=False)
                   for status, text in _ERROR_ANSWERS.items()}


def _document_errors(handlers: Sequence[ControllerRouterHandler]) -> None:
    """Declares the error body on every HTTP operation (in one place, instead of per handler);
    a handler's own `responses=` wins."""
    for handler in handlers:
        if isinstance(handler, HTTPRouteHandler):
            handler.responses = {**ERROR_RESPONSES, **(handler.responses or {})}


# --- Security headers on every response --------------------------------------------------------
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI layer adding `_SECURITY_HEADERS` to every HTTP response (pages, API, errors, 404s).
    The API docs at /schema (Swagger UI) load their assets from this app too (`gateway/api_docs.py`):
    the same policy holds there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _SECURITY_HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings, *, extra_routes: Sequence[ControllerRouterHandler] = ()) -> Litestar:
    """Builds the app for `settings`; resources open when it starts (see `gateway.resources`)."""
    route_handlers: list[ControllerRouterHandler] = [
        health,
        accounts.signup, accounts.login, accounts.refresh, accounts.logout, accounts.me,
        orgs.create_invite, orgs.list_members, orgs.update_member, orgs.remove_member, orgs.audit_log,
        orgs.list_invites, orgs.revoke_invite,
        sso.list_providers, sso.sso_login, sso.sso_callback,
        org_sso.get_org_sso, org_sso.put_org_sso, org_sso.claim_domain, org_sso.release_domain,
        me_data.export_data, me_data.delete_account, me_data.curriculum, me_data.complete_curriculum_module,
        personas.list_personas, personas.get_persona, personas.create_persona, personas.update_persona,
        personas.delete_persona, personas.replace_persona,
        sessions.create_session, sessions.list_sessions, sessions.get_session, sessions.list_session_events,
        sessions.delete_session, sessions.recording, sessions.end_own_session,
        scores.get_analytics, scores.get_score, scores.list_scores, scores.score_stream, scores.job_stream,
        scores.rescore, scores.get_progress, scores.team, scores.get_scoring, scores.put_scoring,
        uploads.upload, uploads.transcribe, uploads.list_uploads, uploads.get_upload, uploads.upload_score,
        uploads.fix_speakers, uploads.upload_recording, uploads.delete_upload,
        live.list_live_calls,
        webrtc.webrtc_offer, webrtc.webrtc_config,
        knowledge.create_document, knowledge.list_documents, knowledge.get_document, knowledge.delete_document,
        knowledge.search_knowledge,
        chat.chat, chat.list_conversations, chat.get_conversation, chat.delete_conversation,
        vapi_routes.webhook, vapi_routes.org_webhook, vapi_routes.knowledge_tool, vapi_routes.vapi_llm,
        vapi_routes.get_org_vapi, vapi_routes.put_org_vapi,
        echo, live_session, watch_session,
        *extra_routes,
        docs_assets_router(),
        # The browser app (plain ES modules, no build step): `/` is its page.
        create_static_files_router(path="/", directories=[WEB_DIR], html_mode=True, include_in_schema=False,
                                   name="web"),
    ]
    _document_errors(route_handlers)
    return Litestar(
        route_handlers=route_handlers,
        request_class=SparringRequest,
        before_request=check_parameters,
        # Resolved only for handlers that ask for them: `db` is the caller's tenant transaction.
        dependencies={"db": Provide(provide_db), "caller": Provide(provide_caller)},
        lifespan=[lifespan],
        state=State({"settings": settings}),
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Sparring", version="0.1.0", path="/schema", render_plugins=[OfflineSwaggerPlugin()]
        ),
        logging_config=None,
        debug=False,
    )


def serve_app(app: Litestar) -> ASGIApp:
    """What the server runs: the app inside the request-id, request-log and Sentry layers. They sit
    outside Litestar so that requests Litestar answers before routing (404, 405) count too."""
    return SecurityHeaders(RequestContextMiddleware(sentry_asgi(RateLimitHeaders(app))))
