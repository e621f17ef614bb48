"""Recorded-call audio: recognising the format by its bytes, checking that a file decodes whole,
and decoding it to 16 kHz PCM16 in chunks cut at quiet moments (PyAV: FFmpeg's libraries in a
wheel, no subprocess)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import av
import msgspec
import numpy as np

from coaching.errors import SparringError

__all__ = [
    "CONTENT_TYPES", "AudioFormat", "AudioInfo", "UndecodableAudio", "decode_chunks", "probe", "quiet_cut", "sniff",
]

AudioFormat = Literal["wav", "mp3", "m4a", "aac", "ogg", "webm", "flac"]
CONTENT_TYPES: dict[str, str] = {
    "wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "aac": "audio/aac", "ogg": "audio/ogg",
    "webm": "audio/webm", "flac": "audio/flac",
}
RATE_HZ = 16000
_FRAME_MS = 20
_CUT_SEARCH_MS = 5000  # a chunk ends at the quietest 20 ms of its last 5 s (not inside a word)
_TRUNCATED_SHARE = 0.95  # decoded under 95% of what the header declares: the file was cut short


class UndecodableAudio(SparringError):
    """The bytes are not audio that decodes whole; the message says what is wrong."""


class AudioInfo(msgspec.Struct, frozen=True):
    format: str
    codec: str
    channels: int
    sample_rate_hz: int
    duration_ms: int
    speaker_channels: int  # 2: stereo with one voice per side; 1: mono, or both sides the same


def sniff(head: bytes) -> AudioFormat | None:
    """The container, from the first bytes of a file (at least 12), whatever its name or declared
    type; None when it is none of the formats we take."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # Matroska/WebM (EBML)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "m4a"
    if head[:3] == b"ID3":
        return "mp3"  # an ID3 tag leads MP3 files (FLAC with ID3 is rare and FFmpeg decodes it too)
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0b11
        return "aac" if layer == 0 and head[1] & 0xF6 == 0xF0 else "mp3" if layer != 0 else None
    return None


def _declared_ms(container: Any, stream: Any) -> int | None:
    if stream.duration is not None and stream.time_base is not None:
        return int(stream.duration * stream.time_base * 1000)
    if container.duration is not None:
        return int(container.duration / 1000)  # AV_TIME_BASE: microseconds
    return None


def _wav_declared_bytes(path: Path) -> tuple[int, int] | None:
    """A WAV file's declared audio bytes and those actually after its `data` header (FFmpeg
    reads what is there without a word about the rest)."""
    with path.open("rb") as f:
        head = f.read(64 * 1024)
    size = path.stat().st_size
    at = 12
    while at + 8 <= len(head):
        chunk_id, chunk_size = head[at:at + 4], int.from_bytes(head[at + 4:at + 8], "little")
        if chunk_id == b"data":
            return (chunk_size, size - at - 8) if chunk_size not in (0, 0xFFFFFFFF) else None
        at += 8 + chunk_size + (chunk_size & 1)
    return None


def probe(path: Path, fmt: str) -> AudioInfo:
    """Decodes the whole file once (in a thread: it is CPU work) to learn its real length.

    Raises:
        UndecodableAudio: no audio stream, a decoding error, or fewer samples than the header
            declares (a truncated file).
    """
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.audio:
                raise UndecodableAudio("the file has no audio track")
            stream = container.streams.audio[0]
            channels, rate = stream.codec_context.channels, stream.codec_context.sample_rate
            codec = stream.codec_context.name
            declared = _declared_ms(container, stream)
            samples = 0
            # Stereo: how alike the two sides are (a mono call saved as stereo must not be split).
            sides = av.AudioResampler(format="fltp", layout="stereo", rate=8000) if channels == 2 else None
            energy = np.zeros(3)  # left, right, difference
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
                for out in sides.resample(frame) if sides is not None else ():
                    lr = out.to_ndarray().astype(np.float64)
                    energy += [(lr[0] ** 2).sum(), (lr[1] ** 2).sum(), ((lr[0] - lr[1]) ** 2).sum()]
    except UndecodableAudio:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UndecodableAudio(f"the audio could not be decoded ({type(exc).__name__}): the file is damaged, "
                               "truncated or not audio") from None
    if not rate or samples == 0:
        raise UndecodableAudio("the file holds no decodable audio")
    decoded = samples * 1000 // rate
    wav = _wav_declared_bytes(path) if fmt == "wav" else None
    if wav is not None and wav[1] < wav[0] * _TRUNCATED_SHARE:
        raise UndecodableAudio(f"the file is truncated: its header declares {wav[0]} bytes of audio, "
                               f"only {wav[1]} are there")
    if declared is not None and decoded < declared * _TRUNCATED_SHARE - 250:
        raise UndecodableAudio(f"the file is truncated: its header says {declared / 1000:.1f} s, "
                               f"only {decoded / 1000:.1f} s is there")
    separate = channels == 2 and energy[2] > 0.05 * (energy[0] + energy[1]) and \
        min(energy[0], energy[1]) > 0.001 * max(energy[0], energy[1])
    return AudioInfo(fmt, codec, int(channels or 1), int(rate), int(decoded), 2 if separate else 1)


def quiet_cut(pcm: np.ndarray, *, search_ms: int = _CUT_SEARCH_MS) -> int:
    """Where to end a chunk of 16 kHz samples (n, channels): the start of the quietest 20 ms frame
    within its last `search_ms`, so that no word is cut in two (the whole length when shorter)."""
    frame = RATE_HZ * _FRAME_MS // 1000
    n = int(pcm.shape[0])
    search = min(n, RATE_HZ * search_ms // 1000) // frame * frame
    if search < frame * 2:
        return n
    tail = pcm[n - search:].astype(np.float32)
    energy = (tail.reshape(-1, frame, pcm.shape[1]) ** 2).mean(axis=(1, 2))
    return n - search + int(np.argmin(energy)) * frame


def decode_chunks(path: Path, *, channels: int, chunk_ms: int, start_ms: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """The audio from `start_ms` on as 16 kHz int16 arrays (samples, channels), about `chunk_ms`
    each, cut at quiet moments. The cuts depend only on the audio and `start_ms`, so resuming from
    a chunk's end yields the same chunks after it as the first pass did.

    Yields:
        (start_ms, samples) per chunk.
    """
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    if chunk_ms < 2 * _CUT_SEARCH_MS:
        raise ValueError(f"chunk_ms must be at least {2 * _CUT_SEARCH_MS}, got {chunk_ms}")
    resampler = av.AudioResampler(format="s16", layout="mono" if channels == 1 else "stereo", rate=RATE_HZ)
    chunk = RATE_HZ * chunk_ms // 1000
    skip = RATE_HZ * start_ms // 1000
    position = start_ms * RATE_HZ // 1000  # in samples, of the first buffered sample
    buffered: list[np.ndarray] = []
    size = 0
    with av.open(str(path), mode="r") as container:
        stream = container.streams.audio[0]
        frames = (f for packet in container.demux(stream) for f in packet.decode())
        for frame in frames:
            for out in resampler.resample(frame):
                data = out.to_ndarray().reshape(-1, channels)
                if skip:
                    dropped = min(skip, data.shape[0])
                    data, skip = data[dropped:], skip - dropped
                if data.shape[0] == 0:
                    continue
                buffered.append(data)
                size += data.shape[0]
                while size >= chunk:
                    pcm = np.concatenate(buffered)
                    cut = quiet_cut(pcm[:chunk])
                    yield position * 1000 // RATE_HZ, pcm[:cut]
                    position += cut
                    buffered, size = [pcm[cut:]], pcm.shape[0] - cut
        for out in resampler.resample(None):
            buffered.append(out.to_ndarray().reshape(-1, channels))
    if skip == 0 and buffered:
        pcm = np.concatenate(buffered)
        if pcm.shape[0]:
            yield position * 1000 // RATE_HZ, pcm
