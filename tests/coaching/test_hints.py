"""Each hint rule fires on a transcript built to trigger it and stays quiet on one built not to."""

import pytest

from coaching.events import TranscriptFinal
from coaching.hints import HintEngine, HintOptions

SECOND = 1000


class Call:
    def __init__(self, **options) -> None:
        self.engine = HintEngine("s", HintOptions(**options))
        self.n = 0
        self.hints = []

    def say(self, speaker: str, text: str, start_s: float, end_s: float) -> list:
        self.n += 1
        hints = self.engine.observe(TranscriptFinal(
            session_id="s", ts=0, speaker=speaker, text=text, start_ms=int(start_s * SECOND),
            end_ms=int(end_s * SECOND), segment_id=f"{speaker}-{self.n}"))
        self.hints += hints
        return [h.kind for h in hints]


def test_monologue_over_75_seconds_warns_with_evidence():
    call = Call()
    opening = "Let me tell you about our platform and everything it does for teams like yours."
    assert call.say("rep", opening, 0, 40) == []
    more = "And there is more: integrations, reporting, dashboards and a mobile app."
    assert call.say("rep", more, 40, 80) == ["monologue"]
    hint = call.hints[-1]
    assert hint.severity == "warning" and hint.evidence.segment_id == "rep-2"
    assert hint.evidence.quote.startswith("And there is more")
    quiet = Call()
    quiet.say("rep", "Here is a short intro about us and why I called today.", 0, 40)
    quiet.say("persona", "Okay, go on.", 40, 42)
    assert "monologue" not in quiet.say("rep", "What does your process look like today?", 42, 80)


def test_talk_share_over_65_percent_in_the_last_two_minutes():
    call = Call(monologue_ms=10**9)
    call.say("persona", "Hello.", 0, 5)
    assert "talk_ratio" in call.say("rep", "We help logistics teams close the books faster with automation.", 5, 70)
    balanced = Call(monologue_ms=10**9)
    balanced.say("rep", "Hi, how are you doing today, and what keeps you busy?", 0, 30)
    assert "talk_ratio" not in balanced.say("persona", "Busy quarter, lots of reporting work.", 30, 65) + \
        balanced.say("rep", "Tell me more about the reporting work.", 65, 70)


def test_no_discovery_question_in_the_first_three_minutes():
    call = Call(monologue_ms=10**9, talk_share=1.1)
    call.say("rep", "We are the leading platform.", 0, 10)
    call.say("persona", "Okay.", 10, 11)
    assert call.say("rep", "Our product does many things for finance teams.", 170, 185) == ["no_discovery"]
    asked = Call(monologue_ms=10**9, talk_share=1.1)
    asked.say("rep", "How do you close the books today?", 0, 10)
    assert asked.say("rep", "Our product does many things for finance teams.", 170, 185) == []


def test_few_open_questions_after_five_minutes():
    call = Call(monologue_ms=10**9, talk_share=1.1)
    call.say("rep", "Do you use spreadsheets?", 0, 5)
    assert call.say("rep", "Is that right?", 300, 302) == ["few_open_questions"]


@pytest.mark.parametrize(("line", "kind"), [
    ("Honestly, what does this cost? We have no budget.", "objection_price"),
    ("We already use another tool and we're happy with it.", "objection_competitor"),
    ("This is not a priority until next quarter.", "objection_timing"),
    ("I'd have to check with my manager first.", "objection_authority"),
    ("Things work fine as is, I don't see a reason to change.", "objection_status_quo"),
])
def test_buyer_objections_get_a_handling_suggestion(line, kind):
    call = Call()
    assert call.say("persona", line, 10, 14) == [kind]
    assert call.hints[0].text and call.hints[0].evidence.quote == line


def test_ordinary_buyer_talk_raises_no_objection():
    assert Call().say("persona", "Month-end close takes my team eight days.", 10, 14) == []


def test_fast_pace_over_180_words_a_minute():
    call = Call(monologue_ms=10**9, talk_share=1.1)
    fast = " ".join(["word"] * 40)  # 40 words in 10 s = 240 wpm
    assert call.say("rep", fast, 0, 10) == ["pace"]
    assert Call(monologue_ms=10**9, talk_share=1.1).say("rep", " ".join(["word"] * 25), 0, 10) == []


def test_buyer_question_answered_with_another_question():
    call = Call()
    call.say("persona", "How long does implementation take?", 10, 13)
    assert call.say("rep", "What's your timeline?", 13, 15) == ["unanswered_question"]
    answered = Call()
    answered.say("persona", "How long does implementation take?", 10, 13)
    assert answered.say("rep", "Usually four to six weeks, and our team does the heavy lifting for you.", 13, 20) == []


def test_winding_down_without_a_next_step():
    call = Call()
    assert call.say("persona", "Alright, I need to jump to my next meeting.", 400, 403) == ["no_next_step"]
    proposed = Call()
    proposed.say("rep", "Can we book a demo on Thursday?", 390, 394)
    assert proposed.say("persona", "Alright, I need to jump to my next meeting.", 400, 403) == []


def test_one_hint_per_20_seconds_unless_a_warning_and_no_kind_twice_within_a_minute():
    call = Call()
    assert call.say("persona", "What does this cost?", 10, 12) == ["objection_price"]
    assert call.say("persona", "And is it expensive?", 15, 17) == []  # same kind within 60 s
    assert call.say("persona", "I'd have to check with my manager.", 20, 22) == ["objection_authority"]  # warning
    quiet = Call(monologue_ms=10**9, talk_share=1.1)
    quiet.say("persona", "How long does it take?", 10, 12)
    quiet.say("rep", "Why do you ask?", 12, 13)
    quiet.say("persona", "Just curious, how long?", 14, 15)
    assert quiet.say("rep", "Who decides?", 15, 16) == []  # info within 20 s of the last hint


def test_pace_jump_after_an_objection():
    call = Call(monologue_ms=10**9, talk_share=1.1, min_gap_ms=0)
    calm = "We help finance teams close the books faster by automating the reconciliation work each month."  # 16 words
    call.say("rep", calm, 0, 8)  # 120 wpm
    call.say("rep", "What does your month end look like right now for your team?", 8, 14)
    assert call.say("persona", "Honestly the price sounds high for us.", 14, 17) == ["objection_price"]
    rushed = "I understand but the value is huge and the savings pay for it in a quarter so it really is worth it."
    assert call.say("rep", rushed, 17, 22) == ["pace_jump"]  # 22 words in 5 s: 264 wpm
    hint = call.hints[-1]
    assert "sped up" in hint.text and hint.evidence.segment_id == "rep-4"

    steady = Call(monologue_ms=10**9, talk_share=1.1, min_gap_ms=0)
    steady.say("rep", calm, 0, 8)
    steady.say("rep", "What does your month end look like right now for your team?", 8, 14)
    steady.say("persona", "Honestly the price sounds high for us.", 14, 17)
    assert steady.say("rep", "I hear you. What are you comparing it with today?", 17, 22) == []  # 10 words: 120 wpm


def test_pace_and_talk_share_count_turns_behind_a_final_that_arrives_late():
    """Two speakers' finals can arrive out of time order (VAPI sends each channel's on its own): a
    late final of an old turn must not hide the recent turns that arrived before it."""
    pace = Call(monologue_ms=10**9, talk_share=1.1)
    assert pace.say("rep", " ".join(["word"] * 20), 50, 54) == []  # 4 s: too little to judge
    pace.say("persona", "Okay, that makes sense.", 10, 20)  # an old turn's final, arriving late
    assert pace.say("rep", "So that is the short version.", 64, 65) == ["pace"]  # 26 words in 5 s

    share = Call(monologue_ms=10**9, max_wpm=10**9)
    share.say("persona", "Let me walk you through how our team closes the books every month.", 100, 190)
    share.say("rep", "Hi there.", 30, 40)  # an old turn's final, arriving late
    assert "talk_ratio" not in share.say("rep", "Does that sound like what you need?", 190, 198)  # 8 s of 98
