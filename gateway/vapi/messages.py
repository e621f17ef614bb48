"""VAPI server messages as msgspec Structs, decoded leniently at the edge.

A body is `{"message": {"type": ..., ...}}`. Each handled type has its Struct (extra fields are
ignored, `endedReason` and the like are free strings); a type Sparring does not handle decodes to
`Unhandled`; a body that is not a VAPI message raises `NotVapiMessage` (answered 400: a 5xx would
make VAPI retry it).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec

__all__ = [
    "AssistantRequest", "Call", "ConversationUpdate", "EndOfCallReport", "FunctionCall", "Hang", "Message",
    "ModelOutput", "NotVapiMessage", "SpeechUpdate", "StatusUpdate", "ToolCall", "ToolCalls", "Transcript",
    "Unhandled", "UserInterrupted", "decode_message", "session_ref_in", "tool_calls_of",
]


class NotVapiMessage(ValueError):
    """The body is not a VAPI server message; the text says what is wrong."""


class Call(msgspec.Struct, kw_only=True):
    id: str | None = None
    assistantOverrides: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None
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


class ToolCalls(_Message, kw_only=True):
    toolCallList: list[dict[str, Any]] = []
    toolWithToolCallList: list[dict[str, Any]] = []


class FunctionCall(_Message, kw_only=True):
    functionCall: dict[str, Any]


class EndOfCallReport(_Message, kw_only=True):
    endedReason: str | None = None
    artifact: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None
    cost: float | None = None
    costs: list[Any] | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    # Older payloads put these at the top level of the message.
    transcript: str | None = None
    summary: str | None = None
    messages: list[Any] | None = None
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


def decode_message(body: bytes) -> Message:
    """Raises:
        NotVapiMessage: not JSON, no `message` object, no `message.type`, or a handled type
            without its required fields.
    """
    try:
        raw = msgspec.json.decode(body, type=_Envelope).message
        kind = msgspec.json.decode(raw, type=_Head).type
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise NotVapiMessage(f"not a VAPI server message ({{\"message\": {{\"type\": ...}}}}): {exc}") from None
    try:
        return msgspec.json.decode(raw, type=_TYPES.get(kind, Unhandled))
    except msgspec.ValidationError as exc:
        raise NotVapiMessage(f"{kind}: {exc}") from None


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: dict[str, Any]


def tool_calls_of(message: ToolCalls | FunctionCall) -> list[ToolCall]:
    """Every documented shape: `function.{name,arguments|parameters}` or top-level `name` and
    `arguments|parameters`, each an object or a JSON string."""
    if isinstance(message, FunctionCall):
        call = message.functionCall
        return [ToolCall(str(call.get("id") or "function-call"), str(call.get("name") or ""),
                         _arguments(call.get("parameters", call.get("arguments"))))]
    calls = []
    for item in message.toolCallList or [entry.get("toolCall", {}) for entry in message.toolWithToolCallList]:
        function = item.get("function") if isinstance(item.get("function"), dict) else {}
        name = function.get("name") or item.get("name") or ""
        args = next((a for a in (function.get("arguments"), item.get("arguments"), function.get("parameters"),
                                 item.get("parameters")) if a is not None), None)
        calls.append(ToolCall(str(item.get("id") or ""), str(name), _arguments(args)))
    return calls


def _arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return {"_unparsed": value}
    return value if isinstance(value, dict) else {}
