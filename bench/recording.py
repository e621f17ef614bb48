"""What recording a call costs: today's 16 kHz stereo PCM against Opus (PyAV), end to end.

    .venv/bin/python bench/recording.py [--minutes M]

For M call-minutes of two-sided speech, fed as the gateway feeds its recorder (a 20 ms rep frame
at a time, the persona's audio interleaved by `StereoRecorder`), it times:
- PCM, as recorded today: the interleaved frames written with the real `BlobWriter` (256 KB
  chunks, each its own transaction) into a migrated embedded Postgres;
- Opus: the same frames encoded by libopus through PyAV into WebM (as a live recorder would, a
  frame at a time, 32 kbit/s, at libopus complexity 10, 5 and 0), and the cheapest one's result
  written with the same `BlobWriter`.
For each: CPU of this process (the gateway's share) and of Postgres, per call-minute, and bytes
per call-minute. It decodes the Opus output back and checks its length (the work happened).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from coaching.audio.recording import RECORDING_CONTENT_TYPE, StereoRecorder  # noqa: E402
from storage.blobs import CHUNK_BYTES, BlobWriter  # noqa: E402
from storage.database import create_pool  # noqa: E402
from storage.embedded import start_embedded_postgres  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.tenancy import Tenant  # noqa: E402
from tests.fixtures.speech import speech_pcm  # noqa: E402

RATE = 16_000
FRAME = RATE // 50  # samples per 20 ms frame
OPUS_BITRATE = 32_000  # stereo speech; both sides stay intelligible for review
COMPLEXITIES = (10, 5, 0)  # libopus's default first; the cheapest last (the one stored and compared)


def postgres_cpu_s(data_dir: Path) -> float:
    """CPU seconds of the embedded server whose data is in `data_dir` (its postmaster and backends)."""
    total = 0.0
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and any(str(data_dir) in part for part in proc.info["cmdline"] or []):
            for each in [proc, *proc.children(recursive=True)]:
                try:
                    times = each.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
    return total


def call_minute_frames(minutes: float) -> tuple[list[bytes], list[bytes]]:
    """Rep frames and the persona's audio for `minutes` of a call: they take turns."""
    rep_line = speech_pcm("How does your month end close process work today, and who signs off on it?")
    persona_line = speech_pcm("It takes us eight days and honestly the team hates it every single month.")
    total = int(minutes * 60 * RATE) * 2
    turns = total // (len(rep_line) + len(persona_line)) + 1
    rep = ((rep_line + bytes(len(persona_line))) * turns)[:total]
    persona = ((bytes(len(rep_line)) + persona_line) * turns)[:total]
    step = FRAME * 2
    return [rep[i:i + step] for i in range(0, total, step)], [persona[i:i + step] for i in range(0, total, step)]


def interleave(rep: list[bytes], persona: list[bytes]) -> list[bytes]:
    """As `LiveCall` records: a frame at a time into the recorder, a blob chunk at a time out."""
    recorder = StereoRecorder()
    out = []
    for r, p in zip(rep, persona, strict=True):
        recorder.persona(p)
        recorder.rep(r)
        if recorder.pending_bytes >= CHUNK_BYTES:
            out.append(recorder.drain())
    if tail := recorder.flush():
        out.append(tail)
    return out


class OpusRecorder:
    """A frame at a time into WebM/Opus in memory, as a live recorder would."""

    def __init__(self, complexity: int) -> None:
        self.buffer = io.BytesIO()
        self.container = av.open(self.buffer, mode="w", format="webm")
        self.stream = self.container.add_stream("libopus", rate=RATE, layout="stereo", options={
            "compression_level": str(complexity), "application": "voip"})
        self.stream.bit_rate = OPUS_BITRATE
        self.pts = 0

    def add(self, stereo: bytes) -> None:
        samples = np.frombuffer(stereo, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate, frame.pts = RATE, self.pts
        self.pts += samples.shape[1] // 2
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> bytes:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self.buffer.getvalue()


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / 48_000


async def store(pool: asyncpg.Pool, tenant: Tenant, content_type: str, chunks: list[bytes]) -> None:
    async with BlobWriter(pool, tenant, content_type=content_type) as blob:
        for chunk in chunks:
            await blob.write(chunk)


async def run(dsn: str, data_dir: Path, minutes: float) -> None:
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    org = uuid.uuid4()
    await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'bench')", org)
    await conn.close()
    pool = await create_pool(dsn, min_size=1, max_size=2)
    tenant = Tenant(org_id=org, role="system")
    rep, persona = call_minute_frames(minutes)

    cpu0 = time.process_time()
    stereo = interleave(rep, persona)
    interleave_s = time.process_time() - cpu0

    cpu0, pg0 = time.process_time(), postgres_cpu_s(data_dir)
    await store(pool, tenant, RECORDING_CONTENT_TYPE, stereo)
    pcm_cpu, pcm_pg = time.process_time() - cpu0, postgres_cpu_s(data_dir) - pg0
    pcm_bytes = sum(len(s) for s in stereo)

    encoded = {}
    for complexity in COMPLEXITIES:
        cpu0 = time.process_time()
        recorder = OpusRecorder(complexity)
        for chunk in stereo:  # a 20 ms stereo frame at a time
            for i in range(0, len(chunk), 4 * FRAME):
                recorder.add(chunk[i:i + 4 * FRAME])
        encoded[complexity] = recorder.close(), time.process_time() - cpu0
    opus, encode_cpu = encoded[COMPLEXITIES[-1]]
    cpu0, pg0 = time.process_time(), postgres_cpu_s(data_dir)
    await store(pool, tenant, "audio/webm;codecs=opus", [opus[i:i + 4096] for i in range(0, len(opus), 4096)])
    opus_cpu, opus_pg = time.process_time() - cpu0, postgres_cpu_s(data_dir) - pg0
    await pool.close()

    for complexity, (data, _) in encoded.items():
        length = decoded_seconds(data)
        if abs(length - minutes * 60) > 1:
            raise SystemExit(f"the Opus recording (complexity {complexity}) decodes to {length:.1f} s,"
                             f" not {minutes * 60:.0f} s")

    def per_minute(value: float) -> float:
        return value / minutes

    print(f"{minutes:g} call-minutes, two-sided speech, 20 ms frames; per call-minute:")
    print(f"{'':>22} {'gateway CPU':>12} {'Postgres CPU':>13} {'bytes':>10}")
    print(f"{'interleave (both)':>22} {per_minute(interleave_s) * 1000:>10.1f}ms {'':>13} {'':>10}")
    print(f"{'PCM, stored':>22} {per_minute(pcm_cpu) * 1000:>10.1f}ms {per_minute(pcm_pg) * 1000:>11.1f}ms"
          f" {per_minute(pcm_bytes) / 1e6:>8.2f}MB")
    for complexity, (data, cpu) in encoded.items():
        print(f"{f'Opus encode, cx {complexity}':>22} {per_minute(cpu) * 1000:>10.1f}ms {'':>13}"
              f" {per_minute(len(data)) / 1e6:>8.2f}MB")
    print(f"{'Opus, stored':>22} {per_minute(opus_cpu) * 1000:>10.1f}ms {per_minute(opus_pg) * 1000:>11.1f}ms"
          f" {per_minute(len(opus)) / 1e6:>8.2f}MB")
    pcm_total = per_minute(pcm_cpu + pcm_pg)
    opus_total = per_minute(encode_cpu + opus_cpu + opus_pg)
    print(f"end to end (gateway + Postgres, interleave excluded): PCM {pcm_total * 1000:.1f} ms,"
          f" Opus {opus_total * 1000:.1f} ms per call-minute; at 200 calls PCM takes"
          f" {pcm_total * 200 / 60 * 100:.0f} % of a core, Opus {opus_total * 200 / 60 * 100:.0f} %;"
          f" Opus is {len(opus) / pcm_bytes * 100:.1f} % of the bytes (Opus: complexity {COMPLEXITIES[-1]})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    data_dir = Path(tempfile.mkdtemp(prefix="sparring-bench-rec-")) / "data"
    server_url, server = start_embedded_postgres(data_dir)
    dsn = urlunsplit(urlsplit(server_url)._replace(path="/bench_recording"))

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        await conn.execute('CREATE DATABASE "bench_recording"')
        await conn.close()

    try:
        asyncio.run(create())
        asyncio.run(run(dsn, data_dir, args.minutes))
    finally:
        server.cleanup()

if __name__ == "__main__":
    main()
