"""The transient assistant Sparring hands VAPI for a persona (assistant-request answers and the
`vapi` block of a session created for the web SDK)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from coaching.brains.llm import system_prompt
from coaching.persona import Persona

__all__ = ["KNOWLEDGE_TOOL", "SERVER_MESSAGES", "assistant_overrides", "session_token", "transient_assistant"]

SERVER_MESSAGES = ["status-update", "transcript", "speech-update", "conversation-update", "user-interrupted",
                   "hang", "tool-calls", "end-of-call-report"]

KNOWLEDGE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "knowledge_base",
        "description": "Search the company's knowledge base (products, pricing, policies) for facts to answer with.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "what to look up"}},
                       "required": ["query"]},
    },
}


def session_token(secret: str, session_id: str) -> str:
    """Proof that Sparring handed out this session id for a VAPI call: webhooks (and the custom
    LLM) map a call to a session only with it, so a browser cannot point a call at another
    organization's session by naming its id."""
    return hmac.new(secret.encode(), f"vapi-session:{session_id}".encode(), hashlib.sha256).hexdigest()[:32]


def transient_assistant(persona: Persona, *, session_id: str | None, site_url: str | None, secret: str,
                        fallback_model: str = "gpt-4o") -> dict[str, Any]:
    """A full assistant config: Sparring's persona brain as a custom LLM when SITE_URL is set (else
    the persona's prompt on VAPI's own model), the persona's ElevenLabs voice, the server messages
    coaching needs, and the knowledge-base tool."""
    tool = dict(KNOWLEDGE_TOOL)
    if site_url:
        tool["server"] = {"url": f"{site_url}/api/vapi/tools/knowledge-base"}
        model: dict[str, Any] = {"provider": "custom-llm", "url": f"{site_url}/api/vapi/llm", "model": persona.id,
                                 "metadataSendMode": "variable", "tools": [tool]}
    else:
        model = {"provider": "openai", "model": fallback_model, "tools": [tool],
                 "messages": [{"role": "system", "content": system_prompt(persona)}]}
    assistant: dict[str, Any] = {
        "name": persona.name[:40],
        "firstMessage": persona.opening_line,
        "endCallPhrases": [persona.closing_line],
        "model": model,
        "voice": {"provider": "11labs", "voiceId": persona.voices.elevenlabs},
        "transcriber": {"provider": "deepgram", "model": "nova-2", "language": "en"},
        "serverMessages": SERVER_MESSAGES,
        "monitorPlan": {"listenEnabled": True, "controlEnabled": True},
        "metadata": {"sparring_persona_id": persona.id},
    }
    if site_url:
        assistant["server"] = {"url": f"{site_url}/api/vapi/webhook"}
    if session_id:
        assistant["metadata"] |= {"sparring_session_id": session_id,
                                  "sparring_session_token": session_token(secret, session_id)}
    return assistant


def assistant_overrides(session_id: str, secret: str) -> dict[str, Any]:
    """What the browser passes to `vapi.start(assistant, overrides)`: webhooks find the session by it."""
    ref = {"sparring_session_id": session_id, "sparring_session_token": session_token(secret, session_id)}
    return {"variableValues": dict(ref), "metadata": dict(ref)}
