"""VAPI server messages as msgspec Structs, decoded leniently at the edge.

A body is `{"message": {"type": ..., ...}}`. Each handled type has its Struct (extra fields are
ignored, `endedReason` and the like are free strings); a type Sparring does not handle decodes to
`Unhandled`; a body that is not a VAPI message raises `NotVapiMessage` (answered 400: a 5xx would
make VAPI retry it).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import msgspec

from coaching.events import Decoder

__all__ = [
    "AssistantRequest", "Call", "ConversationUpdate", "EndOfCallReport", "FunctionCall", "Hang", "Message",
    "ModelOutput", "NotVapiMessage", "SpeechUpdate", "StatusUpdate", "ToolCall", "ToolCalls", "Transcript",
    "Unhandled", "UserInterrupted", "decode_message", "session_ref_in", "tool_calls_of", "without_nul",
    "Accepted", "Artifact", "AssistantReply", "FunctionResult", "Monitor", "Reply", "ReportMessage", "ToolResult",
    "ToolResults",
]


class NotVapiMessage(ValueError):
    """The body is not a VAPI server message; the text says what is wrong."""


class Monitor(msgspec.Struct, kw_only=True):
    """`call.monitor`: where to listen to the call and to steer it (secrets: never logged)."""

    listenUrl: str | None = None
    controlUrl: str | None = None


class Call(msgspec.Struct, kw_only=True):
    id: str | None = None
    assistantOverrides: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    monitor: Monitor | None = None
    phoneNumberId: str | None = None
    startedAt: str | None = None

    def session_ref(self) -> tuple[uuid.UUID, str] | None:
        """The Sparring session (and its token) the browser put in `assistantOverrides` (or the
        call's metadata)."""
        return session_ref_in(msgspec.to_builtins(self))


def session_ref_in(call: dict[str, Any] | None, *more: dict[str, Any] | None) -> tuple[uuid.UUID, str] | None:
    """`sparring_session_id` and `sparring_session_token` from a VAPI call object's
    `assistantOverrides.variableValues`, `assistantOverrides.metadata` or `metadata`, else from
    the other places given."""
    call = call or {}
    overrides = call.get("assistantOverrides") or {}
    for place in (overrides.get("variableValues"), overrides.get("metadata"), call.get("metadata"), *more):
        if isinstance(place, dict) and isinstance(place.get("sparring_session_id"), str):
            token = place.get("sparring_session_token")
            try:
                return uuid.UUID(place["sparring_session_id"]), token if isinstance(token, str) else ""
            except ValueError:
                return None
    return None


class _Message(msgspec.Struct, kw_only=True):
    type: str
    timestamp: float | None = None  # epoch milliseconds
    call: Call | None = None
    phoneNumber: dict[str, Any] | None = None
    customer: dict[str, Any] | None = None

    @property
    def call_id(self) -> str | None:
        return self.call.id if self.call else None

    @property
    def phone_number(self) -> str | None:
        number = (self.phoneNumber or {}).get("number")
        return number if isinstance(number, str) else None


class StatusUpdate(_Message, kw_only=True):
    status: str
    endedReason: str | None = None


class Transcript(_Message, kw_only=True):
    role: str
    transcript: str
    transcriptType: str = "final"


class SpeechUpdate(_Message, kw_only=True):
    status: str
    role: str
    turn: int | None = None


class ConversationUpdate(_Message, kw_only=True):
    messagesOpenAIFormatted: list[Any] = []
    messages: list[Any] = []


class UserInterrupted(_Message, kw_only=True):
    turnId: str | None = None


class Hang(_Message, kw_only=True):
    pass


class ModelOutput(_Message, kw_only=True):
    output: Any = None
    turnId: str | None = None


class Function(msgspec.Struct, kw_only=True):
    name: str | None = None
    arguments: Any = None  # an object, or a JSON string
    parameters: Any = None


class ToolCallItem(msgspec.Struct, kw_only=True):
    """One entry of `toolCallList` (the OpenAI shape `function.{name, arguments}`, or older
    payloads' top-level `name` and `arguments|parameters`)."""

    id: str | None = None
    name: str | None = None
    function: Function | None = None
    arguments: Any = None
    parameters: Any = None


class ToolWithToolCall(msgspec.Struct, kw_only=True):
    toolCall: ToolCallItem | None = None


class ToolCalls(_Message, kw_only=True):
    toolCallList: list[ToolCallItem] = []
    toolWithToolCallList: list[ToolWithToolCall] = []


class FunctionCallBody(msgspec.Struct, kw_only=True):
    id: str | None = None
    name: str | None = None
    parameters: Any = None
    arguments: Any = None


class FunctionCall(_Message, kw_only=True):
    functionCall: FunctionCallBody


class ReportMessage(msgspec.Struct, kw_only=True):
    """One line of a report's transcript (`artifact.messages`; top-level `messages` in older ones)."""

    role: str = ""
    message: str | None = None
    content: str | None = None
    secondsFromStart: float | None = None
    duration: float | None = None  # milliseconds
    time: float | None = None  # epoch milliseconds
    endTime: float | None = None


class Artifact(msgspec.Struct, kw_only=True):
    messages: list[ReportMessage] = []
    transcript: str | None = None
    recordingUrl: str | None = None
    stereoRecordingUrl: str | None = None
    performanceMetrics: dict[str, Any] | None = None


class EndOfCallReport(_Message, kw_only=True):
    endedReason: str | None = None
    artifact: Artifact | None = None
    analysis: dict[str, Any] | None = None
    cost: float | None = None
    costs: list[Any] | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    # Older payloads put these at the top level of the message.
    transcript: str | None = None
    summary: str | None = None
    messages: list[ReportMessage] | None = None
    recordingUrl: str | None = None
    stereoRecordingUrl: str | None = None
    durationSeconds: float | None = None


class AssistantRequest(_Message, kw_only=True):
    pass


class Unhandled(_Message, kw_only=True):
    pass


Message = (StatusUpdate | Transcript | SpeechUpdate | ConversationUpdate | UserInterrupted | Hang | ModelOutput
           | ToolCalls | FunctionCall | EndOfCallReport | AssistantRequest | Unhandled)

_TYPES: dict[str, type] = {
    "status-update": StatusUpdate, "transcript": Transcript, 'transcript[transcriptType="final"]': Transcript,
    "speech-update": SpeechUpdate, "conversation-update": ConversationUpdate, "user-interrupted": UserInterrupted,
    "hang": Hang, "model-output": ModelOutput, "tool-calls": ToolCalls, "function-call": FunctionCall,
    "end-of-call-report": EndOfCallReport, "assistant-request": AssistantRequest,
}


class _Envelope(msgspec.Struct):
    message: msgspec.Raw


class _Head(msgspec.Struct):
    type: str


# A `\u0000` escape: one preceded by an even run of backslashes (an odd run escapes its backslash).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def without_nul(body: bytes) -> bytes:
    """The JSON body with every NUL (`\u0000`) removed from its strings and keys, as the socket
    path strips them from text: Postgres stores no NUL, in text or in jsonb. (JSON carries a NUL
    only as that escape.) Applied after verification, to what is decoded and kept."""
    return _NUL_ESCAPE.sub(rb"\1", body) if b"\\u0000" in body else body


_envelope: Decoder[_Envelope] = Decoder(_Envelope)
_head: Decoder[_Head] = Decoder(_Head)
_decoders: dict[str, Decoder[Message]] = {kind: Decoder(type_) for kind, type_ in _TYPES.items()}
_unhandled: Decoder[Message] = Decoder(Unhandled)


def decode_message(body: bytes) -> Message:
    """Raises:
        NotVapiMessage: not JSON (or nested too deeply), no `message` object, no `message.type`,
            or a handled type without its required fields.
    """
    try:
        raw = _envelope.decode(body).message
        kind = _head.decode(raw).type
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise NotVapiMessage(f"not a VAPI server message ({{\"message\": {{\"type\": ...}}}}): {exc}") from None
    try:
        return _decoders.get(kind, _unhandled).decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise NotVapiMessage(f"{kind}: {exc}") from None


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: dict[str, Any]


def tool_calls_of(message: ToolCalls | FunctionCall) -> list[ToolCall]:
    """Every documented shape: `function.{name,arguments|parameters}` or top-level `name` and
    `arguments|parameters`, each an object or a JSON string."""
    if isinstance(message, FunctionCall):
        body = message.functionCall
        args = body.parameters if body.parameters is not None else body.arguments
        return [ToolCall(body.id or "function-call", body.name or "", _arguments(args))]
    items = message.toolCallList or [entry.toolCall for entry in message.toolWithToolCallList if entry.toolCall]
    calls = []
    for item in items:
        function = item.function or Function()
        args = next((a for a in (function.arguments, item.arguments, function.parameters, item.parameters)
                     if a is not None), None)
        calls.append(ToolCall(item.id or "", function.name or item.name or "", _arguments(args)))
    return calls


def _arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return {"_unparsed": value}
    return value if isinstance(value, dict) else {}


# --- replies ------------------------------------------------------------------------------------

class ToolResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One tool call's answer: `result` on success, `error` otherwise, one line each."""

    toolCallId: str
    name: str
    result: str | None = None
    error: str | None = None


class ToolResults(msgspec.Struct):
    """The answer to `tool-calls`, in call order."""

    results: list[ToolResult]


class FunctionResult(msgspec.Struct):
    """The answer to the legacy `function-call`: one result."""

    result: str


class AssistantReply(msgspec.Struct):
    """The answer to `assistant-request`: a transient assistant."""

    assistant: dict[str, Any]


class Accepted(msgspec.Struct):
    """The answer to every other message: `{}`."""


Reply = ToolResults | FunctionResult | AssistantReply | Accepted
