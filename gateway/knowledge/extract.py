"""Text out of an uploaded document: plain text, markdown, PDF (pypdf) or DOCX (its XML, read
directly). Recognised by its bytes, not its name; each failure says what to send instead."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Literal
from xml.etree import ElementTree

import msgspec
import pypdf
from pypdf.errors import PyPdfError

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_TEXT_CHARS", "BadDocument", "Extracted", "extract_text"]

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_TEXT_CHARS = 2_000_000
Kind = Literal["text", "markdown", "pdf", "docx"]
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_FORMATS = "plain text, markdown, PDF or DOCX"
_MARKDOWN = re.compile(r"^\s{0,3}(#{1,6}\s|[-*]\s|\d+\.\s)", re.MULTILINE)


class BadDocument(Exception):
    """Args:
        status: 400 (broken or empty), 413 (too large) or 415 (not a format we read).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Extracted(msgspec.Struct, frozen=True):
    kind: Kind
    text: str


def _pdf(data: bytes) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise BadDocument(400, "encrypted_document", "the PDF is password-protected; upload an unlocked copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadDocument(400, "unreadable_document", f"the PDF could not be read ({type(exc).__name__});"
                          " export it again or paste its text") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


def _docx(archive: zipfile.ZipFile) -> str:
    try:
        root = ElementTree.fromstring(archive.read("word/document.xml"))
    except (ElementTree.ParseError, KeyError, zipfile.BadZipFile) as exc:
        raise BadDocument(400, "unreadable_document", f"the DOCX could not be read ({type(exc).__name__})") from None
    lines = []
    for paragraph in root.iter(f"{_W}p"):
        text = "".join(t.text or "" for t in paragraph.iter(f"{_W}t")).strip()
        if not text:
            continue
        style = paragraph.find(f"{_W}pPr/{_W}pStyle")
        level = re.fullmatch(r"(?i)heading\s*([1-6])", (style.get(f"{_W}val") or "") if style is not None else "")
        lines.append(f"{'#' * int(level.group(1))} {text}" if level else text)
    return "\n\n".join(lines)


def extract_text(data: bytes, filename: str | None = None) -> Extracted:
    """Raises:
        BadDocument: too large, not a format we read, unreadable, or without any text.
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise BadDocument(413, "document_too_large",
                          f"documents may be at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB; split it")
    kind: Kind
    if data.startswith(b"%PDF-"):
        kind, text = "pdf", _pdf(data)
    elif data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "word/document.xml" not in archive.namelist():
                    raise BadDocument(415, "unsupported_document", f"that archive is not a DOCX; send {_FORMATS}")
                kind, text = "docx", _docx(archive)
        except zipfile.BadZipFile:
            raise BadDocument(400, "unreadable_document", "the DOCX is not a valid zip file") from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadDocument(415, "unsupported_document", f"that file is not {_FORMATS} (UTF-8)") from None
        if "\x00" in text:
            raise BadDocument(415, "unsupported_document", f"that file is binary; send {_FORMATS}")
        named_md = (filename or "").lower().endswith((".md", ".markdown"))
        kind = "markdown" if named_md or _MARKDOWN.search(text) else "text"
    text = text.replace("\x00", "").strip()
    if not text:
        raise BadDocument(400, "empty_document", "no text was found in that document (a scanned PDF needs OCR first)")
    if len(text) > MAX_TEXT_CHARS:
        raise BadDocument(413, "document_too_large",
                          f"the document's text is over {MAX_TEXT_CHARS:,} characters; split it")
    return Extracted(kind, text)
