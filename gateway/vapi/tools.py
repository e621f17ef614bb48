"""The tools a VAPI assistant may call (`tool-calls`, the legacy `function-call`, and
`/api/vapi/tools/knowledge-base`): today `knowledge_base`, a search of the org's knowledge base
(the same hybrid retrieval as `GET /api/knowledge/search`)."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from gateway.knowledge.service import KnowledgeBase
from gateway.vapi import messages as m
from storage.tenancy import Tenant, tenant_tx

__all__ = ["answer_tool_calls", "run_tool"]

log = logging.getLogger(__name__)


async def answer_tool_calls(pool: asyncpg.Pool, knowledge: KnowledgeBase, message: m.ToolCalls | m.FunctionCall,
                            org: uuid.UUID | None) -> m.ToolResults | m.FunctionResult:
    """Every call's result, in call order (the legacy shape answers the first one alone)."""
    results = [await run_tool(pool, knowledge, call, org) for call in m.tool_calls_of(message)]
    if isinstance(message, m.FunctionCall):
        first = results[0]
        return m.FunctionResult(first.result if first.result is not None else first.error or "")
    return m.ToolResults(results)


async def run_tool(pool: asyncpg.Pool, knowledge: KnowledgeBase, call: m.ToolCall,
                   org: uuid.UUID | None) -> m.ToolResult:
    """One tool call's result: `result` on success, `error` otherwise, one line each."""
    def error(text: str) -> m.ToolResult:
        return m.ToolResult(toolCallId=call.id, name=call.name, error=text)

    if call.name != "knowledge_base":
        return error(f"unknown function {call.name!r}; this server offers knowledge_base")
    query = call.arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return error("knowledge_base needs a non-empty string argument 'query'")
    if org is None:
        return error("this call belongs to no organization, so there is no knowledge base to search")
    try:
        async with tenant_tx(pool, Tenant(org_id=org, role="system")) as conn:
            hits, _ = await knowledge.search(conn, query.strip()[:500], limit=3)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("knowledge search failed", extra={"error": type(exc).__name__})
        return error("the knowledge base is unavailable right now")
    if not hits:
        return m.ToolResult(toolCallId=call.id, name=call.name,
                            result=f"Nothing in the knowledge base matches {query.strip()[:100]!r}.")
    text = " | ".join(f"{h.title}: {h.text}" if h.title else h.text for h in hits)
    return m.ToolResult(toolCallId=call.id, name=call.name, result=" ".join(text.split())[:2000])
