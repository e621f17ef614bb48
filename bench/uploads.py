"""Benchmark for uploaded calls with the local model.

    .venv/bin/python bench/uploads.py [--minutes 5]

1. Real-time factor: a synthesized two-voice mono call of `--minutes` (MP3), decoded in 60 s
   chunks, transcribed with word timestamps, split at speech turns and given voice summaries,
   exactly as the `transcribe_upload` job does; wall time over audio time (target <= 0.1), and the
   word error rate.
2. Live calls while it transcribes: the live-call transcription of a 3 s utterance (what each rep
   turn costs) once a second in the same inference pool, idle and then while the long upload is
   transcribed in the pool's background lane; p50/p95 of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coaching.audio.decode import decode_chunks  # noqa: E402
from coaching.providers.inference import InferencePool  # noqa: E402
from coaching.providers.stt.local import WhisperRecordingSTT, WhisperSTT  # noqa: E402
from coaching.speakers import label_speakers  # noqa: E402
from gateway.jobs.uploads import _mono_segments  # noqa: E402
from tests.fixtures.recordings import dialogue, mix, write_audio  # noqa: E402
from tests.fixtures.speech import speech_pcm, word_error_rate  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def long_call(minutes: float, folder: Path) -> tuple[Path, str, float]:
    rep, buyer, script = dialogue()
    one = mix(rep, buyer)
    repeats = max(1, round(minutes * 60 * 32000 / len(one)))
    path = write_audio(folder / "long.mp3", one * repeats, "mp3")
    return path, " ".join(t for _, t in script * repeats), len(one) * repeats / 32000


async def transcribe(stt: WhisperRecordingSTT, path: Path) -> list:
    segments = []
    for start_ms, pcm in decode_chunks(path, channels=1, chunk_ms=60_000):
        mono = np.ascontiguousarray(pcm[:, 0])
        found = await stt.transcribe_timed(mono.tobytes(), offset_ms=start_ms, words=True)
        segments += await asyncio.to_thread(_mono_segments, mono, start_ms, found)
    return segments


async def live_latencies(live: WhisperSTT, utterance: bytes, stop: asyncio.Event, every_s: float = 1.0,
                         most: int | None = None) -> list[float]:
    out: list[float] = []
    while not stop.is_set() and (most is None or len(out) < most):
        start = time.monotonic()
        await live.transcribe(utterance)
        out.append((time.monotonic() - start) * 1000)
        await asyncio.sleep(max(0.0, every_s - (time.monotonic() - start)))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sparring-bench-uploads-"))
    path, reference, audio_s = long_call(args.minutes, folder)
    pool = InferencePool(max_workers=2, max_waiting=8)
    stt, live = WhisperRecordingSTT(pool), WhisperSTT(pool)
    live.warm_up()
    await stt.transcribe_timed(speech_pcm("Warming up the model."), offset_ms=0, words=True)

    start = time.monotonic()
    segments = await transcribe(stt, path)
    took_s = time.monotonic() - start
    labels, method = label_speakers([s.text for s in segments], [s.voice for s in segments],
                                    [s.end_ms - s.start_ms for s in segments])
    wer = word_error_rate(reference, " ".join(s.text for s in segments))
    print(f"recording: {audio_s / 60:.1f} min mono MP3, {len(segments)} segments, speakers by {method}")
    print(f"local transcription: {took_s:.1f} s, real-time factor {took_s / audio_s:.3f} (target <= 0.1), "
          f"WER {wer:.1%}")

    utterance = speech_pcm("How does your month end close process work today, and who signs off on it?")
    stop = asyncio.Event()
    idle = await live_latencies(live, utterance, stop, most=15)
    busy_task = asyncio.create_task(live_latencies(live, utterance, stop))
    start = time.monotonic()
    await transcribe(stt, path)
    during_s = time.monotonic() - start
    stop.set()
    busy = await busy_task
    print(f"live utterance STT, pool idle: p50 {pct(idle, 50):.0f} ms, p95 {pct(idle, 95):.0f} ms ({len(idle)})")
    print(f"live utterance STT while the upload transcribes: p50 {pct(busy, 50):.0f} ms, p95 {pct(busy, 95):.0f} ms "
          f"({len(busy)}; the upload took {during_s:.1f} s, RTF {during_s / audio_s:.3f})")
    print(f"p50 change: {statistics.median(busy) / statistics.median(idle):.2f}x")
    pool.close()


if __name__ == "__main__":
    asyncio.run(main())
