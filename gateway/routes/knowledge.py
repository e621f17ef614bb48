"""The knowledge base over HTTP: ingest a document (JSON text or a multipart file), list, read and
delete documents, and search (the same hybrid retrieval the VAPI tool and the chat use)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery

from gateway.auth.caller import CallerDep, TenantDb, require_role
from gateway.errors import ApiError
from gateway.knowledge.extract import MAX_DOCUMENT_BYTES, BadDocument, extract_text
from gateway.knowledge.service import KnowledgeBase, SearchItem
from storage import knowledge as store

__all__ = ["create_document", "delete_document", "get_document", "list_documents", "search_knowledge"]

_STAFF = ("coach", "admin")
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Source = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class DocumentIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    text: Annotated[str, msgspec.Meta(min_length=1)]
    source: Source = "playbook"


class DocumentCreated(msgspec.Struct):
    id: uuid.UUID
    chunks: int
    model: str | None


class DocumentOut(msgspec.Struct):
    id: uuid.UUID
    title: str
    source: str
    kind: str
    size_bytes: int
    chunks: int
    models: list[str]
    shared: bool  # the platform's (the starter playbook): read-only for the org
    created_by: uuid.UUID | None
    created_by_name: str | None
    created_at: datetime


class ChunkOut(msgspec.Struct):
    chunk_index: int
    text: str
    model: str | None


class DocumentDetail(DocumentOut):
    chunk_texts: list[ChunkOut]


class DocumentList(msgspec.Struct):
    items: list[DocumentOut]


class SearchOut(msgspec.Struct):
    items: list[SearchItem]
    mode: str  # hybrid (vectors and full text) or lexical (full text only)
    model: str | None


def _out(d: store.DocumentRow) -> DocumentOut:
    return DocumentOut(d.id, d.title, d.source, d.kind, d.size_bytes, d.chunks, d.models, d.org_id is None,
                       d.created_by, d.created_by_name, d.created_at)


def _bad(exc: BadDocument, field: str) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, field=field)


async def _from_multipart(request: Request[Any, Any, Any]) -> tuple[str, str, str, bytes, str | None]:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "missing_file", "send the document as the multipart field 'file'", field="file")
    data = await upload.read(MAX_DOCUMENT_BYTES + 1)
    name = upload.filename or ""
    title = str(form.get("title") or "").strip() or name.rsplit(".", 1)[0] or "Untitled"
    source = str(form.get("source") or "").strip() or "playbook"
    return title[:200], source[:100], "file", data, name


@post("/api/knowledge", tags=["knowledge"], status_code=201,
      summary="Add a document (JSON {title, source, text}, or multipart file: text, markdown, PDF, DOCX)")
async def create_document(request: Request[Any, Any, Any], caller: CallerDep) -> DocumentCreated:
    require_role(caller, *_STAFF)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        title, source, field, data, filename = await _from_multipart(request)
    elif content_type.startswith("application/json"):
        try:
            body = msgspec.convert(await request.json(), DocumentIn)
        except msgspec.ValidationError as exc:
            raise ApiError(400, "invalid_body", str(exc)) from None
        title, source, field, data, filename = body.title, body.source, "text", body.text.encode(), "text.md"
    else:
        raise ApiError(415, "unsupported_media_type", "send JSON {title, source, text} or a multipart form with 'file'")
    try:
        extracted = extract_text(data, filename)
    except BadDocument as exc:
        raise _bad(exc, field) from None
    knowledge: KnowledgeBase = request.app.state.knowledge
    done = await knowledge.ingest(caller.tenant, title=title, source=source, kind=extracted.kind,
                                  text=extracted.text, size_bytes=len(data), created_by=caller.user_id)
    return DocumentCreated(done.id, done.chunks, done.model)


@get("/api/knowledge", tags=["knowledge"], summary="The org's documents and the shared ones, newest first")
async def list_documents(caller: CallerDep, db: TenantDb) -> DocumentList:
    return DocumentList([_out(d) for d in await store.list_documents(db)])


@get("/api/knowledge/{document_id:uuid}", tags=["knowledge"], summary="A document with its chunks")
async def get_document(caller: CallerDep, db: TenantDb, document_id: FromPath[uuid.UUID]) -> DocumentDetail:
    doc = await store.get_document(db, document_id)
    if doc is None:
        raise ApiError(404, "not_found", "no such document")
    chunks = [ChunkOut(c.chunk_index, c.text, c.embedding_model) for c in await store.document_chunks(db, doc.id)]
    return DocumentDetail(**msgspec.structs.asdict(_out(doc)), chunk_texts=chunks)


@delete("/api/knowledge/{document_id:uuid}", tags=["knowledge"], status_code=204, summary="Delete a document")
async def delete_document(caller: CallerDep, db: TenantDb, document_id: FromPath[uuid.UUID]) -> None:
    require_role(caller, *_STAFF)
    doc = await store.get_document(db, document_id)
    if doc is None:
        raise ApiError(404, "not_found", "no such document")
    if doc.org_id is None:
        raise ApiError(403, "shared_document", "the shared starter playbook cannot be deleted by an organization")
    await store.delete_document(db, document_id)


@get("/api/knowledge/search", tags=["knowledge"],
     summary="Hybrid search (vectors and full text, reciprocal rank fusion): best chunks first")
async def search_knowledge(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                           q: FromQuery[Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]],
                           source: FromQuery[str | None] = None,
                           limit: FromQuery[Annotated[int, msgspec.Meta(ge=1, le=50)]] = 5) -> SearchOut:
    knowledge: KnowledgeBase = request.app.state.knowledge
    items, mode = await knowledge.search(db, q, source=source or None, limit=limit)
    return SearchOut(items, mode, knowledge.model if mode == "hybrid" else None)
