"""VAPI calls become Sparring sessions: each webhook is kept in the inbox (deduplicated on the
message's own identity), then turned into the same session events browser calls produce,
numbered in Postgres (one webhook at a time per session, under the session's row lock) and
published on the bus, so coaches watch VAPI calls with the same socket and hints run on them.
"""

from __future__ import annotations

import functools
import hmac
import logging
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec

from coaching.events import PROTOCOL_VERSION, AudioFormat, Event, Sender, SessionEnded, SessionStarted, Whisper
from coaching.hints import HintOptions
from coaching.persona import Persona, PersonaFileError, parse_persona
from coaching.session_log import LogEntry, SessionLog
from gateway.calls.live_list import live_entry
from gateway.fanout.coordinator import Coordinator
from gateway.knowledge.service import KnowledgeBase
from gateway.vapi import messages as m
from gateway.vapi.assistant import session_token, transient_assistant
from gateway.vapi.batches import Batches
from gateway.vapi.tools import answer_tool_calls
from gateway.vapi.translate import (
    ROLES,
    control_url,
    dedupe_key,
    events_for,
    report_duration_s,
    report_finals,
    report_summary,
    since_ms,
)
from storage import sessions
from storage import vapi as store
from storage.database import acquire
from storage.tenancy import Tenant, savepoint, set_tenant, tenant_tx

__all__ = ["VapiCalls"]

log = logging.getLogger(__name__)
_CACHED_LOGS = 10_000
# Batches per organization and endpoint that run at once (gateway/vapi/batches.py): more lanes,
# less waiting behind one batch; fewer, larger batches (bench/vapi_ingest.py: 4 against 8, the
# same throughput for less Postgres CPU).
_LANES = 4


class _Delivery(msgspec.Struct, frozen=True):
    """A verified webhook waiting for its call's next batch."""
    message: m.Message
    body: bytes
    found: store.FoundSession


class VapiCalls:
    """Args:
        pool: the app pool.
        coordinator: the bus (watchers) and presence (GET /api/live).
        personas: the built-in personas.
        hint_options: live-hint thresholds.
        default_org_id: where calls no session claims go (VAPI_DEFAULT_ORG_ID).
        default_persona_id: the persona when neither a phone number nor the org names one.
        site_url: the public URL (the custom LLM and tool URLs in assistant configs).
        presence_ttl_s: how long a VAPI call stays in the live list without a webhook.
        http: for the call's controlUrl (coach steering), or None to not steer.
        secret: signs the session ids handed out for VAPI calls (the JWT secret).
        control_hosts: the hosts a controlUrl may point at.
    """

    def __init__(self, *, pool: asyncpg.Pool, coordinator: Coordinator, personas: dict[str, Persona],
                 hint_options: HintOptions, default_org_id: uuid.UUID | None, default_persona_id: str | None,
                 site_url: str | None, presence_ttl_s: float, http: httpx.AsyncClient | None,
                 secret: str, knowledge: KnowledgeBase, control_hosts: tuple[str, ...] = ("vapi.ai",)) -> None:
        self._pool, self._coordinator, self._personas = pool, coordinator, personas
        self._knowledge = knowledge
        self._hints, self._default_org = hint_options, default_org_id
        self._default_persona = default_persona_id if default_persona_id in personas else next(iter(personas))
        self._site_url, self._ttl_ms, self._http = site_url, int(presence_ttl_s * 1000), http
        self._control_hosts, self._secret = control_hosts, secret
        # The token each session's webhooks carry, kept: a busy call's webhooks skip the HMAC.
        self._token_for = functools.lru_cache(maxsize=_CACHED_LOGS)(
            lambda session_id: session_token(secret, str(session_id)).encode())
        self._logs: dict[uuid.UUID, SessionLog] = {}  # the session logs of calls this instance saw last
        # Sessions found by the id and token a call carries, per endpoint (see _known_session).
        self._found: dict[tuple[uuid.UUID, uuid.UUID | None], store.FoundSession] = {}
        self._batches: Batches[tuple[uuid.UUID, uuid.UUID | None, int], _Delivery] = Batches(self._apply_batch)

    # --- entry point ----------------------------------------------------------------------------

    async def handle(self, message: m.Message, body: bytes, org_id: uuid.UUID | None) -> m.Reply:
        """Keeps and applies one verified delivery; returns VAPI's answer."""
        if isinstance(message, m.AssistantRequest):
            return await self._assistant_request(message, body, org_id)
        tool_call = isinstance(message, m.ToolCalls | m.FunctionCall)
        found = self._known_session(message, org_id)
        if found is None:
            async with acquire(self._pool) as conn:
                found = await self._session_for(conn, message, org_id)
        if found is not None and not tool_call:
            # Kept and applied with whatever else of this org's calls is waiting in its lane, in one transaction.
            lane = found.id.int % _LANES  # a call's deliveries always take the same lane: applied in order
            await self._batches.submit((found.org_id, org_id, lane), _Delivery(message, body, found))
            return m.Accepted()
        target_org = found.org_id if found else (org_id or self._default_org)
        async with self._tx(target_org) as conn:
            await store.keep_delivery(conn, target_org, dedupe_key(message), message.type.split("[", 1)[0], body,
                                      endpoint_org=org_id)
        if isinstance(message, m.ToolCalls | m.FunctionCall):
            # Answered again on a re-delivery.
            return await answer_tool_calls(self._pool, self._knowledge, message, target_org)
        return m.Accepted()

    async def _apply_batch(self, key: tuple[uuid.UUID, uuid.UUID | None, int],
                           batch: list[_Delivery]) -> list[BaseException | None]:
        """The waiting deliveries of one org's calls (from one endpoint), in one transaction: kept
        in the inbox, each call's applied in order under one lock of its session, their events
        stored together and published in one round trip. A batch that fails is retried one delivery at a
        time, so only the delivery at fault fails."""
        try:
            await self._apply_together(key[1], batch)
            return [None] * len(batch)
        except Exception as exc:
            for delivery in batch:
                self._found.pop((delivery.found.id, key[1]), None)  # looked up afresh (the session may be gone)
            if len(batch) == 1:
                return [exc]
        failures: list[BaseException | None] = []
        for delivery in batch:
            try:
                await self._apply_together(key[1], [delivery])
                failures.append(None)
            except Exception as exc:
                failures.append(exc)
        return failures

    async def _apply_together(self, endpoint_org: uuid.UUID | None, batch: list[_Delivery]) -> None:
        org = batch[0].found.org_id
        calls: dict[uuid.UUID, list[_Delivery]] = {}
        entries: dict[uuid.UUID, list[LogEntry]] = {}
        async with self._tx(org) as conn:
            fresh = await store.keep_deliveries(conn, org, [
                (dedupe_key(d.message), d.message.type.split("[", 1)[0], d.body) for d in batch],
                endpoint_org=endpoint_org)
            for delivery, new in zip(batch, fresh, strict=True):
                if new:
                    calls.setdefault(delivery.found.id, []).append(delivery)
            if calls:
                locked = await store.lock_sessions(conn, list(calls))
                pending: list[tuple[store.LockedSession, list[LogEntry]]] = []
                for session_id in sorted(calls):
                    await self._bind_call_id(conn, calls[session_id], endpoint_org)
                    stored, waiting, after = await self._apply(conn, [d.message for d in calls[session_id]],
                                                               session_id, locked.get(session_id))
                    entries[session_id] = stored + waiting
                    if after is not None:
                        pending.append((after, waiting))
                await self._store_all(conn, org, pending)
        await self._publish(org, entries)

    async def _bind_call_id(self, conn: asyncpg.Connection, deliveries: list[_Delivery],
                            endpoint_org: uuid.UUID | None) -> None:
        """Records the VAPI call id on the session the first time one of its deliveries carries it."""
        found = deliveries[0].found
        call_id = next((d.message.call_id for d in deliveries if d.message.call_id), None)
        if call_id and all(d.found.call_id is None for d in deliveries):
            await store.set_call_id(conn, found.id, call_id, platform=endpoint_org is None)
            if (found.id, endpoint_org) in self._found:
                self._found[found.id, endpoint_org] = msgspec.structs.replace(found, call_id=call_id)

    @staticmethod
    def _tenant(org_id: uuid.UUID | None) -> Tenant:
        return Tenant(org_id=org_id, role="system") if org_id else Tenant(org_id=None, role="platform")

    def _tx(self, org_id: uuid.UUID | None) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return tenant_tx(self._pool, self._tenant(org_id))

    async def _session_for(self, conn: asyncpg.Connection, message: m.Message,
                           org_id: uuid.UUID | None) -> store.FoundSession | None:
        """The message's session: by the id the browser passed, else by a call id the same endpoint
        bound before, else a new session in the endpoint's (or the default) org. None: nobody to
        give it to. A delivery an org's endpoint verified never reaches another org's session, and
        a call id an org's endpoint bound is never found from the platform's."""
        claimed = self.claimed_session(message.call.session_ref() if message.call else None)
        found = await store.find_session(conn, claimed, message.call_id, endpoint_org=org_id)
        if found is not None and org_id is not None and found.org_id != org_id:
            found = None  # an org's secret never writes into another org's session
        if found is not None:
            if found.id == claimed:
                self._remember(found, org_id)
            return found
        org = org_id or self._default_org
        if org is None or message.call_id is None or isinstance(message, m.ToolCalls | m.FunctionCall):
            return None
        try:
            async with conn.transaction():
                await set_tenant(conn, self._tenant(org))
                persona_id = await self._persona_for(conn, org, message.phone_number)
                created = await self._create_session(conn, org, persona_id, message.call_id,
                                                     platform=org_id is None)
        except asyncpg.UniqueViolationError:
            # Another delivery of this call created its session first (or the org's own endpoint
            # bound this call id): use what is there, within the endpoint's bounds.
            found = await store.find_session(conn, None, message.call_id, endpoint_org=org_id)
            return found if found is not None and found.org_id == org else None
        return store.FoundSession(created, org, message.call_id) if created else None

    def _known_session(self, message: m.Message, org_id: uuid.UUID | None) -> store.FoundSession | None:
        """The session a message names with its token, as this endpoint found it before: a
        session's org never changes, so a busy call's webhooks skip the lookup."""
        claimed = self.claimed_session(message.call.session_ref() if message.call else None)
        return self._found.get((claimed, org_id)) if claimed is not None else None

    def _remember(self, found: store.FoundSession, org_id: uuid.UUID | None) -> None:
        self._found[found.id, org_id] = found
        while len(self._found) > _CACHED_LOGS:
            self._found.pop(next(iter(self._found)))

    def claimed_session(self, ref: tuple[uuid.UUID, str] | None) -> uuid.UUID | None:
        """The session a call names, if it carries the token Sparring gave out with it."""
        if ref is None:
            return None
        session_id, token = ref
        return session_id if hmac.compare_digest(token.encode(), self._token_for(session_id)) else None

    async def _persona_for(self, conn: asyncpg.Connection, org: uuid.UUID, number: str | None) -> str:
        settings = await store.get_org_vapi(conn, org)
        for candidate in (settings.phone_numbers.get(number or ""), settings.default_persona_id):
            if candidate in self._personas:
                return candidate
        return self._default_persona

    async def _create_session(self, conn: asyncpg.Connection, org: uuid.UUID, persona_id: str,
                              call_id: str | None, *, platform: bool) -> uuid.UUID | None:
        """A session for a call nobody started, owned by the org's first admin and marked so
        (it never counts against that admin's live-call limit)."""
        owner = await store.first_admin(conn, org)
        if owner is None:
            log.warning("a VAPI call for an organization without members was kept but not mapped")
            return None
        row = await sessions.create_session(conn, org_id=org, user_id=owner, persona_id=persona_id,
                                           persona_snapshot=self._personas[persona_id].to_dict(), transport="vapi")
        await store.mark_webhook_created(conn, row.id)
        if call_id:
            await store.set_call_id(conn, row.id, call_id, platform=platform)
        return row.id

    # --- the messages ---------------------------------------------------------------------------

    async def _apply(self, conn: asyncpg.Connection, messages: list[m.Message], session_id: uuid.UUID,
                     locked: store.LockedSession | None,
                     ) -> tuple[list[LogEntry], list[LogEntry], store.LockedSession | None]:
        """Applies fresh deliveries of one call in order; the caller holds its session's lock
        (`locked`, None: the session is gone). Returns the entries stored already (what came
        before an end-of-call report, which reads the stored transcript), the entries still to
        store, and the session as it stands after them."""
        if locked is None:
            for key in [k for k in self._found if k[0] == session_id]:
                del self._found[key]  # deleted: the next webhook looks it up again
            return [], [], None
        stored: list[LogEntry] = []
        pending: list[LogEntry] = []
        for message in messages:
            if isinstance(message, m.EndOfCallReport) and pending:
                await self._store_all(conn, locked.org_id, [(locked, pending)])
                stored, pending = stored + pending, []
            entries, locked = await self._apply_one(conn, message, locked)
            pending += entries
        return stored, pending, locked

    async def _apply_one(self, conn: asyncpg.Connection, message: m.Message,
                         locked: store.LockedSession) -> tuple[list[LogEntry], store.LockedSession]:
        """One delivery's changes and events; `locked` as it stands after it."""
        session_id = locked.id

        async def remember(key: str, value: Any) -> store.LockedSession:
            await store.set_metadata(conn, session_id, key, value)
            return msgspec.structs.replace(locked, metadata={**locked.metadata, key: value})

        match message:
            case m.StatusUpdate(status="in-progress") if message.call and message.call.monitor:
                # A secret: never logged.
                locked = await remember("vapi_monitor", msgspec.to_builtins(message.call.monitor))
            case m.SpeechUpdate(status="started") if message.timestamp:
                locked = await remember(f"vapi_speech_{ROLES.get(message.role, 'rep')}", message.timestamp)
            case m.ConversationUpdate():
                kept = locked.metadata.get("vapi_conversation") or {}
                if (message.timestamp or 0) >= kept.get("timestamp", 0):
                    locked = await remember("vapi_conversation", {
                        "timestamp": message.timestamp or 0, "messages": message.messagesOpenAIFormatted})
            case m.EndOfCallReport():
                return await self._number(conn, locked, await self._report(conn, message, locked), raise_hints=False)
            case _:
                pass
        events = [] if locked.status == "ended" else events_for(
            message, session_id=str(locked.id), started_at=locked.started_at, metadata=locked.metadata)
        started = isinstance(message, m.StatusUpdate) and message.status == "in-progress"
        return await self._number(conn, locked, events, start=started)

    async def _report(self, conn: asyncpg.Connection, report: m.EndOfCallReport,
                      locked: store.LockedSession) -> list[Event]:
        """The one end-of-call report: stored once, the transcript from it when the live one is
        missing, the call ended if it was not yet, scoring queued. A second report changes nothing."""
        if not await store.set_metadata(conn, locked.id, "vapi_report", report_summary(report), only_if_absent=True):
            return []
        sid = str(locked.id)
        events: list[Event] = []
        if not await store.session_has_finals(conn, locked.id):
            events += report_finals(report, sid)
        if locked.status != "ended":
            duration = report_duration_s(report)
            events.append(SessionEnded(session_id=sid, ts=0, reason=report.endedReason or "ended",
                                       duration_ms=int(duration * 1000) if duration else since_ms(locked.started_at)))
        await sessions.enqueue_score(conn, locked.org_id, locked.id)
        return events

    async def _append(self, conn: asyncpg.Connection, locked: store.LockedSession, events: list[Event], *,
                      raise_hints: bool = True) -> list[LogEntry]:
        """Numbers and stores the events of one change (a whisper, a timeout). The caller holds
        the session's lock."""
        entries, locked = await self._number(conn, locked, events, raise_hints=raise_hints)
        await self._store_all(conn, locked.org_id, [(locked, entries)])
        return entries

    async def _number(self, conn: asyncpg.Connection, locked: store.LockedSession, events: list[Event], *,
                      start: bool = False, raise_hints: bool = True) -> tuple[list[LogEntry], store.LockedSession]:
        """Numbers the events through the call's session log (starting the session first if it is
        not live yet), with the hints their finals raise right behind them; returns the entries
        and the session as it stands after them. The caller holds the session's lock and stores
        the entries (`_store`)."""
        if not events and not (start and locked.status == "created"):
            return [], locked
        if locked.status == "created":
            await sessions.start_session(conn, locked.id)
            locked = msgspec.structs.replace(locked, status="live", started_at=datetime.now(UTC))
            events = [SessionStarted(session_id=str(locked.id), ts=0, protocol=PROTOCOL_VERSION,
                                     persona_id=locked.persona_id, output_audio=AudioFormat()), *events]
        call_log = await self._log_for(conn, locked)
        entries: list[LogEntry] = []
        status = locked.status
        for event in events:
            entries += call_log.append(event, raise_hints=raise_hints).entries
            if isinstance(event, SessionEnded):
                status = "ended"  # append_events ends the session with it
                break
        return entries, msgspec.structs.replace(locked, status=status, last_seq=call_log.last_seq)

    @staticmethod
    async def _store_all(conn: asyncpg.Connection, org_id: uuid.UUID,
                         calls: list[tuple[store.LockedSession, list[LogEntry]]]) -> None:
        """Stores the numbered entries of one org's locked calls in one go."""
        rows = [(locked.id, locked.owner_fence, e) for locked, entries in calls for e in entries]
        if rows:
            await sessions.append_events(conn, org_id, rows, locked=True)

    async def _log_for(self, conn: asyncpg.Connection, locked: store.LockedSession) -> SessionLog:
        """The call's session log. Webhooks of one call may land on any instance: this instance's
        log is used when it has numbered every stored event; otherwise it is rebuilt from them
        (hint state included). The caller holds the session's lock."""
        cached = self._logs.pop(locked.id, None)
        if cached is None or cached.last_seq != locked.last_seq:
            stored = await sessions.list_events(conn, locked.id, after_seq=0, limit=1_000_000)
            cached = SessionLog.rebuild(str(locked.id), (row.payload for row in stored), hints=self._hints,
                                        tail_events=0)
        self._logs[locked.id] = cached
        while len(self._logs) > _CACHED_LOGS:
            self._logs.pop(next(iter(self._logs)))
        return cached

    async def _publish(self, org: uuid.UUID, calls: dict[uuid.UUID, list[LogEntry]]) -> None:
        """Publishes each call's stored entries, all in one round trip to the bus."""
        calls = {session_id: entries for session_id, entries in calls.items() if entries}
        if not calls:
            return
        try:
            await self._coordinator.publish_many(
                [(str(session_id), f"vapi|{session_id}", entries) for session_id, entries in calls.items()],
                self._ttl_ms)
            for session_id, entries in calls.items():
                if any(e.type == "session.ended" for e in entries):
                    await self._coordinator.set_absent(str(org), str(session_id))
                elif any(e.type == "session.started" for e in entries):
                    await self._present(session_id, org)
        except Exception as exc:  # Redis down: Postgres has the events; watchers catch up from there
            log.warning("could not publish VAPI call events", extra={"error": type(exc).__name__})

    async def _present(self, session_id: uuid.UUID, org: uuid.UUID) -> None:
        """Lists the call in GET /api/live until it ends (or the TTL passes: VAPI never said so)."""
        async with self._tx(org) as conn:
            row = await sessions.get_session(conn, session_id)
        if row is None or row.status != "live":
            return
        entry = live_entry(row, self._personas.get(row.persona_id), instance="vapi")
        await self._coordinator.set_present([entry], self._ttl_ms)

    # --- requests that need an answer ---------------------------------------------------------

    async def _assistant_request(self, message: m.AssistantRequest, body: bytes,
                                 org_id: uuid.UUID | None) -> m.AssistantReply:
        """A transient assistant for the persona the phone number (or the org) names, and a
        session for the call, so its webhooks land in it."""
        number = message.phone_number
        persona_id, org = None, org_id
        async with acquire(self._pool) as conn:
            if org is None and number:
                mapped = await store.phone_org(conn, number)
                if mapped is not None:
                    org, persona_id = mapped
        org = org or self._default_org
        session_id = None
        async with self._tx(org) as conn:
            await store.keep_delivery(conn, org, dedupe_key(message), message.type, body, endpoint_org=org_id)
            if org is not None:
                persona_id = persona_id if persona_id in self._personas else await self._persona_for(conn, org, number)
                found = await store.find_session(conn, None, message.call_id, endpoint_org=org_id) \
                    if message.call_id else None
                if found is not None and found.org_id != org:
                    found = None
                session_id = found.id if found else await self._create_for_assistant(conn, org, persona_id, message,
                                                                                   platform=org_id is None)
        persona = self._personas[persona_id or self._default_persona]
        return m.AssistantReply(transient_assistant(persona, session_id=str(session_id) if session_id else None,
                                                    site_url=self._site_url, secret=self._secret))

    async def _create_for_assistant(self, conn: asyncpg.Connection, org: uuid.UUID, persona_id: str,
                                    message: m.AssistantRequest, *, platform: bool) -> uuid.UUID | None:
        """The assistant's session; None when the org's own endpoint bound this call id already
        (the platform endpoint may not see that session, so the call gets none)."""
        try:
            async with savepoint(conn):  # the delivery stays kept
                return await self._create_session(conn, org, persona_id, message.call_id, platform=platform)
        except asyncpg.UniqueViolationError:
            return None

    # --- calls VAPI never ended ----------------------------------------------------------------

    async def end_stale(self, session_id: uuid.UUID, org_id: uuid.UUID, *, started_before_s: float) -> bool:
        """Ends a live VAPI call started more than `started_before_s` ago whose `ended` never came
        (reason `vapi_timeout`), with `session.ended` numbered through its session log under the
        session's lock like any webhook's events. False: it ended meanwhile, or is younger."""
        async with self._tx(org_id) as conn:
            locked = await store.lock_session(conn, session_id)
            if locked is None or locked.status != "live" or locked.started_at is None:
                return False
            if (datetime.now(UTC) - locked.started_at).total_seconds() < started_before_s:
                return False
            entries = await self._append(conn, locked, [SessionEnded(
                session_id=str(session_id), ts=0, reason="vapi_timeout", duration_ms=since_ms(locked.started_at))],
                raise_hints=False)
        await self._publish(org_id, {session_id: entries})
        log.info("ended a VAPI call that never reported its end", extra={"session_id": str(session_id)})
        return True

    # --- coaches ------------------------------------------------------------------------------

    async def whisper(self, session: sessions.SessionRow, sender: Sender, text: str, *, steer: bool) -> bool:
        """A coach's whisper on a VAPI call: a session event (the rep's page and every watcher get
        it) and, with steering on, a silent system message to the AI buyer through the controlUrl."""
        async with self._tx(session.org_id) as conn:
            locked = await store.lock_session(conn, session.id)
            if locked is None or locked.status != "live":
                return False
            entries = await self._append(conn, locked, [Whisper(session_id=str(session.id), ts=0, sender=sender,
                                                                text=text)])
            steer_url = control_url(locked.metadata, self._control_hosts)
        await self._publish(session.org_id, {session.id: entries})
        if steer and steer_url and self._http is not None:
            try:
                response = await self._http.post(steer_url, json={
                    "type": "add-message", "triggerResponseEnabled": False,
                    "message": {"role": "system", "content": f"Sales coach's note (do not read aloud): {text}"}})
                if response.status_code >= 400:
                    log.warning("VAPI control request refused", extra={"status": response.status_code})
            except httpx.HTTPError as exc:
                log.warning("VAPI control request failed", extra={"error": type(exc).__name__})
        return True

    def persona_for_session(self, row: sessions.SessionRow) -> Persona:
        try:
            return parse_persona(row.persona_snapshot, source=f"session {row.id}")
        except PersonaFileError:
            return self._personas[self._default_persona]

    @property
    def default_persona(self) -> Persona:
        return self._personas[self._default_persona]
