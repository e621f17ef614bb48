"""VAPI calls become Sparring sessions: each webhook is kept in the inbox (deduplicated on the
message's own identity), then turned into the same session events browser calls produce,
numbered in Postgres (one webhook at a time per session, under the session's row lock) and
published on the bus, so coaches watch VAPI calls with the same socket and hints run on them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec

from coaching.events import (
    PROTOCOL_VERSION,
    AudioFormat,
    ErrorEvent,
    Event,
    PersonaAudioEnd,
    Sender,
    SessionEnded,
    SessionStarted,
    TranscriptFinal,
    Whisper,
    encode,
    without_nul,
)
from coaching.hints import HintEngine, HintOptions
from coaching.persona import Persona, PersonaFileError, parse_persona
from gateway.calls.registry import LiveEntry, Named
from gateway.fanout.coordinator import Coordinator, StreamEntry
from gateway.vapi import messages as m
from gateway.vapi.assistant import session_token, transient_assistant
from storage import sessions
from storage import vapi as store
from storage.knowledge import search_text
from storage.tenancy import Tenant, set_tenant, tenant_tx

__all__ = ["VapiCalls", "dedupe_key"]

log = logging.getLogger(__name__)
_WORD_MS = 400  # a transcript without timing: about 150 words a minute
_DAY_MS = 86_400_000
_ROLES = {"user": "rep", "customer": "rep", "assistant": "persona", "bot": "persona"}


def dedupe_key(message: m.Message) -> str:
    """The message's own identity (never a hash of the whole body: re-deliveries carry fresh
    presigned URLs and may carry a new timestamp)."""
    call = message.call_id
    if call is None:
        return f"nocall:{message.type}:{uuid.uuid4()}"
    ts = f"{message.timestamp:.0f}" if message.timestamp is not None else "-"
    if isinstance(message, m.StatusUpdate):
        return f"{call}:status-update:{message.status}"
    if isinstance(message, m.Transcript):
        digest = hashlib.sha256(message.transcript.encode()).hexdigest()[:16]
        return f"{call}:transcript:{message.role}:{message.transcriptType}:{ts}:{digest}"
    if isinstance(message, m.SpeechUpdate):
        return f"{call}:speech-update:{message.role}:{message.status}:{message.turn if message.turn is not None else ts}"
    if isinstance(message, m.UserInterrupted):
        return f"{call}:user-interrupted:{message.turnId or ts}"
    if isinstance(message, (m.ToolCalls, m.FunctionCall)):
        return f"{call}:{message.type}:{','.join(c.id for c in m.tool_calls_of(message))}:{ts}"
    if isinstance(message, (m.EndOfCallReport, m.AssistantRequest)):
        return f"{call}:{message.type}"
    return f"{call}:{message.type}:{ts}"


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
                 secret: str, control_hosts: tuple[str, ...] = ("vapi.ai",)) -> None:
        self._pool, self._coordinator, self._personas = pool, coordinator, personas
        self._hints, self._default_org = hint_options, default_org_id
        self._default_persona = default_persona_id if default_persona_id in personas else next(iter(personas))
        self._site_url, self._ttl_ms, self._http = site_url, int(presence_ttl_s * 1000), http
        self._control_hosts, self._secret = control_hosts, secret
        self._engines: dict[uuid.UUID, tuple[HintEngine, int]] = {}  # session -> (engine, last final's seq)

    # --- entry point ----------------------------------------------------------------------------

    async def handle(self, message: m.Message, body: bytes, org_id: uuid.UUID | None) -> dict[str, Any]:
        """Keeps and applies one verified delivery; returns the response body for VAPI."""
        if isinstance(message, m.AssistantRequest):
            return await self._assistant_request(message, body, org_id)
        entries: list[StreamEntry] = []
        async with self._pool.acquire() as conn:  # one connection; kept and applied in one transaction
            found = await self._session_for(conn, message, org_id)
            target_org = found.org_id if found else (org_id or self._default_org)
            async with conn.transaction():
                await set_tenant(conn, self._tenant(target_org))
                fresh = await store.keep_delivery(conn, target_org, dedupe_key(message), message.type.split("[", 1)[0],
                                                  body)
                if fresh and found is not None and not isinstance(message, (m.ToolCalls, m.FunctionCall)):
                    if message.call_id and found.call_id is None:
                        await store.set_call_id(conn, found.id, message.call_id)
                    entries = await self._apply(conn, message, found.id)
        if isinstance(message, (m.ToolCalls, m.FunctionCall)):
            return await self._tool_calls(message, target_org)  # answered again on a re-delivery
        if found is not None:
            await self._publish(found.id, found.org_id, entries)
        return {}

    @staticmethod
    def _tenant(org_id: uuid.UUID | None) -> Tenant:
        return Tenant(org_id=org_id, role="system") if org_id else Tenant(org_id=None, role="platform")

    def _tx(self, org_id: uuid.UUID | None):
        return tenant_tx(self._pool, self._tenant(org_id))

    async def _session_for(self, conn: asyncpg.Connection, message: m.Message,
                           org_id: uuid.UUID | None) -> store.FoundSession | None:
        """The message's session: by the id the browser passed, else by a call id seen before,
        else a new session in the endpoint's (or the default) org. None: nobody to give it to."""
        found = await store.find_session(conn, self.claimed_session(message.call.session_ref() if message.call else None),
                                         message.call_id)
        if found is not None and org_id is not None and found.org_id != org_id:
            found = None  # an org's secret never writes into another org's session
        if found is not None:
            return found
        org = org_id or self._default_org
        if org is None or message.call_id is None or isinstance(message, (m.ToolCalls, m.FunctionCall)):
            return None
        try:
            async with conn.transaction():
                await set_tenant(conn, self._tenant(org))
                persona_id = await self._persona_for(conn, org, message.phone_number)
                created = await self._create_session(conn, org, persona_id, message.call_id)
        except asyncpg.UniqueViolationError:
            # Another delivery of this call created its session first (or the call id is another
            # org's): use what is there, within the org's bounds.
            found = await store.find_session(conn, None, message.call_id)
            return found if found is not None and found.org_id == org else None
        return store.FoundSession(created, org, message.call_id) if created else None

    def claimed_session(self, ref: tuple[uuid.UUID, str] | None) -> uuid.UUID | None:
        """The session a call names, if it carries the token Sparring gave out with it."""
        if ref is None:
            return None
        session_id, token = ref
        expected = session_token(self._secret, str(session_id))
        return session_id if hmac.compare_digest(token.encode(), expected.encode()) else None

    async def _persona_for(self, conn: asyncpg.Connection, org: uuid.UUID, number: str | None) -> str:
        settings = await store.get_org_vapi(conn, org)
        for candidate in (settings.phone_numbers.get(number or ""), settings.default_persona_id):
            if candidate in self._personas:
                return candidate
        return self._default_persona

    async def _create_session(self, conn: asyncpg.Connection, org: uuid.UUID, persona_id: str,
                              call_id: str | None) -> uuid.UUID | None:
        owner = await store.first_admin(conn, org)
        if owner is None:
            log.warning("a VAPI call for an organization without members was kept but not mapped")
            return None
        row = await sessions.create_session(conn, org_id=org, user_id=owner, persona_id=persona_id,
                                           persona_snapshot=self._personas[persona_id].to_dict(), transport="vapi")
        if call_id:
            await store.set_call_id(conn, row.id, call_id)
        return row.id

    # --- the messages ---------------------------------------------------------------------------

    async def _apply(self, conn: asyncpg.Connection, message: m.Message, session_id: uuid.UUID) -> list[StreamEntry]:
        locked = await store.lock_session(conn, session_id)
        if locked is None:
            return []
        events = self._events_for(message, locked)
        if isinstance(message, m.StatusUpdate) and message.status == "in-progress" and message.call and message.call.monitor:
            await store.set_metadata(conn, session_id, "vapi_monitor", message.call.monitor)  # a secret: never logged
        elif isinstance(message, m.SpeechUpdate) and message.status == "started" and message.timestamp:
            await store.set_metadata(conn, session_id, f"vapi_speech_{_ROLES.get(message.role, 'rep')}",
                                     message.timestamp)
        elif isinstance(message, m.ConversationUpdate):
            if (message.timestamp or 0) >= locked.metadata.get("vapi_conversation", {}).get("timestamp", 0):
                await store.set_metadata(conn, session_id, "vapi_conversation", {
                    "timestamp": message.timestamp or 0, "messages": message.messagesOpenAIFormatted})
        elif isinstance(message, m.EndOfCallReport):
            return await self._append(conn, locked, await self._report(conn, message, locked), hints=False)
        started = isinstance(message, m.StatusUpdate) and message.status == "in-progress"
        return await self._append(conn, locked, events, start=started)

    def _events_for(self, message: m.Message, locked: store.LockedSession) -> list[Event]:
        """The session events a message stands for (none once the call has ended)."""
        if locked.status == "ended":
            return []
        sid = str(locked.id)
        if isinstance(message, m.StatusUpdate):
            if message.status == "ended":
                return [SessionEnded(session_id=sid, ts=0, reason=message.endedReason or "ended",
                                     duration_ms=_since(locked.started_at))]
            return []
        if isinstance(message, m.Transcript):
            if message.transcriptType != "final" or not message.transcript.strip():
                return []  # partials are not part of the log
            speaker = _ROLES.get(message.role, "rep")
            end_ms = _offset(locked.started_at, message.timestamp)
            started = locked.metadata.get(f"vapi_speech_{speaker}")
            start_ms = _offset(locked.started_at, started) if started else None
            if start_ms is None or not 0 <= end_ms - start_ms <= 120_000:
                start_ms = max(0, end_ms - len(message.transcript.split()) * _WORD_MS)
            return [TranscriptFinal(session_id=sid, ts=0, speaker=speaker, text=message.transcript.strip(),
                                    start_ms=start_ms, end_ms=end_ms, segment_id=f"vapi-{uuid.uuid4().hex[:12]}")]
        if isinstance(message, m.UserInterrupted):
            return [PersonaAudioEnd(session_id=sid, ts=0, reply_id=message.turnId or "vapi", interrupted=True)]
        if isinstance(message, m.Hang):
            return [ErrorEvent(session_id=sid, ts=0, code="vapi_hang",
                               message="the buyer's voice assistant stalled; it should answer again in a moment")]
        return []

    async def _report(self, conn: asyncpg.Connection, report: m.EndOfCallReport,
                      locked: store.LockedSession) -> list[Event]:
        """The one end-of-call report: stored once, the transcript from it when the live one is
        missing, the call ended if it was not yet, scoring queued. A second report changes nothing."""
        artifact = report.artifact or {}
        summary = {
            "ended_reason": report.endedReason, "started_at": report.startedAt, "ended_at": report.endedAt,
            "duration_s": _duration_s(report), "cost": report.cost,
            "analysis": report.analysis or ({"summary": report.summary} if report.summary else {}),
            "recording_url": artifact.get("recordingUrl") or report.recordingUrl,
            "stereo_recording_url": artifact.get("stereoRecordingUrl") or report.stereoRecordingUrl,
            "performance_metrics": artifact.get("performanceMetrics"),
        }
        if not await store.set_metadata(conn, locked.id, "vapi_report", summary, only_if_absent=True):
            return []
        sid = str(locked.id)
        events: list[Event] = []
        if not await store.session_has_finals(conn, locked.id):
            events += _report_finals(sid, artifact.get("messages") or report.messages or [],
                                     artifact.get("transcript") or report.transcript)
        if locked.status != "ended":
            duration = _duration_s(report)
            events.append(SessionEnded(session_id=sid, ts=0, reason=report.endedReason or "ended",
                                       duration_ms=int(duration * 1000) if duration else _since(locked.started_at)))
        await conn.execute(
            "INSERT INTO jobs (org_id, kind, payload, dedupe_key) VALUES ($1, 'score_session', $2::jsonb, $3)"
            " ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
            locked.org_id, msgspec.json.encode({"session_id": sid}).decode(), sid)
        return events

    async def _append(self, conn: asyncpg.Connection, locked: store.LockedSession, events: list[Event], *,
                      start: bool = False, hints: bool = True) -> list[StreamEntry]:
        """Numbers and stores the events (starting the session first if it is not live yet), with
        the hints their finals trigger right behind them. The caller holds the session's lock."""
        if not events and not (start and locked.status == "created"):
            return []
        sid, now = str(locked.id), int(time.time() * 1000)
        if locked.status == "created":
            await sessions.start_session(conn, locked.id)
            locked = msgspec.structs.replace(locked, status="live", started_at=datetime.now(UTC))
            events = [SessionStarted(session_id=sid, ts=0, protocol=PROTOCOL_VERSION, persona_id=locked.persona_id,
                                     output_audio=AudioFormat()), *events]
        seq, last_final = locked.last_seq, locked.last_final_seq
        rows, segments, entries = [], [], []
        queue = list(events)
        while queue:
            event = queue.pop(0)
            seq += 1
            event = without_nul(msgspec.structs.replace(event, seq=seq, ts=event.ts or now))
            kind, frame = event.__struct_config__.tag, encode(event)
            rows.append((locked.id, locked.owner_fence, sessions.EventRow(seq, kind, frame)))
            entries.append(StreamEntry(seq, kind, frame))
            if isinstance(event, TranscriptFinal):
                segments.append((locked.id, locked.owner_fence, sessions.SegmentRow(
                    event.segment_id, event.speaker, event.text, event.start_ms, event.end_ms, seq)))
                if hints:
                    queue[:0] = await self._hints_after(conn, locked.id, event, last_final)
                last_final = seq
            if isinstance(event, SessionEnded):
                await sessions.end_session(conn, locked.id, event.reason, fence=locked.owner_fence)
                queue.clear()
        await sessions.append_events(conn, locked.org_id, rows, segments, locked=True)
        return entries

    async def _hints_after(self, conn: asyncpg.Connection, session_id: uuid.UUID, final: TranscriptFinal,
                           last: int) -> list[Event]:
        """Webhooks of one call may land on any instance. This instance's engine for the call is
        used when it has seen every stored final (the last one's seq is `last`); otherwise it is
        rebuilt by replaying the stored transcript (the engine is pure and deterministic). The
        caller holds the session's lock."""
        cached = self._engines.pop(session_id, None)
        if cached is None or cached[1] != last:
            engine = HintEngine(str(session_id), self._hints)
            for segment in await sessions.list_transcript(conn, session_id):
                engine.observe(TranscriptFinal(session_id=str(session_id), ts=0, speaker=segment.speaker,
                                               text=segment.text, start_ms=segment.start_ms, end_ms=segment.end_ms,
                                               segment_id=segment.segment_id))
        else:
            engine = cached[0]
        hints = list(engine.observe(final))
        self._engines[session_id] = (engine, final.seq)
        while len(self._engines) > 10_000:
            self._engines.pop(next(iter(self._engines)))
        return hints

    async def _publish(self, session_id: uuid.UUID, org: uuid.UUID, entries: list[StreamEntry]) -> None:
        if not entries:
            return
        sid = str(session_id)
        try:
            await self._coordinator.publish(sid, f"vapi|{sid}", entries, self._ttl_ms)
            if any(e.type == "session.ended" for e in entries):
                await self._coordinator.set_absent(str(org), sid)
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
        persona = self._personas.get(row.persona_id)
        entry = LiveEntry(session_id=str(row.id), rep=Named(str(row.user_id), row.rep_name or ""),
                          persona=Named(row.persona_id, persona.name if persona else row.persona_id),
                          started_at=row.started_at or datetime.now(UTC), transport="vapi", instance="vapi",
                          last_activity_at=datetime.now(UTC))
        await self._coordinator.set_present([(str(row.org_id), str(row.id), msgspec.json.encode(entry))], self._ttl_ms)

    # --- requests that need an answer ---------------------------------------------------------

    async def _assistant_request(self, message: m.AssistantRequest, body: bytes,
                                 org_id: uuid.UUID | None) -> dict[str, Any]:
        """A transient assistant for the persona the phone number (or the org) names, and a
        session for the call, so its webhooks land in it."""
        number = message.phone_number
        persona_id, org = None, org_id
        async with self._pool.acquire() as conn:
            if org is None and number:
                mapped = await store.phone_org(conn, number)
                if mapped is not None:
                    org, persona_id = mapped
        org = org or self._default_org
        session_id = None
        async with self._tx(org) as conn:
            await store.keep_delivery(conn, org, dedupe_key(message), message.type, body)
            if org is not None:
                persona_id = persona_id if persona_id in self._personas else await self._persona_for(conn, org, number)
                found = await store.find_session(conn, None, message.call_id) if message.call_id else None
                session_id = found.id if found else await self._create_session(conn, org, persona_id, message.call_id)
        persona = self._personas[persona_id or self._default_persona]
        return {"assistant": transient_assistant(persona, session_id=str(session_id) if session_id else None,
                                                 site_url=self._site_url, secret=self._secret)}

    async def _tool_calls(self, message: m.ToolCalls | m.FunctionCall, org: uuid.UUID | None) -> dict[str, Any]:
        results = []
        for call in m.tool_calls_of(message):
            results.append(await self.run_tool(call, org))
        if isinstance(message, m.FunctionCall):  # the legacy shape answers one result
            first = results[0]
            return {"result": first.get("result", first.get("error", ""))}
        return {"results": results}

    async def run_tool(self, call: m.ToolCall, org: uuid.UUID | None) -> dict[str, str]:
        """One tool call's result entry: `result` on success, `error` otherwise, one line each."""
        entry = {"toolCallId": call.id, "name": call.name}
        if call.name != "knowledge_base":
            return {**entry, "error": f"unknown function {call.name!r}; this server offers knowledge_base"}
        query = call.arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return {**entry, "error": "knowledge_base needs a non-empty string argument 'query'"}
        if org is None:
            return {**entry, "error": "this call belongs to no organization, so there is no knowledge base to search"}
        try:
            async with self._tx(org) as conn:
                hits = await search_text(conn, query.strip()[:500], limit=3)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("knowledge search failed", extra={"error": type(exc).__name__})
            return {**entry, "error": "the knowledge base is unavailable right now"}
        if not hits:
            return {**entry, "result": f"Nothing in the knowledge base matches {query.strip()[:100]!r}."}
        text = " | ".join(f"{h.title}: {h.content}" if h.title else h.content for h in hits)
        return {**entry, "result": _one_line(text)[:2000]}

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
            control_url = _control_url((locked.metadata.get("vapi_monitor") or {}).get("controlUrl"),
                                       self._control_hosts)
        await self._publish(session.id, session.org_id, entries)
        if steer and control_url and self._http is not None:
            try:
                response = await self._http.post(control_url, json={
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


def _control_url(url: Any, hosts: tuple[str, ...]) -> str | None:
    """A call's controlUrl if it is on an allowed host (VAPI_CONTROL_HOSTS, default vapi.ai and
    its subdomains) over https (plain http only for an allowed loopback host): a forged webhook
    must not make the gateway post to an address of the attacker's choosing."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    allowed = any(host == h or host.endswith("." + h) for h in hosts)
    loopback = host in ("127.0.0.1", "localhost") and host in hosts
    return url if allowed and (parts.scheme == "https" or (loopback and parts.scheme == "http")) else None


def _since(started_at: datetime | None) -> int:
    return int((datetime.now(UTC) - started_at).total_seconds() * 1000) if started_at else 0


def _offset(started_at: datetime | None, epoch_ms: float | None) -> int:
    """Milliseconds into the call of a VAPI timestamp (epoch ms)."""
    if epoch_ms is None or started_at is None:
        return _since(started_at)
    return min(_DAY_MS, max(0, int(epoch_ms - started_at.timestamp() * 1000)))  # a clock far off stays in range


def _duration_s(report: m.EndOfCallReport) -> float | None:
    if report.startedAt and report.endedAt:
        try:
            start = datetime.fromisoformat(report.startedAt.replace("Z", "+00:00"))
            end = datetime.fromisoformat(report.endedAt.replace("Z", "+00:00"))
            return max(0.0, (end - start).total_seconds())
        except ValueError:
            pass
    return report.durationSeconds


def _report_finals(sid: str, items: list[Any], transcript: str | None) -> list[Event]:
    """Finals from the report's `artifact.messages` (with their timings), else from its text."""
    finals: list[Event] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        speaker = _ROLES.get(str(item.get("role", "")))
        text = item.get("message") or item.get("content")
        if speaker is None or not isinstance(text, str) or not text.strip():
            continue
        try:
            start_ms = min(_DAY_MS, max(0, int(float(item.get("secondsFromStart") or 0) * 1000)))
        except (TypeError, ValueError):
            start_ms = 0
        duration = item.get("duration")
        if isinstance(item.get("endTime"), (int, float)) and isinstance(item.get("time"), (int, float)):
            duration = item["endTime"] - item["time"]
        spoken = duration if isinstance(duration, (int, float)) and 0 <= duration <= _DAY_MS else len(text.split()) * _WORD_MS
        end_ms = start_ms + int(spoken)
        finals.append(TranscriptFinal(session_id=sid, ts=0, speaker=speaker, text=text.strip(), start_ms=start_ms,
                                      end_ms=end_ms, segment_id=f"vapi-report-{i}"))
    if finals or not transcript:
        return finals
    clock = 0
    for i, line in enumerate(l for l in transcript.splitlines() if l.strip()):
        match = re.match(r"^\s*(AI|Assistant|Bot|User|Customer)\s*:\s*(.+)$", line, re.IGNORECASE)
        if not match:
            continue
        speaker = "persona" if match.group(1).lower() in ("ai", "assistant", "bot") else "rep"
        length = len(match.group(2).split()) * _WORD_MS
        finals.append(TranscriptFinal(session_id=sid, ts=0, speaker=speaker, text=match.group(2).strip(),
                                      start_ms=clock, end_ms=clock + length, segment_id=f"vapi-report-{i}"))
        clock += length
    return finals


def _one_line(text: str) -> str:
    return " ".join(text.split())
