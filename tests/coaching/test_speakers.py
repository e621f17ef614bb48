"""Speaker labelling of mono calls, fed synthesized audio: turns at pauses, words regrouped by
turn, two voices told apart by clustering, and the pause fallback when only one voice is heard."""

import numpy as np
import pytest

from coaching.providers.stt.base import TimedWord
from coaching.speakers import Turn, label_speakers, speech_turns, split_by_turns, voice_features
from tests.fixtures.recordings import buyer_voice, dialogue
from tests.fixtures.speech import silence, speech_pcm


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.int16)


def test_speech_turns_split_at_pauses_and_skip_the_silence():
    one, two = speech_pcm("How does your close work?"), speech_pcm("Tell me more.")
    turns = speech_turns(pcm(silence(500) + one + silence(900) + two + silence(500)), offset_ms=1000)
    assert len(turns) == 2
    assert 1000 + 400 <= turns[0].start_ms <= 1000 + 700
    assert turns[1].start_ms >= turns[0].end_ms + 600


def test_speech_turns_of_silence_are_none():
    assert speech_turns(pcm(silence(3000))) == []


def test_words_spanning_two_turns_become_two_pieces():
    words = [TimedWord(0, 300, "Hello"), TimedWord(300, 600, "there."), TimedWord(1500, 1800, "Hi"),
             TimedWord(1800, 2100, "Sam.")]
    pieces = split_by_turns(words, [Turn(0, 700), Turn(1400, 2200)])
    assert [p.text for p in pieces] == ["Hello there.", "Hi Sam."]
    assert (pieces[1].start_ms, pieces[1].end_ms) == (1500, 2100)


def test_two_voices_are_clustered_and_the_questioner_is_the_rep():
    _, _, script = dialogue()
    voices = [voice_features(pcm(speech_pcm(t) if who == "rep" else buyer_voice(speech_pcm(t))))
              for who, t in script]
    labels, method = label_speakers([t for _, t in script], voices, [3000] * len(script))
    assert method == "voice-clustering"
    assert labels == [who for who, _ in script]


def test_one_voice_falls_back_to_alternating_at_pauses():
    texts = ["How are you?", "Fine, thanks.", "What do you do?", "Finance."]
    voice = voice_features(pcm(speech_pcm("How does your month end close work today?")))
    labels, method = label_speakers(texts, [voice] * 4, [2000] * 4)
    assert method == "pauses" and labels == ["rep", "buyer", "rep", "buyer"]


def test_label_speakers_refuses_sequences_of_different_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        label_speakers(["a"], [], [1])
