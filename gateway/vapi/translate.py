"""What a VAPI message means for a Sparring session, as pure functions: its inbox identity, the
session events it stands for, the report's summary and transcript, the steering URL it allows.
No I/O; gateway/vapi/calls.py applies them under the session's lock."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from coaching.events import ErrorEvent, Event, PersonaAudioEnd, SessionEnded, Speaker, TranscriptFinal
from gateway.vapi import messages as m

__all__ = ["ROLES", "control_url", "dedupe_key", "events_for", "report_finals", "report_summary", "since_ms"]

WORD_MS = 400  # a transcript without timing: about 150 words a minute
_DAY_MS = 86_400_000
ROLES: dict[str, Speaker] = {"user": "rep", "customer": "rep", "assistant": "persona", "bot": "persona"}
_TRANSCRIPT_LINE = re.compile(r"^\s*(AI|Assistant|Bot|User|Customer)\s*:\s*(.+)$", re.IGNORECASE)


def dedupe_key(message: m.Message) -> str:
    """The message's own identity (never a hash of the whole body: re-deliveries carry fresh
    presigned URLs and may carry a new timestamp)."""
    call = message.call_id
    if call is None:
        return f"nocall:{message.type}:{uuid.uuid4()}"
    ts = f"{message.timestamp:.0f}" if message.timestamp is not None else "-"
    match message:
        case m.StatusUpdate():
            return f"{call}:status-update:{message.status}"
        case m.Transcript():
            digest = hashlib.sha256(message.transcript.encode()).hexdigest()[:16]
            return f"{call}:transcript:{message.role}:{message.transcriptType}:{ts}:{digest}"
        case m.SpeechUpdate():
            turn = message.turn if message.turn is not None else ts
            return f"{call}:speech-update:{message.role}:{message.status}:{turn}"
        case m.UserInterrupted():
            return f"{call}:user-interrupted:{message.turnId or ts}"
        case m.ToolCalls() | m.FunctionCall():
            return f"{call}:{message.type}:{','.join(c.id for c in m.tool_calls_of(message))}:{ts}"
        case m.EndOfCallReport() | m.AssistantRequest():
            return f"{call}:{message.type}"
        case _:
            return f"{call}:{message.type}:{ts}"


def since_ms(started_at: datetime | None) -> int:
    return int((datetime.now(UTC) - started_at).total_seconds() * 1000) if started_at else 0


def _offset(started_at: datetime | None, epoch_ms: float | None) -> int:
    """Milliseconds into the call of a VAPI timestamp (epoch ms)."""
    if epoch_ms is None or started_at is None:
        return since_ms(started_at)
    return min(_DAY_MS, max(0, int(epoch_ms - started_at.timestamp() * 1000)))  # a clock far off stays in range


def events_for(message: m.Message, *, session_id: str, started_at: datetime | None,
               metadata: dict[str, Any]) -> list[Event]:
    """The session events a live message stands for (the report is `report_finals`' job).

    Args:
        message: the delivery.
        session_id: its session.
        started_at: when the session started (transcript times count from it).
        metadata: the session's metadata (when each speaker last started talking).
    """
    match message:
        case m.StatusUpdate(status="ended"):
            return [SessionEnded(session_id=session_id, ts=0, reason=message.endedReason or "ended",
                                 duration_ms=since_ms(started_at))]
        case m.Transcript():
            if message.transcriptType != "final" or not message.transcript.strip():
                return []  # partials are not part of the log
            speaker = ROLES.get(message.role, "rep")
            end_ms = _offset(started_at, message.timestamp)
            spoke_at = metadata.get(f"vapi_speech_{speaker}")
            start_ms = _offset(started_at, spoke_at) if isinstance(spoke_at, (int, float)) else None
            if start_ms is None or not 0 <= end_ms - start_ms <= 120_000:
                start_ms = max(0, end_ms - len(message.transcript.split()) * WORD_MS)
            return [TranscriptFinal(session_id=session_id, ts=0, speaker=speaker,
                                    text=message.transcript.strip(), start_ms=start_ms, end_ms=end_ms,
                                    segment_id=f"vapi-{uuid.uuid4().hex[:12]}")]
        case m.UserInterrupted():
            return [PersonaAudioEnd(session_id=session_id, ts=0, reply_id=message.turnId or "vapi", interrupted=True)]
        case m.Hang():
            return [ErrorEvent(session_id=session_id, ts=0, code="vapi_hang",
                               message="the buyer's voice assistant stalled; it should answer again in a moment")]
        case _:
            return []


def report_duration_s(report: m.EndOfCallReport) -> float | None:
    if report.startedAt and report.endedAt:
        try:
            start = datetime.fromisoformat(report.startedAt.replace("Z", "+00:00"))
            end = datetime.fromisoformat(report.endedAt.replace("Z", "+00:00"))
            return max(0.0, (end - start).total_seconds())
        except ValueError:
            pass
    return report.durationSeconds


def report_summary(report: m.EndOfCallReport) -> dict[str, Any]:
    """What the session keeps of the report (presigned URLs are left out: they expire)."""
    artifact = report.artifact or m.Artifact()
    return {
        "ended_reason": report.endedReason, "started_at": report.startedAt, "ended_at": report.endedAt,
        "duration_s": report_duration_s(report), "cost": report.cost,
        "analysis": report.analysis or ({"summary": report.summary} if report.summary else {}),
        "recording_url": artifact.recordingUrl or report.recordingUrl,
        "stereo_recording_url": artifact.stereoRecordingUrl or report.stereoRecordingUrl,
        "performance_metrics": artifact.performanceMetrics,
    }


def report_finals(report: m.EndOfCallReport, session_id: str) -> list[Event]:
    """Finals from the report's `artifact.messages` (with their timings), else from its text."""
    artifact = report.artifact or m.Artifact()
    finals: list[Event] = []
    for i, item in enumerate(artifact.messages or report.messages or []):
        speaker = ROLES.get(item.role)
        text = item.message or item.content
        if speaker is None or not text or not text.strip():
            continue
        start_ms = min(_DAY_MS, max(0, int((item.secondsFromStart or 0) * 1000)))
        duration = item.endTime - item.time if item.endTime is not None and item.time is not None else item.duration
        spoken = duration if duration is not None and 0 <= duration <= _DAY_MS else len(text.split()) * WORD_MS
        finals.append(TranscriptFinal(session_id=session_id, ts=0, speaker=speaker,
                                      text=text.strip(), start_ms=start_ms, end_ms=start_ms + int(spoken),
                                      segment_id=f"vapi-report-{i}"))
    transcript = artifact.transcript or report.transcript
    if finals or not transcript:
        return finals
    clock = 0
    for i, line in enumerate(line for line in transcript.splitlines() if line.strip()):
        found = _TRANSCRIPT_LINE.match(line)
        if not found:
            continue
        line_speaker: Speaker = "persona" if found.group(1).lower() in ("ai", "assistant", "bot") else "rep"
        length = len(found.group(2).split()) * WORD_MS
        finals.append(TranscriptFinal(session_id=session_id, ts=0, speaker=line_speaker, text=found.group(2).strip(),
                                      start_ms=clock, end_ms=clock + length, segment_id=f"vapi-report-{i}"))
        clock += length
    return finals


def control_url(metadata: dict[str, Any], hosts: tuple[str, ...]) -> str | None:
    """The call's controlUrl if it is on an allowed host (VAPI_CONTROL_HOSTS, default vapi.ai and
    its subdomains) over https (plain http only for an allowed loopback host): a forged webhook
    must not make the gateway post to an address of the attacker's choosing."""
    try:
        url = msgspec.convert(metadata.get("vapi_monitor") or {}, m.Monitor).controlUrl
    except msgspec.ValidationError:
        return None
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    allowed = any(host == h or host.endswith("." + h) for h in hosts)
    loopback = host in ("127.0.0.1", "localhost") and host in hosts
    return url if allowed and (parts.scheme == "https" or (loopback and parts.scheme == "http")) else None
