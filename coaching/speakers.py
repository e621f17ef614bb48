"""Who said what in a mono recording, from the audio alone: speech turns found at pauses, a voice
summary per turn (mean and spread of a log-mel spectrum), and the turns clustered into two voices
(two-means in numpy; no model to download). When the two clusters do not separate (one voice, or
two too alike), speakers alternate at each pause instead. Pure: arrays in, labels out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec
import numpy as np

from coaching.providers.stt.base import TimedWord

__all__ = [
    "LabelMethod", "Piece", "TimedWord", "Turn", "label_speakers", "speech_turns", "split_by_turns",
    "voice_features",
]

RATE_HZ = 16000
_FRAME = 320  # 20 ms
_MEL_BANDS = 24
_FFT = 512
_HOP = 160  # 10 ms
_SEPARATION = 2.0  # centroid distance over mean spread below this: not two distinct voices

LabelMethod = Literal["voice-clustering", "pauses"]


class Turn(msgspec.Struct, frozen=True):
    start_ms: int
    end_ms: int


class Piece(msgspec.Struct, frozen=True):
    """Words of one turn: a transcript segment with one speaker."""

    start_ms: int
    end_ms: int
    text: str


def speech_turns(pcm: np.ndarray, *, offset_ms: int = 0, pause_ms: int = 400, min_turn_ms: int = 150) -> list[Turn]:
    """Stretches of speech in 16 kHz mono int16 samples, split where the level stays low for at
    least `pause_ms` (the threshold adapts to the recording's own floor and peaks)."""
    samples = pcm.reshape(-1).astype(np.float32) / 32768.0
    n = samples.size // _FRAME
    if n == 0:
        return []
    energy = 10 * np.log10((samples[: n * _FRAME].reshape(n, _FRAME) ** 2).mean(axis=1) + 1e-10)
    floor, peak = np.percentile(energy, 10), np.percentile(energy, 97)
    if peak - floor < 10:  # no contrast: all silence, or all noise
        return [] if peak < -50 else [Turn(offset_ms, offset_ms + n * 20)]
    voiced = energy > floor + 0.3 * (peak - floor)
    turns: list[Turn] = []
    start: int | None = None
    quiet = 0
    gap = max(1, pause_ms // 20)
    for i, on in enumerate(voiced):
        if on:
            if start is None:
                start = i
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= gap:
                end = i - quiet + 1
                if (end - start) * 20 >= min_turn_ms:
                    turns.append(Turn(offset_ms + start * 20, offset_ms + end * 20))
                start, quiet = None, 0
    if start is not None:
        end = n - quiet
        if (end - start) * 20 >= min_turn_ms:
            turns.append(Turn(offset_ms + start * 20, offset_ms + end * 20))
    return turns


def split_by_turns(words: Sequence[TimedWord], turns: Sequence[Turn]) -> list[Piece]:
    """Groups words by the turn their middle falls in (the nearest turn when none), so that a
    transcriber's segment spanning two speakers becomes two pieces."""
    if not turns:
        return [Piece(words[0].start_ms, words[-1].end_ms, " ".join(w.text for w in words))] if words else []
    pieces: list[Piece] = []
    current: int | None = None
    group: list[TimedWord] = []
    for word in words:
        middle = (word.start_ms + word.end_ms) / 2
        index = min(range(len(turns)), key=lambda i: 0 if turns[i].start_ms <= middle <= turns[i].end_ms
                    else min(abs(turns[i].start_ms - middle), abs(turns[i].end_ms - middle)))
        if current is not None and index != current and group:
            pieces.append(Piece(group[0].start_ms, group[-1].end_ms, " ".join(w.text for w in group)))
            group = []
        current = index
        group.append(word)
    if group:
        pieces.append(Piece(group[0].start_ms, group[-1].end_ms, " ".join(w.text for w in group)))
    return pieces


def _mel_filters() -> np.ndarray:
    def mel(hz: np.ndarray) -> np.ndarray:
        return np.asarray(2595 * np.log10(1 + hz / 700))

    def hz(m: np.ndarray) -> np.ndarray:
        return np.asarray(700 * (10 ** (m / 2595) - 1))

    edges = hz(np.linspace(mel(np.array(80.0)), mel(np.array(7600.0)), _MEL_BANDS + 2))
    bins = np.floor((_FFT + 1) * edges / RATE_HZ).astype(int)
    filters = np.zeros((_MEL_BANDS, _FFT // 2 + 1), dtype=np.float32)
    for b in range(_MEL_BANDS):
        left, middle, right = bins[b], max(bins[b + 1], bins[b] + 1), max(bins[b + 2], bins[b + 1] + 2)
        filters[b, left:middle] = np.linspace(0, 1, middle - left, endpoint=False)
        filters[b, middle:right] = np.linspace(1, 0, right - middle, endpoint=False)
    return filters


_FILTERS = _mel_filters()
_WINDOW = np.hanning(400).astype(np.float32)


def _pitch_hz(samples: np.ndarray) -> float:
    """The median fundamental frequency of the louder, clearly periodic 40 ms frames
    (autocorrelation peak between 60 and 400 Hz); 0 when none is periodic."""
    size, hop = 640, 320
    count = 1 + (samples.size - size) // hop
    frames = samples[np.arange(size)[None, :] + hop * np.arange(count)[:, None]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames ** 2).mean(axis=1)
    loud = frames[energy >= np.median(energy)]
    spectrum = np.fft.rfft(loud, n=2 * size)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[:, :size]
    low, high = RATE_HZ // 400, RATE_HZ // 60
    lags = low + np.argmax(autocorrelation[:, low:high], axis=1)
    strength = autocorrelation[np.arange(len(lags)), lags] / (autocorrelation[:, 0] + 1e-12)
    voiced = lags[strength > 0.3]
    return float(RATE_HZ / np.median(voiced)) if voiced.size else 0.0


def voice_features(pcm: np.ndarray) -> list[float]:
    """A voice summary of 16 kHz mono int16 speech: the log of its median pitch, then per mel band
    the mean log energy over its louder half of frames (quiet frames say little about the voice)."""
    samples = pcm.reshape(-1).astype(np.float32) / 32768.0
    if samples.size < 1280:
        return [0.0] * (1 + _MEL_BANDS)
    count = 1 + (samples.size - 400) // _HOP
    index = np.arange(400)[None, :] + _HOP * np.arange(count)[:, None]
    frames = samples[index] * _WINDOW
    spectrum = np.abs(np.fft.rfft(frames, n=_FFT)) ** 2
    logmel = np.log(spectrum @ _FILTERS.T + 1e-8)
    loud = logmel.sum(axis=1) >= np.median(logmel.sum(axis=1))
    chosen = logmel[loud] if loud.any() else logmel
    # Subtracting the frame's mean level keeps loudness (distance to the microphone) out of it.
    shaped = chosen - chosen.mean(axis=1, keepdims=True)
    pitch = _pitch_hz(samples)
    return [float(np.log(pitch)) if pitch > 0 else 0.0, *(float(v) for v in shaped.mean(axis=0))]


def _two_means(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Labels 0/1 and how well they separate (centroid distance over the mean spread)."""
    first = int(np.argmax(weights))
    second = int(np.argmax(((points - points[first]) ** 2).sum(axis=1)))
    centroids = points[[first, second]].copy()
    labels = np.zeros(len(points), dtype=int)
    for _ in range(50):
        distances = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        new = distances.argmin(axis=1)
        if (new == labels).all() and _ > 0:
            break
        labels = new
        for k in (0, 1):
            members = labels == k
            if members.any():
                centroids[k] = np.average(points[members], axis=0, weights=weights[members])
    if len(set(labels.tolist())) < 2:
        return labels, 0.0
    spread = float(np.mean([np.sqrt(((points[labels == k] - centroids[k]) ** 2).sum(axis=1)).mean()
                            for k in (0, 1)]))
    between = float(np.sqrt(((centroids[0] - centroids[1]) ** 2).sum()))
    return labels, between / max(spread, 1e-6)


def label_speakers(texts: Sequence[str], voices: Sequence[Sequence[float] | None],
                   durations_ms: Sequence[int]) -> tuple[list[Literal["rep", "buyer"]], LabelMethod]:
    """Rep or buyer for each segment, in order. Two voices: the one that asks more questions (then:
    says more words) is the rep. One voice found: speakers alternate segment by segment.

    Raises:
        ValueError: the three sequences differ in length.
    """
    if not len(texts) == len(voices) == len(durations_ms):
        raise ValueError(f"texts, voices and durations_ms differ in length: {len(texts)}, {len(voices)}, "
                         f"{len(durations_ms)}")
    if not texts:
        return [], "pauses"
    usable = [i for i, v in enumerate(voices) if v is not None and durations_ms[i] >= 300 and v and v[0] > 0]
    labels: list[int] | None = None
    if len(usable) >= 2:
        points = np.array([voices[i] for i in usable], dtype=np.float64)
        points = (points - points.mean(axis=0)) / (points.std(axis=0) + 1e-6)
        # Pitch tells voices apart best: it weighs as much as the whole spectrum.
        points[:, 0] *= np.sqrt(max(1, points.shape[1] - 1))
        found, separation = _two_means(points, np.array([durations_ms[i] for i in usable], dtype=np.float64))
        if separation >= _SEPARATION:
            by_index = dict(zip(usable, found.tolist(), strict=True))
            labels = []
            for i in range(len(texts)):  # a segment too short to judge: its neighbour's voice
                known = by_index.get(i)
                labels.append(known if known is not None else (labels[-1] if labels else found[0]))
    method: LabelMethod = "voice-clustering"
    if labels is None:
        labels, method = [i % 2 for i in range(len(texts))], "pauses"

    def weight(k: int) -> tuple[int, int]:
        chosen = [t for t, label in zip(texts, labels, strict=True) if label == k]
        return sum(t.count("?") for t in chosen), sum(len(t.split()) for t in chosen)

    rep = 0 if weight(0) >= weight(1) else 1
    return ["rep" if label == rep else "buyer" for label in labels], method
