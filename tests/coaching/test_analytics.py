"""Each conversation metric on a transcript whose expected value can be worked out by hand."""

import pytest

from coaching.analytics import METRIC_KEYS, analyse, metrics, metrics_of, role_of
from coaching.persona import load_personas
from coaching.session_log import Segment
from tests.fixtures.calls import SCENARIOS, build


def call(*lines: tuple[str, str, float, float]) -> list[Segment]:
    """Segments from (speaker, text, start s, end s)."""
    return [Segment(f"s{i}", speaker, text, int(start * 1000), int(end * 1000), i + 1)
            for i, (speaker, text, start, end) in enumerate(lines)]


def words(n: int, word: str = "lorem") -> str:
    return " ".join([word] * n) + "."


def test_talk_ratio_is_the_rep_share_of_speech_time_and_silence_does_not_count():
    m = metrics(call(("rep", words(60), 0, 30), ("persona", words(40), 40, 60), ("rep", words(20), 70, 80)))
    assert m["talk_ratio"].value == pytest.approx(66.67)  # 40 s of 60 s spoken; 20 s of silence ignored
    assert m["talk_ratio"].verdict == "off"  # above 65 %
    balanced = metrics(call(("rep", words(40), 0, 16), ("buyer", words(60), 17, 41), ("rep", words(10), 42, 46)))
    assert balanced["talk_ratio"].value == pytest.approx(45.45)  # 20 s of 44 s
    assert balanced["talk_ratio"].verdict == "good"
    assert m["talk_ratio"].band is not None and m["talk_ratio"].band.target == 43


def test_a_typed_turn_counts_as_long_as_saying_it_would_take():
    # A typed practice turn arrives with no duration; 40 words at 160 wpm are 15 s of talk.
    m = metrics(call(("rep", words(40), 0, 0), ("persona", words(30), 1, 16)))
    assert m["talk_ratio"].value == pytest.approx(50.0)
    assert m["rep_wpm"].value == pytest.approx(160.0)


def test_longest_monologue_merges_rep_speech_across_a_short_backchannel():
    merged = metrics(call(("rep", words(100), 0, 40), ("persona", "Mm-hmm.", 40.5, 41.2),
                          ("rep", words(95), 41.5, 80), ("persona", "Okay, but how much does it cost?", 81, 84)))
    assert merged["longest_monologue_s"].value == 80.0
    assert merged["longest_monologue_s"].verdict == "watch"  # over 75 s, under 120 s
    broken = metrics(call(("rep", words(100), 0, 40), ("persona", "We tried that last year and it failed.", 40.5, 43),
                          ("rep", words(90), 43.5, 80), ("persona", "Okay, but how much does it cost?", 81, 84)))
    assert broken["longest_monologue_s"].value == 40.0
    assert broken["longest_monologue_s"].verdict == "good"
    # A "backchannel" of 2 s is a turn: it ends the monologue.
    long_noise = metrics(call(("rep", words(100), 0, 40), ("persona", "Mm-hmm.", 40.5, 42.5),
                              ("rep", words(95), 43, 80)))
    assert long_noise["longest_monologue_s"].value == 40.0


def test_longest_buyer_story_tolerates_a_short_rep_interjection():
    m = metrics(call(("rep", "How does the month-end close work today?", 0, 3),
                     ("persona", words(80), 4, 34), ("rep", "Right.", 34.3, 34.8), ("persona", words(70), 35, 62),
                     ("rep", "What happens after that?", 63, 65)))
    assert m["longest_buyer_story_s"].value == 58.0  # 4 s to 62 s, across the "Right."
    assert m["interactivity"].value == pytest.approx(2 / (65 / 60), abs=0.01)  # two switches; the backchannel is none


def test_questions_counted_and_open_share_excludes_closed_and_pitch_questions():
    m = metrics(call(
        ("rep", "What does your process look like today?", 0, 3), ("persona", "Mostly spreadsheets.", 4, 6),
        ("rep", "Do you use Excel for all of it?", 7, 9), ("persona", "Yes, all of it.", 10, 11.5),
        ("rep", "So, how many people touch each invoice?", 12, 14), ("persona", "About four.", 15, 16),
        ("rep", "Our platform cuts close time in half with dashboards, wouldn't you like to see that?", 17, 22),
        ("persona", "Maybe.", 23, 23.5), ("rep", "We help finance teams close faster.", 24, 27)))
    assert m["questions_asked"].value == 4
    assert m["open_question_share"].value == 50.0  # "what" and "how" of four; the pitch is not open


def test_question_band_scales_with_call_length():
    short = metrics(call(("rep", "What is going on?", 0, 2), ("persona", words(10), 3, 300)))
    long = metrics(call(("rep", "What is going on?", 0, 2), ("persona", words(10), 3, 1800)))
    assert short["questions_asked"].band is not None and long["questions_asked"].band is not None
    assert long["questions_asked"].band.low == 8 and long["questions_asked"].band.high == 20  # 30 min: as published
    assert short["questions_asked"].band.high < long["questions_asked"].band.high
    assert short["questions_asked"].verdict == "off"  # one question in five minutes


def test_patience_is_the_mean_pause_before_the_rep_answers_and_ignores_overlaps():
    m = metrics(call(
        ("persona", "We close the books in eight days.", 0, 10),
        ("rep", "How many of those days are manual?", 11.5, 14),
        ("persona", "Most of them, honestly.", 15, 20), ("rep", "What slows it down the most?", 20.5, 23),
        ("persona", "Reconciling freight invoices.", 24, 30), ("rep", "Tell me more about that.", 29, 31),
        ("persona", "That's too expensive for us, honestly.", 32, 36),
        ("rep", "That's fair. Expensive compared to what?", 38, 41),
    ))
    assert m["patience_s"].value == pytest.approx((1.5 + 0.5 + 2.0) / 3, abs=0.01)  # the overlap at 29 s is left out
    assert m["patience_after_objection_s"].value == 2.0
    assert m["patience_after_objection_s"].verdict == "good"


def test_words_per_minute_overall_and_after_an_objection():
    m = metrics(call(("rep", words(100), 0, 40), ("persona", "Honestly that is too expensive for us.", 41, 44),
                     ("rep", words(60), 45, 65)))
    assert m["rep_wpm"].value == 160.0  # 160 words in 60 s
    assert m["rep_wpm_after_objection"].value == 180.0  # 60 words in 20 s
    assert m["rep_wpm_after_objection"].verdict == "off"  # more than 10 % faster than the call
    calm = metrics(call(("rep", words(100), 0, 40), ("persona", "Honestly that is too expensive for us.", 41, 44),
                        ("rep", words(50), 45, 65)))
    assert calm["rep_wpm_after_objection"].value == 150.0
    assert calm["rep_wpm_after_objection"].verdict == "good"


def test_filler_rate_per_100_words_and_per_minute():
    m = metrics(call(("rep", "Um, so, you know, we basically help teams.", 0, 4),
                     ("persona", "Okay then, go ahead.", 5, 6)))
    assert m["filler_per_100_words"].value == pytest.approx(37.5)  # um, you know, basically: 3 of 8 words
    assert m["filler_per_min"].value == pytest.approx(45.0)  # 3 in 4 s of rep speech
    assert m["filler_per_min"].verdict == "off"


OPENING = [("rep", "How do you handle invoices today?"), ("buyer", "By hand, mostly, in spreadsheets."),
           ("rep", "What does that cost your team each month?"), ("buyer", "About forty hours a month.")] * 3


def test_next_step_agreed_needs_a_commitment_a_date_and_an_owner_at_the_end():
    def with_close(*close: tuple[str, str]) -> list[Segment]:
        return build(OPENING + list(close), jitter=False, gap_ms=800)

    agreed = metrics(with_close(("rep", "I'll send the invite for Tuesday at 10 with your controller on it."),
                                ("buyer", "Great, Tuesday works.")))
    assert agreed["next_step_agreed"].value == 1.0 and agreed["next_step_agreed"].verdict == "good"
    vague = metrics(with_close(("rep", "I'll send you some information and we can stay in touch."),
                               ("buyer", "Sure, sounds good.")))
    assert vague["next_step_agreed"].value == 0.0 and vague["next_step_agreed"].verdict == "off"
    declined = metrics(with_close(("rep", "I'll send the invite for Tuesday at 10 with your controller on it."),
                                  ("buyer", "I'm not ready to commit time yet.")))
    assert declined["next_step_agreed"].value == 0.0
    early = build([("rep", "I'll send the invite for Tuesday at 10."), ("buyer", "Sure.")] + OPENING * 2, jitter=False)
    assert metrics(early)["next_step_agreed"].value == 0.0  # a dated step at the start is not the close


def test_an_empty_call_measures_nothing_and_does_not_crash():
    m = metrics([])
    assert list(m) == list(METRIC_KEYS)
    assert all(x.value is None and x.verdict == "n/a" for x in m.values())
    blank = metrics(call(("rep", "   ", 0, 1)))
    assert all(x.verdict == "n/a" for x in blank.values())


def test_metrics_without_an_objection_are_not_applicable():
    m = metrics(call(("rep", "How do you close the books today?", 0, 3), ("persona", words(30), 4, 16),
                     ("rep", "What takes the longest?", 17, 19)))
    for key in ("patience_after_objection_s", "rep_wpm_after_objection"):
        assert m[key].value is None and m[key].verdict == "n/a"
    assert m["patience_s"].verdict != "n/a"


def test_every_metric_has_a_stable_key_a_band_and_a_verdict_on_a_real_call():
    m = metrics(SCENARIOS[0].strong())
    assert list(m) == list(METRIC_KEYS)
    for key, metric in m.items():
        assert metric.key == key and metric.band is not None and metric.band.source and metric.band.note
        assert metric.verdict in ("good", "watch", "off")
    assert m["next_step_agreed"].value == 1.0
    assert metrics(SCENARIOS[0].weak())["next_step_agreed"].value == 0.0


def test_interruption_is_a_rep_start_over_a_second_before_the_buyer_ends():
    a = analyse(call(("persona", words(20), 0, 8), ("rep", "But what about the cost of that?", 6.5, 9),
                     ("persona", words(20), 10, 18), ("rep", "And the timeline?", 17.5, 19),
                     ("persona", words(20), 20, 28), ("rep", "Mm-hmm.", 25, 25.6)))
    assert [i.segment_id for i in a.interruptions] == ["s1"]  # 1.5 s over; 0.5 s is not; a backchannel is not
    assert a.interruptions[0].overlap_ms == 1500


def test_persona_objections_are_found_from_its_own_wording():
    segments = call(("rep", "What would a pilot look like for you?", 0, 3),
                    ("persona", "Every vendor says they'll save us money. And what's the payback period?", 4, 9))
    assert not analyse(segments).objections  # no generic phrase in it
    found = analyse(segments, load_personas()["skeptical-cfo"]).objections
    assert [o.kind for o in found] == ["persona:price"]
    assert metrics_of(analyse(segments))["talk_ratio"] == metrics(segments)["talk_ratio"]


def test_every_side_but_the_rep_is_the_buyer():
    assert [role_of(s) for s in ("rep", "persona", "buyer", "unknown")] == ["rep", "buyer", "buyer", "buyer"]
    with pytest.raises(ValueError):
        role_of("narrator")
