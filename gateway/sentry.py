"""Error reporting through sentry-sdk when SENTRY_DSN is set, scrubbed of bodies and credentials."""

from __future__ import annotations

from collections.abc import Callable

import sentry_sdk
from litestar.types import ASGIApp
from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
from sentry_sdk.integrations.litestar import LitestarIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.transport import Transport
from sentry_sdk.types import Event, Hint, SamplingContext

from gateway.settings import Settings

__all__ = ["init_sentry", "scrub_event", "sentry_asgi"]

_DENY = [*DEFAULT_DENYLIST, "token", "access_token", "refresh_token", "jwt", "transcript", "text", "audio"]
_SENSITIVE_HEADERS = {"authorization", "cookie", "set-cookie", "x-vapi-secret", "x-vapi-signature", "x-signature"}


def scrub_event(event: Event, _hint: Hint | None = None) -> Event:
    """Drops request bodies, query strings (tokens travel there on WebSockets), cookies and auth headers."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        if request.get("query_string"):
            request["query_string"] = "[Filtered]"
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.split("?", 1)[0]
        headers = request.get("headers")
        if isinstance(headers, dict):
            for key in list(headers):
                if key.lower() in _SENSITIVE_HEADERS:
                    headers[key] = "[Filtered]"
    return event


def _traces_sampler(rate: float) -> Callable[[SamplingContext], float]:
    def sample(context: SamplingContext) -> float:
        scope = context.get("asgi_scope") or {}
        # A WebSocket transaction lives as long as the call: sample those far less.
        return rate / 10 if scope.get("type") == "websocket" else rate

    return sample


def init_sentry(settings: Settings, *, transport: Transport | None = None) -> bool:
    """Initialises Sentry when a DSN (or, in tests, a transport) is given; returns whether it did."""
    if not settings.sentry_dsn and transport is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        transport=transport,
        environment=settings.sentry_environment,
        traces_sampler=_traces_sampler(settings.sentry_traces_sample_rate),
        max_request_body_size="never",
        # The Litestar integration parses every request body before the handler runs and turns
        # malformed JSON into a 500; we report from our own error handler and trace at the ASGI
        # layer instead, which never reads bodies.
        disabled_integrations=[LitestarIntegration()],
        event_scrubber=EventScrubber(denylist=_DENY, recursive=True),
        # Frame locals hold ASGI scopes (headers as byte pairs a denylist cannot see), transcripts
        # and audio: stack traces go without them.
        include_local_variables=False,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
    )
    return True


def sentry_asgi(app: ASGIApp) -> ASGIApp:
    """Traces requests and WebSockets at the ASGI layer, when Sentry is initialised (call
    `init_sentry` first); without it every request would still pay for the middleware."""
    if not sentry_sdk.get_client().is_active():
        return app
    return SentryAsgiMiddleware(app, transaction_style="url", span_origin="auto.http.sparring")
