"""Recorded-call audio: formats recognised by their bytes, whole-file checks (length, truncation,
stereo that is really mono), chunks cut at quiet moments and resumable; retries around a
transcriber (tenacity) on transient errors only."""

import numpy as np
import pytest

from coaching.audio.decode import UndecodableAudio, decode_chunks, probe, quiet_cut, sniff
from coaching.errors import ProviderUnavailable
from coaching.providers.stt.base import TimedSegment, TransientSTTError
from coaching.providers.stt.retry import RetryingRecordingSTT, TranscriptionFailed
from tests.fixtures.recordings import dialogue, mix, stereo, write_audio


@pytest.fixture(scope="module")
def call():
    return dialogue(turns=2)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg", "flac", "m4a", "webm"])
def test_each_format_is_recognised_by_its_bytes_and_measured(tmp_path, call, fmt):
    rep, buyer, _ = call
    path = write_audio(tmp_path / "x.bin", mix(rep, buyer), fmt)
    found = sniff(path.read_bytes()[:16])
    assert found == {"webm": "webm", "m4a": "m4a"}.get(fmt, fmt)
    info = probe(path, found)
    assert abs(info.duration_ms - len(rep) // 32) < 100 and info.speaker_channels == 1


def test_text_and_images_are_not_audio():
    assert sniff(b"Dear customer, hello") is None
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00") is None


def test_stereo_with_one_voice_per_side_keeps_two_channels_and_dual_mono_does_not(tmp_path, call):
    rep, buyer, _ = call
    assert probe(write_audio(tmp_path / "s.flac", stereo(rep, buyer), "flac"), "flac").speaker_channels == 2
    both = mix(rep, buyer)
    assert probe(write_audio(tmp_path / "d.wav", stereo(both, both), "wav"), "wav").speaker_channels == 1


def test_a_truncated_flac_is_refused(tmp_path, call):
    data = write_audio(tmp_path / "t.flac", mix(*call[:2]), "flac").read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(UndecodableAudio, match="truncated"):
        probe(cut, "flac")


def test_chunks_end_in_quiet_and_resuming_yields_the_same_later_chunks(tmp_path, call):
    rep, buyer, _ = call
    path = write_audio(tmp_path / "c.wav", mix(rep, buyer), "wav")
    chunks = list(decode_chunks(path, channels=1, chunk_ms=10_000))
    assert sum(c.shape[0] for _, c in chunks) == len(rep) // 2
    assert [s for s, _ in chunks] == [0, *np.cumsum([c.shape[0] // 16 for _, c in chunks])[:-1].tolist()]
    resumed = list(decode_chunks(path, channels=1, chunk_ms=10_000, start_ms=chunks[1][0]))
    assert [s for s, _ in resumed] == [s for s, _ in chunks[1:]]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(resumed, chunks[1:], strict=True))


def test_quiet_cut_picks_the_silent_frame():
    loud = (np.sin(np.arange(16000 * 6) / 5) * 10000).astype(np.int16).reshape(-1, 1)
    loud[16000 * 4:16000 * 4 + 640] = 0
    assert 16000 * 4 <= quiet_cut(loud) < 16000 * 4 + 640


class Flaky:
    name = "flaky"

    def __init__(self, errors):
        self.errors, self.calls = list(errors), 0

    async def transcribe_timed(self, pcm16k, *, offset_ms, words):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return [TimedSegment(offset_ms, offset_ms + 1000, "hello")]


async def test_transient_failures_are_retried_then_succeed():
    inner = Flaky([TransientSTTError("HTTP 500"), TransientSTTError("HTTP 429")])
    stt = RetryingRecordingSTT(inner, attempts=3, wait_base_s=0)
    assert (await stt.transcribe_timed(b"", offset_ms=5, words=False))[0].start_ms == 5
    assert inner.calls == 3


async def test_three_transient_failures_fail_with_the_reason():
    inner = Flaky([TransientSTTError("HTTP 503")] * 3)
    with pytest.raises(TranscriptionFailed, match="HTTP 503, 3 attempts"):
        await RetryingRecordingSTT(inner, attempts=3, wait_base_s=0).transcribe_timed(b"", offset_ms=0, words=False)
    assert inner.calls == 3


async def test_a_permanent_failure_is_not_retried():
    inner = Flaky([ProviderUnavailable("HTTP 401")])
    with pytest.raises(ProviderUnavailable, match="401"):
        await RetryingRecordingSTT(inner, wait_base_s=0).transcribe_timed(b"", offset_ms=0, words=False)
    assert inner.calls == 1


def test_retry_options_are_checked():
    with pytest.raises(ValueError, match="attempts, timeout_s"):
        RetryingRecordingSTT(Flaky([]), attempts=0, timeout_s=0)
