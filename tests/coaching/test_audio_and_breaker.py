"""Pure pieces of the call: turn detection, resampling, the recording, barge-in text, the breaker."""

import numpy as np
import pytest

from coaching.audio.pcm import Resampler, rms_dbfs
from coaching.audio.recording import StereoRecorder
from coaching.audio.vad import TurnDetector
from coaching.providers.breaker import CircuitBreaker
from coaching.speech import spoken_prefix
from tests.fixtures.speech import silence, speech_pcm


def test_turn_detector_finds_speech_onset_and_end_after_the_silence_window():
    detector = TurnDetector(silence_ms=500)
    speech = speech_pcm("Hello there, how are you doing today?")
    events = detector.feed(silence(400) + speech + silence(700))
    assert [kind for kind, _ in events] == ["speech_start", "speech_end"]
    start_ms, end_ms = events[0][1], events[1][1]
    assert 300 <= start_ms <= 700
    assert end_ms - start_ms == pytest.approx(len(speech) / 32, abs=400)


def test_turn_detector_stays_quiet_on_silence_and_rejects_bad_options():
    assert TurnDetector().feed(silence(2000)) == []
    with pytest.raises(ValueError, match="silence_ms.*aggressiveness"):
        TurnDetector(silence_ms=5, aggressiveness=7)


def test_resampler_keeps_duration_and_loudness_in_chunks():
    tone = (np.sin(2 * np.pi * 440 * np.arange(48000) / 48000) * 10000).astype(np.int16).tobytes()
    resampler = Resampler(48000, 16000)
    out = b"".join(resampler.feed(tone[i:i + 1920]) for i in range(0, len(tone), 1920)) + resampler.feed(b"", last=True)
    assert len(out) // 2 == pytest.approx(16000, abs=40)
    assert rms_dbfs(out) == pytest.approx(rms_dbfs(tone), abs=0.5)


def test_recorder_puts_rep_left_and_persona_right_on_the_reps_clock():
    recorder = StereoRecorder()
    recorder.persona(np.full(300, 7, dtype=np.int16).tobytes())
    recorder.rep(np.full(200, 3, dtype=np.int16).tobytes())
    assert recorder.pending_bytes == 800
    stereo = np.frombuffer(recorder.drain(), dtype=np.int16).reshape(-1, 2)
    assert (stereo[:, 0] == 3).all() and (stereo[:, 1] == 7).all()
    assert recorder.pending_bytes == 0 and recorder.drain() == b""
    tail = np.frombuffer(recorder.flush(), dtype=np.int16).reshape(-1, 2)
    assert tail.shape == (100, 2) and (tail[:, 0] == 0).all() and (tail[:, 1] == 7).all()


def test_recorder_keeps_each_frames_silence_where_it_fell_when_frames_are_drained_together():
    def pcm(value, samples):
        return np.full(samples, value, dtype=np.int16).tobytes()

    recorder = StereoRecorder()
    recorder.persona(pcm(5, 100))
    recorder.rep(pcm(1, 160))  # takes the persona's 100 samples, then 60 of silence
    recorder.rep(pcm(2, 160))  # the persona is quiet: silence on the right
    recorder.persona(pcm(9, 200))
    recorder.rep(pcm(4, 160))  # 160 of the persona's 200
    recorder.rep(pcm(6, 160) + b"\x01")  # an odd byte is not a sample
    stereo = np.frombuffer(recorder.flush(), dtype=np.int16).reshape(-1, 2)
    assert stereo[:, 0].tolist() == [1] * 160 + [2] * 160 + [4] * 160 + [6] * 160
    assert stereo[:, 1].tolist() == [5] * 100 + [0] * 60 + [0] * 160 + [9] * 160 + [9] * 40 + [0] * 120


def test_spoken_prefix_keeps_whole_sentences_then_words_heard():
    sentences = [("First sentence here.", 1000.0), ("Second one has six words.", 2000.0)]
    assert spoken_prefix(sentences, 0) == ""
    assert spoken_prefix(sentences, 1000) == "First sentence here."
    assert spoken_prefix(sentences, 2000) == "First sentence here. Second one"
    assert spoken_prefix(sentences, 5000) == "First sentence here. Second one has six words."


def test_breaker_opens_after_failures_and_half_opens_after_the_pause():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert (breaker.state, breaker.allow()) == ("open", False)
    now[0] = 10.0
    assert breaker.state == "half_open" and breaker.allow()
    breaker.record_failure()  # the trial failed: open again
    assert breaker.state == "open"
    now[0] = 25.0
    breaker.record_success()
    assert breaker.state == "closed"


def test_latency_observer_splits_a_turn_into_its_parts():
    from coaching.events import PersonaAudioStart, PersonaReplyDelta, TranscriptFinal
    from coaching.latency import LatencyObserver, TurnLatency

    observer = LatencyObserver(call_started_ms=1_000_000, silence_ms=500)
    final = TranscriptFinal(session_id="s", ts=1_010_700, speaker="rep", text="hi", start_ms=8000, end_ms=10000,
                            segment_id="rep-1")
    assert observer.observe(final) is None
    assert observer.observe(PersonaReplyDelta(session_id="s", ts=1_010_710, reply_id="r", text="Hi")) is None
    latency = observer.observe(PersonaAudioStart(session_id="s", ts=1_010_900, reply_id="r"))
    assert latency == TurnLatency(total_ms=900, detect_ms=500, stt_ms=200, brain_ms=10, tts_ms=190)


def test_recorder_resamples_the_personas_audio_in_batches_yet_a_frame_hears_what_has_arrived():
    tone = (np.sin(2 * np.pi * 300 * np.arange(24000) / 24000) * 8000).astype(np.int16).tobytes()
    frame = np.full(320, 1, dtype=np.int16).tobytes()  # 20 ms at 16 kHz
    recorder = StereoRecorder(persona_rate_hz=24000)
    recorder.rep(frame)  # before the persona speaks: silence on the right
    recorder.persona(tone[:1920])  # 40 ms, less than a batch
    recorder.rep(frame)  # needs it: converted now, not after the batch fills
    for i in range(1920, len(tone), 960):  # the rest in 20 ms chunks, a rep frame each
        recorder.persona(tone[i:i + 960])
        recorder.rep(frame)
    stereo = np.frombuffer(recorder.flush(), dtype=np.int16).reshape(-1, 2)
    right = stereo[:, 1].astype(np.float64)
    assert not right[:320].any()
    assert np.sqrt(np.mean(right[320 + 160:640] ** 2)) > 1000, "the second frame carries the persona"
    # A second of persona audio is a second at 16 kHz, after the silent first frame, within
    # the resampler's delay (under a frame each way): silence where the persona starts, and the
    # last ~30 ms it still holds at the end.
    assert len(right) == pytest.approx(320 + 16000, abs=320)
    assert np.sqrt(np.mean(right[1000:16000] ** 2)) == pytest.approx(8000 / np.sqrt(2), rel=0.05)


def test_recorder_takes_audio_after_a_flush_as_a_new_stretch():
    tone = (np.sin(2 * np.pi * 300 * np.arange(4800) / 24000) * 8000).astype(np.int16).tobytes()
    frame = np.full(320, 1, dtype=np.int16).tobytes()
    recorder = StereoRecorder(persona_rate_hz=24000)
    recorder.persona(tone)
    recorder.rep(frame)
    first = recorder.flush()
    recorder.persona(tone)  # e.g. a last frame of either side while the call closes
    recorder.rep(frame)
    second = np.frombuffer(recorder.flush(), dtype=np.int16).reshape(-1, 2)
    assert len(first) == len(second) * 4
    assert (second[:320, 0] == 1).all() and np.abs(second[:, 1]).max() > 1000
