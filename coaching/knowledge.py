"""Retrieval's pure parts: splitting a document into chunks, fusing ranked lists (reciprocal rank
fusion), and the extractive answer given when no LLM is configured. No I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

__all__ = ["RRF_K", "Chunk", "Ranked", "chunk_text", "extractive_answer", "fuse", "token_estimate"]

RRF_K = 60  # the constant of Cormack et al. (2009): dampens the weight of the very top ranks
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class Chunk(msgspec.Struct, frozen=True):
    text: str
    heading: str | None  # the nearest heading above it (markdown), for context in citations


class Ranked(msgspec.Struct, frozen=True):
    """One fused result: its key and score, and its rank in each list it appeared in (1-based)."""

    key: str
    score: float
    vector_rank: int | None
    text_rank: int | None


def token_estimate(text: str) -> int:
    """About how many model tokens a text is (English: ~1.3 per word)."""
    return int(len(text.split()) * 1.3) + 1


def _sections(text: str) -> list[tuple[str | None, list[str]]]:
    """(heading, paragraphs) in document order; text before any heading has heading None."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            sections[-1][1].append(" ".join(paragraph).strip())
            paragraph.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        heading = _HEADING.match(line)
        if heading:
            flush()
            sections.append((heading.group(1), []))
        elif not line.strip():
            flush()
        else:
            paragraph.append(line.strip())
    flush()
    return [(h, [p for p in ps if p]) for h, ps in sections if any(ps)]


def _pieces(paragraph: str, max_tokens: int) -> list[str]:
    """A paragraph longer than a chunk, cut at sentence ends (or words, for one huge sentence)."""
    if token_estimate(paragraph) <= max_tokens:
        return [paragraph]
    out: list[str] = []
    words_per_piece = max(1, int(max_tokens / 1.3))
    for sentence in _SENTENCE.split(paragraph):
        words = sentence.split()
        out += [" ".join(words[i:i + words_per_piece]) for i in range(0, len(words), words_per_piece)]
    return out


def chunk_text(text: str, *, max_tokens: int = 500, overlap_tokens: int = 60) -> list[Chunk]:
    """Chunks by headings, then paragraphs, each up to about `max_tokens`; a chunk that continues a
    section starts with the last ~`overlap_tokens` of the one before, so no passage loses its context.

    Args:
        max_tokens: the size a chunk may reach (estimated, `token_estimate`).
        overlap_tokens: how much of the previous chunk of the same section is repeated.

    Raises:
        ValueError: max_tokens < 20, or overlap_tokens not below half of it.
    """
    if max_tokens < 20 or not 0 <= overlap_tokens < max_tokens // 2:
        raise ValueError(f"max_tokens must be >= 20 and 0 <= overlap_tokens < max_tokens / 2,"
                         f" got {max_tokens}, {overlap_tokens}")
    chunks: list[Chunk] = []
    for heading, paragraphs in _sections(text):
        prefix = f"{heading}\n" if heading else ""
        current: list[str] = []
        for paragraph in paragraphs:
            for piece in _pieces(paragraph, max_tokens - token_estimate(prefix)):
                if current and token_estimate(prefix + " ".join(current + [piece])) > max_tokens:
                    chunks.append(Chunk(prefix + "\n".join(current), heading))
                    tail = " ".join(current).split()
                    keep = int(overlap_tokens / 1.3)
                    current = [" ".join(tail[-keep:])] if keep else []
                current.append(piece)
        if current:
            chunks.append(Chunk(prefix + "\n".join(current), heading))
    return chunks


def fuse(vector_keys: Sequence[str], text_keys: Sequence[str], *, k: int = RRF_K) -> list[Ranked]:
    """Reciprocal rank fusion of two best-first lists: score = sum of 1 / (k + rank). Best first;
    ties go to the better vector rank, then the key (so the order is stable)."""
    ranks: dict[str, list[int | None]] = {}
    for rank, key in enumerate(vector_keys, 1):
        ranks.setdefault(key, [None, None])[0] = rank
    for rank, key in enumerate(text_keys, 1):
        ranks.setdefault(key, [None, None])
        if ranks[key][1] is None:
            ranks[key][1] = rank
    fused = [Ranked(key, sum(1.0 / (k + r) for r in pair if r is not None), pair[0], pair[1])
             for key, pair in ranks.items()]
    fused.sort(key=lambda r: (-r.score, r.vector_rank or 10**9, r.key))
    return fused


def extractive_answer(question: str, passages: Sequence[tuple[int, str]], *, max_sentences: int = 4) -> str:
    """The answer without an LLM: the passages' sentences that share the most words with the
    question (best passage first when none do), each cited `[n]`, under a label saying what it is.

    Args:
        passages: (citation number, text), best first.
    """
    label = "No AI model is configured, so here are the most relevant passages from your playbook:"
    if not passages:
        return "No AI model is configured, and nothing in your knowledge base matches that question yet."
    words = {w for w in re.findall(r"[a-z']+", question.lower()) if len(w) > 3}
    scored: list[tuple[int, int, int, int, str]] = []  # (-overlap, passage order, position, n, sentence)
    for order, (n, text) in enumerate(passages):
        for position, sentence in enumerate(_SENTENCE.split(" ".join(text.split()))):
            if sentence.strip():
                overlap = len(words & set(re.findall(r"[a-z']+", sentence.lower())))
                scored.append((-overlap, order, position, n, sentence.strip()))
    scored.sort()
    matching = [s for s in scored if s[0] < 0] or [s for s in scored if s[1] == 0]
    picked = sorted(matching[:max_sentences], key=lambda s: (s[1], s[2]))
    return label + "\n\n" + "\n".join(f"- {sentence} [{n}]" for _, _, _, n, sentence in picked)
