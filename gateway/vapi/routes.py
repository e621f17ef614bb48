"""VAPI's HTTP surface: webhooks (per platform or per organization), the knowledge-base tool,
the custom LLM, and an organization's VAPI settings. Thin: verification in `auth`, decoding in
`messages`, the work in `calls`."""

from __future__ import annotations

import hmac
import logging
import uuid
from typing import Annotated, Literal

import asyncpg
import msgspec
from litestar import Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from coaching.events import Decoder
from gateway.auth.caller import CallerDep, TenantDb, require_role
from gateway.errors import ApiError
from gateway.ratelimit import client_address, limit_request
from gateway.settings import Settings
from gateway.vapi import messages as m
from gateway.vapi.auth import AuthFailed, HmacScheme, WebhookAuth, parse_mode, verify
from gateway.vapi.llm import ChatRequest, history_of, sse_chunks, whole_completion
from storage import sessions
from storage import vapi as store
from storage.tenancy import Tenant, tenant_tx

__all__ = ["get_org_vapi", "knowledge_tool", "org_webhook", "put_org_vapi", "vapi_llm", "webhook"]

_chat_request: Decoder[ChatRequest] = Decoder(ChatRequest)

log = logging.getLogger(__name__)


def hmac_scheme(settings: Settings) -> HmacScheme:
    return HmacScheme(signature_header=settings.vapi_hmac_signature_header.lower(),
                      timestamp_header=settings.vapi_hmac_timestamp_header.lower(), prefix=settings.vapi_hmac_prefix,
                      payload=settings.vapi_hmac_payload, algorithm=settings.vapi_hmac_algorithm,
                      encoding=settings.vapi_hmac_encoding)


async def _auth_for(state: State, org_id: uuid.UUID | None) -> WebhookAuth:
    settings: Settings = state.settings
    if org_id is None:
        return WebhookAuth(mode=settings.vapi_webhook_auth, secret=settings.vapi_webhook_secret,
                           hmac=hmac_scheme(settings))
    async with tenant_tx(state.pool, Tenant(org_id=org_id, role="system")) as conn:
        own = await store.get_org_vapi(conn, org_id)
    mode = parse_mode(own.auth_mode)
    if mode == "none" and not settings.vapi_allow_unsigned_org_webhooks:
        raise AuthFailed("this organization's endpoint is set to auth_mode none, which this server does not allow"
                         " (VAPI_ALLOW_UNSIGNED_ORG_WEBHOOKS)")
    return WebhookAuth(mode=mode, secret=own.secret, hmac=hmac_scheme(settings))


async def _verified(request: Request, state: State, org_id: uuid.UUID | None) -> bytes:
    """The raw body, once it is verified (before anything decodes it). Only deliveries that fail
    verification count against the source address's limit (RATE_LIMIT_WEBHOOK): guessing and junk
    are limited, while VAPI's own deliveries, which all come from a few addresses at whatever rate
    its calls make, are never refused by it and skip the limiter's round trip.

    Raises:
        ApiError: 401 naming the check that failed; 429 once an address's failures pass the limit.
    """
    body = await request.body()
    try:
        verify(await _auth_for(state, org_id), request.headers, body)
    except AuthFailed as failed:
        log.warning("VAPI delivery refused", extra={"reason": str(failed), "org_id": str(org_id) if org_id else None})
        await limit_request(request, "webhook", client_address(request))
        raise ApiError(401, "webhook_unverified", str(failed)) from None
    return body


async def _message(request: Request, state: State, org_id: uuid.UUID | None) -> tuple[m.Message, bytes]:
    """The verified delivery, decoded, NUL characters stripped (`messages.without_nul`) as on the
    socket path.

    Raises:
        ApiError: 401 (verification), 429 (rate limit), 400 (not a VAPI message).
    """
    body = m.without_nul(await _verified(request, state, org_id))  # kept in the inbox: no NUL there either
    try:
        return m.decode_message(body), body
    except m.NotVapiMessage as exc:
        raise ApiError(400, "not_a_vapi_message", str(exc)[:300]) from None


async def _handle(request: Request, state: State, org_id: uuid.UUID | None) -> Response:
    message, body = await _message(request, state, org_id)
    return Response(await state.vapi.handle(message, body, org_id), status_code=200)


@post("/api/vapi/webhook", tags=["vapi"], status_code=200,
      summary="VAPI server messages (VAPI_WEBHOOK_SECRET, VAPI_DEFAULT_ORG_ID)")
async def webhook(request: Request, state: State) -> Response:
    return await _handle(request, state, None)


@post("/api/vapi/webhook/{org_id:uuid}", tags=["vapi"], status_code=200,
      summary="VAPI server messages for one organization")
async def org_webhook(request: Request, state: State, org_id: FromPath[uuid.UUID]) -> Response:
    return await _handle(request, state, org_id)


@post("/api/vapi/tools/knowledge-base", tags=["vapi"], status_code=200,
      summary="VAPI tool calls: the knowledge_base function")
async def knowledge_tool(request: Request, state: State) -> Response:
    message, body = await _message(request, state, None)
    if not isinstance(message, (m.ToolCalls, m.FunctionCall)):
        raise ApiError(400, "not_a_tool_call", f"this endpoint takes tool-calls messages, not {message.type}")
    return Response(await state.vapi.handle(message, body, None), status_code=200)


@post(["/api/vapi/llm/chat/completions", "/api/vapi/llm/{rest:path}"], tags=["vapi"], status_code=200,
      summary="Custom LLM for VAPI: the persona brain, OpenAI-compatible, streamed as SSE")
async def vapi_llm(request: Request, state: State) -> Response | Stream:
    settings: Settings = state.settings
    if not request.url.path.rstrip("/").endswith("/chat/completions"):
        raise ApiError(404, "not_found", "the custom LLM answers on .../chat/completions")
    key = settings.vapi_llm_api_key
    given = request.headers.get("authorization", "")
    if not key:
        raise ApiError(401, "unauthorized", "the custom LLM is not enabled (set VAPI_LLM_API_KEY)")
    if not given.lower().startswith("bearer ") or not hmac.compare_digest(given[7:].strip().encode(), key.encode()):
        raise ApiError(401, "unauthorized", "a valid Authorization: Bearer key is required")
    try:
        chat = _chat_request.decode(await request.body())
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ApiError(400, "bad_request", f"not a chat-completions request: {exc}"[:300]) from None
    persona = state.vapi.default_persona
    if (session_id := state.vapi.claimed_session(chat.session_ref())) is not None:
        async with state.pool.acquire() as conn:
            found = await store.find_session(conn, session_id, None)
        if found is not None:
            async with tenant_tx(state.pool, Tenant(org_id=found.org_id, role="system")) as conn:
                row = await sessions.get_session(conn, found.id)
            if row is not None:
                persona = state.vapi.persona_for_session(row)
    elif chat.model in state.personas:
        persona = state.personas[chat.model]
    brain = state.call_services.brain
    history = history_of(chat)
    if chat.stream:
        return Stream(sse_chunks(brain, persona, history, chat.model), media_type="text/event-stream",
                      headers={"Cache-Control": "no-cache"})
    return Response(await whole_completion(brain, persona, history, chat.model), status_code=200)


# --- an organization's VAPI settings ---------------------------------------------------------

AuthMode = Literal["auto", "hmac", "secret", "bearer", "legacy", "none"]


class OrgVapiOut(msgspec.Struct):
    webhook_url: str
    auth_mode: AuthMode
    secret_set: bool
    default_persona_id: str | None
    phone_numbers: dict[str, str]
    unsigned_allowed: bool  # whether auth_mode none may be set (VAPI_ALLOW_UNSIGNED_ORG_WEBHOOKS)


class OrgVapiIn(msgspec.Struct, forbid_unknown_fields=True):
    auth_mode: AuthMode = "auto"
    webhook_secret: Annotated[str, msgspec.Meta(min_length=16, max_length=512)] | None = None  # None: unchanged
    default_persona_id: Annotated[str, msgspec.Meta(max_length=80)] | None = None
    phone_numbers: dict[Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{5,20}$")], str] = {}


def _org_out(state: State, org_id: uuid.UUID, own: store.VapiOrgSettings) -> OrgVapiOut:
    base = state.settings.site_url or ""
    return OrgVapiOut(webhook_url=f"{base}/api/vapi/webhook/{org_id}", auth_mode=parse_mode(own.auth_mode),
                      secret_set=bool(own.secret), default_persona_id=own.default_persona_id,
                      phone_numbers=own.phone_numbers,
                      unsigned_allowed=state.settings.vapi_allow_unsigned_org_webhooks)


@get("/api/orgs/vapi", tags=["vapi"], summary="The organization's VAPI settings (admin; the secret is write-only)")
async def get_org_vapi(state: State, caller: CallerDep, db: TenantDb) -> OrgVapiOut:
    require_role(caller, "admin")
    return _org_out(state, caller.org_id, await store.get_org_vapi(db, caller.org_id))


@put("/api/orgs/vapi", tags=["vapi"], summary="Replace the organization's VAPI settings (admin)")
async def put_org_vapi(state: State, caller: CallerDep, db: TenantDb, data: JSONBody[OrgVapiIn]) -> OrgVapiOut:
    require_role(caller, "admin")
    if data.auth_mode == "none" and not state.settings.vapi_allow_unsigned_org_webhooks:
        raise ApiError(400, "unsigned_not_allowed", "auth_mode none would let anyone on the network create calls in"
                       " this organization; this server does not allow it (VAPI_ALLOW_UNSIGNED_ORG_WEBHOOKS)",
                       field="auth_mode")
    known = set(state.personas)
    for field, persona in [("default_persona_id", data.default_persona_id),
                           *((f"phone_numbers.{n}", p) for n, p in data.phone_numbers.items())]:
        if persona is not None and persona not in known:
            raise ApiError(400, "unknown_persona", f"there is no persona {persona!r}", field=field)
    try:
        await store.put_org_vapi(db, caller.org_id, auth_mode=data.auth_mode, secret=data.webhook_secret,
                                 keep_secret=data.webhook_secret is None, default_persona_id=data.default_persona_id,
                                 phone_numbers=data.phone_numbers)
    except asyncpg.UniqueViolationError:
        raise ApiError(409, "phone_number_taken", "one of these phone numbers belongs to another organization",
                       field="phone_numbers") from None
    return _org_out(state, caller.org_id, await store.get_org_vapi(db, caller.org_id))

