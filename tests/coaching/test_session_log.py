"""The one sequencer every kind of call appends through: numbering, rows, hints, rebuilding."""

from __future__ import annotations

import msgspec
import pytest

from coaching.errors import SparringError
from coaching.events import (
    AudioFormat,
    Hint,
    PersonaReply,
    Sender,
    SessionEnded,
    SessionStarted,
    TranscriptFinal,
    Whisper,
    decode_event,
)
from coaching.hints import HintOptions
from coaching.session_log import SessionLog

SID = "s-1"


def final(speaker: str, text: str, start_s: float, end_s: float, n: int) -> TranscriptFinal:
    return TranscriptFinal(session_id=SID, ts=0, speaker=speaker, text=text, start_ms=int(start_s * 1000),  # type: ignore[arg-type]
                           end_ms=int(end_s * 1000), segment_id=f"{speaker}-{n}")


# A call where the buyer raises price twice within a minute (the second must not repeat the hint),
# answers a question with a question, and winds down with no next step.
TRANSCRIPT = [
    final("rep", "Hi Dana, thanks for taking the call. How is the quarter going?", 0, 4, 1),
    final("persona", "Busy. What does this cost? Budget is tight.", 5, 8, 2),
    final("rep", "Fair question. What do you pay for the close today?", 9, 13, 3),
    final("persona", "Honestly the price is my worry, it always is with new tools.", 14, 19, 4),
    final("rep", "Why is that?", 20, 21, 5),
    final("persona", "We tried two vendors and both were expensive. Do you have references?", 22, 28, 6),
    final("rep", "Can I ask who else is involved?", 29, 31, 7),
    final("persona", "Sorry, I have to go, next meeting.", 95, 98, 8),
]


def run(log: SessionLog, events) -> list[tuple[int, str, str]]:
    """(seq, type, detail) of everything appended: a hint's kind, a final's segment."""
    out = []
    for event in events:
        for entry in log.append(event).entries:
            message = decode_event(entry.frame)
            detail = message.kind if isinstance(message, Hint) else getattr(message, "segment_id", "")
            out.append((entry.seq, entry.type, detail))
    return out


def started() -> SessionStarted:
    return SessionStarted(session_id=SID, ts=0, protocol=1, persona_id="skeptical-cfo", output_audio=AudioFormat())


def test_append_numbers_gap_free_stamps_ts_and_derives_the_segment_row():
    log = SessionLog(SID, clock_ms=lambda: 1234)
    first = log.append(started())
    second = log.append(final("rep", "Hello there", 0, 1, 1))
    assert [e.seq for e in first.entries + second.entries] == [1, 2]
    assert msgspec.json.decode(second.entries[0].frame)["ts"] == 1234
    assert second.entries[0].segment is not None and second.entries[0].segment.seq == 2
    assert second.entries[0].segment.text == "Hello there"
    assert first.entries[0].segment is None
    assert log.last_seq == 2 and log.frames_after(1) == [second.entries[0].frame]


def test_a_final_that_raises_a_hint_gets_it_numbered_right_behind_it():
    log = SessionLog(SID, hints=HintOptions())
    log.append(started())
    appended = log.append(final("persona", "What does this cost? Budget is tight.", 1, 3, 1))
    assert [(e.seq, e.type) for e in appended.entries] == [(2, "transcript.final"), (3, "hint")]
    assert [h.kind for h in appended.hints] == ["objection_price"] and appended.hints[0].seq == 3


def test_nul_characters_are_stripped_before_numbering():
    log = SessionLog(SID)
    entry = log.append(Whisper(session_id=SID, ts=0, sender=Sender("c", "Coach\x00"), text="sl\x00ow down")).entries[0]
    assert b"\\u0000" not in entry.frame and msgspec.json.decode(entry.frame)["text"] == "slow down"


def test_nothing_is_appended_after_session_ended():
    log = SessionLog(SID)
    log.append(SessionEnded(session_id=SID, ts=0, reason="rep_ended", duration_ms=10))
    assert log.sealed
    assert log.append(PersonaReply(session_id=SID, ts=0, reply_id="r", text="late")).entries == []
    assert log.last_seq == 1


def test_a_log_rebuilt_mid_call_raises_exactly_the_hints_of_an_uninterrupted_call():
    events = [started(), *TRANSCRIPT]
    whole = run(SessionLog(SID, hints=HintOptions()), events)
    kinds = [detail for _, kind, detail in whole if kind == "hint"]
    assert kinds.count("objection_price") == 1, "price raised twice within a minute is hinted once"
    assert "no_next_step" in kinds

    for cut in range(1, len(events)):
        first = SessionLog(SID, hints=HintOptions())
        before = run(first, events[:cut])
        rebuilt = SessionLog.rebuild(SID, first.frames_after(0), hints=HintOptions())
        assert rebuilt.last_seq == first.last_seq
        assert before + run(rebuilt, events[cut:]) == whole, f"rebuilt after event {cut}"


def test_a_log_started_without_its_history_would_repeat_a_hint():
    # What rebuilding prevents: a fresh engine after the first price objection hints it again.
    events = [started(), *TRANSCRIPT]
    cut = 3  # after the first objection and its hint
    first = SessionLog(SID, hints=HintOptions())
    before = run(first, events[:cut])
    fresh = SessionLog(SID, hints=HintOptions(), last_seq=first.last_seq)
    kinds = [d for _, k, d in before + run(fresh, events[cut:]) if k == "hint"]
    assert kinds.count("objection_price") == 2


def test_replay_refuses_a_frame_that_does_not_follow_the_log():
    log = SessionLog(SID)
    frame = SessionLog(SID, last_seq=4).append(started()).entries[0].frame  # seq 5
    with pytest.raises(SparringError, match="cannot follow seq 0"):
        log.replay(frame)


def test_replayed_frames_are_kept_for_resuming_clients_and_a_final_keeps_its_segment():
    source = SessionLog(SID)
    frames = [e.frame for ev in [started(), final("rep", "Hi", 0, 1, 1)] for e in source.append(ev).entries]
    log = SessionLog(SID)
    entries = [log.replay(f) for f in frames]
    assert log.frames_after(0) == frames and entries[1].segment is not None
    assert log.conversation[0].text == "Hi"


def test_an_llm_hint_goes_through_the_same_debounce():
    log = SessionLog(SID, hints=HintOptions())
    log.append(final("persona", "What does this cost?", 1, 2, 1))  # a warning hint at 2 s
    assert log.admit_hint("llm_discovery", "info", "Ask about their process.").entries == []
    log.append(final("rep", "Sure.", 40, 41, 2))
    admitted = log.admit_hint("llm_discovery", "info", "Ask about their process.")
    assert [(e.seq, e.type) for e in admitted.entries] == [(4, "hint")]
