"""The scripted buyer's dialogue policy, fed conversations turn by turn."""

from pathlib import Path

import pytest

from coaching.brains.base import Turn
from coaching.brains.scripted import fold_state, scripted_reply
from coaching.persona import PersonaFileError, load_personas

PERSONAS = load_personas()
CFO = PERSONAS["skeptical-cfo"]


def talk(persona, *lines):
    history, replies = [], []
    for line in lines:
        history.append(Turn("rep", line))
        reply, ended = scripted_reply(persona, history)
        history.append(Turn("persona", reply))
        replies.append((reply, ended))
    return replies


def test_pains_stay_hidden_until_a_discovery_question_earns_them():
    (pitch, _), = talk(CFO, "We have the best freight audit platform on the market.")
    assert all(p.reveal not in pitch for p in CFO.pains)
    (_, _), (answer, _) = talk(CFO, "Hi Dana, this is Sam from Acme.",
                               "How does your month-end close process work today?")
    assert answer == CFO.pains[0].reveal


def test_price_coming_up_raises_the_price_objection_until_value_answers_it():
    replies = talk(CFO, "What's your budget for this?",
                   "Fair question. It pays for itself: payback inside two quarters.")
    price = next(o for o in CFO.objections if o.id == "price")
    assert replies[0][0] == price.text
    assert replies[1][0].startswith(price.resolved_reply)


def test_next_step_only_after_enough_discovery():
    early = talk(CFO, "Can we book a meeting Thursday?")
    assert early[0][0] == CFO.next_step.decline
    later = talk(CFO, "How does your month-end close process work?", "Have you tried fixing this before with a vendor?",
                 "Can we book a meeting Thursday?")
    assert later[-1][0] == CFO.next_step.accept
    state, _ = fold_state(CFO, [Turn("rep", line) for line in (
        "How does your month-end close process work?", "Have you tried fixing this before with a vendor?",
        "Can we book a meeting Thursday?")])
    assert state.agreed_next_step and state.revealed == ["manual-close", "failed-rollout"]


def test_the_buyer_ends_politely_when_the_rep_says_goodbye():
    reply, ended = talk(CFO, "Thanks for your time, goodbye!")[0]
    assert ended and reply == CFO.closing_line


def test_same_conversation_same_answers():
    lines = ("Hello, this is Sam from Acme.", "What are your priorities this year?", "How much is your budget?")
    assert talk(CFO, *lines) == talk(CFO, *lines)


@pytest.mark.parametrize("persona_id", sorted(PERSONAS))
def test_every_built_in_persona_reveals_a_pain_to_a_matching_question(persona_id):
    persona = PERSONAS[persona_id]
    pain = persona.pains[0]
    reply, _ = talk(persona, f"Can you tell me about your {pain.keywords[0]}?")[0]
    blocked = [o.text for o in persona.objections]
    assert pain.reveal in reply or any(text in reply for text in blocked)


def test_broken_persona_file_names_the_file_and_the_field(tmp_path: Path):
    source = (Path(__file__).resolve().parents[2] / "coaching/personas/01-skeptical-cfo.toml").read_text()
    (tmp_path / "broken.toml").write_text(source.replace("difficulty = 4", 'difficulty = "hard"'))
    with pytest.raises(PersonaFileError, match=r"broken.toml: .*\$\.difficulty"):
        load_personas(tmp_path)
    (tmp_path / "broken.toml").write_text("id = [unclosed")
    with pytest.raises(PersonaFileError, match="broken.toml"):
        load_personas(tmp_path)


def test_two_files_with_one_id_are_refused(tmp_path: Path):
    source = (Path(__file__).resolve().parents[2] / "coaching/personas/01-skeptical-cfo.toml").read_text()
    (tmp_path / "a.toml").write_text(source)
    (tmp_path / "b.toml").write_text(source)
    with pytest.raises(PersonaFileError, match="b.toml: id 'skeptical-cfo'"):
        load_personas(tmp_path)


# --- a buyer that behaves like one: realistic conversations, one per built-in persona -----------------------
# Each walks the same arc in the persona's own world: an introduction; a discovery question that happens to
# contain one of the persona's objection triggers (answered, not objected to); a statement that earns the first
# objection and in the same breath says what would settle it (raised, not settled: the rep has to answer it
# after hearing it); an ignored objection (it comes back); a new concern while it is pending (raised, no
# filler); both settled in turn (the set-aside one comes back first); and a next step the discovery earned.
CONVERSATIONS = {
    "skeptical-cfo": dict(
        intro="Hi Dana, this is Sam from Acme.",
        q_trigger="What do you use today to onboard new people into the finance team?",
        quote="For a team your size it's forty-nine dollars per seat per month.",
        q_pain="Have you ever found billing errors in what carriers charge you?",
        concern="We would switch you over in one go at the start of the quarter.",
        resolve_b="We handle it for you with a phased plan, live in six weeks.",
        resolve_a="Customers like you see payback inside two quarters.",
        close="Could we book thirty minutes on Thursday to go through the numbers?"),
    "busy-it-director": dict(
        intro="Hi Marcus, this is Sam from Acme.",
        q_trigger="How do you handle software license requests on your team today?",
        quote="I'd love to give you a one-hour demo; it's a quick session.",
        q_pain="Is there a security audit coming up for you?",
        concern="Our license is priced for hospital groups like yours.",
        resolve_b="It works out to twelve dollars per user per month.",
        resolve_a="Then let me send a fifteen-minute recording you can watch.",
        close="Can we schedule a follow-up call next week?"),
    "friendly-champion": dict(
        intro="Hi Priya, this is Sam from Acme.",
        q_trigger="How do your reps decide what to update in the CRM today?",
        quote="Once you sign the contract we include onboarding.",
        q_pain="How accurate is your pipeline forecast right now?",
        concern="Most teams spend about twenty thousand a year on it.",
        resolve_b="We could start with a free pilot and build the business case from it.",
        resolve_a="Let's set up a meeting with Karen so we can decide together.",
        close="Can we book that meeting for next Tuesday?"),
    "procurement-gatekeeper": dict(
        intro="Hi Helen, this is Sam from Acme.",
        q_trigger="What does your process look like when a plant asks for a new vendor quote?",
        quote="I'd like to speak with your plant manager; I can send our security review first.",
        q_pain="Who on the maintenance side requested this?",
        concern="Our list price is forty thousand a year.",
        resolve_b="With a multi-year agreement the volume terms bring it down.",
        resolve_a="I'll fill in your vendor questionnaire and submit it this week.",
        close="Can we put a follow-up call on the calendar for next week?"),
    "happy-with-incumbent": dict(
        intro="Hi Tom, this is Sam from Acme.",
        q_trigger="How does your current vendor handle the queue when volume peaks?",
        quote="We are better than your current provider, and we run alongside it.",
        q_pain="What changes are coming up next year with the merger?",
        concern="The price is two dollars per conversation.",
        resolve_b="You'd pay only for usage, and only for overflow.",
        resolve_a="We wouldn't replace anything: we take the overflow side by side with what you have.",
        close="Could we set up a pilot for the busy season next month?"),
    "price-sensitive-smb": dict(
        intro="Hi Gina, this is Sam from Acme.",
        q_trigger="How much time does the monthly bookkeeping take you at night?",
        quote="The subscription is thirty dollars a month and you can cancel anytime.",
        q_pain="How do you keep track of inventory and food waste?",
        concern="The software runs on a small platform we install for you.",
        resolve_b="We set it up on a tablet in ten minutes and train your staff.",
        resolve_a="It's less than one wasted case of milk a week, so it pays for itself.",
        close="Could we set up a free trial next week?"),
    "technical-evaluator": dict(
        intro="Hi Alex, this is Sam from Acme.",
        q_trigger="How does your API latency look today on the current platform?",
        quote="Our platform uses a proprietary SDK, but everything exports to an open standard.",
        q_pain="How often is your team paged for an incident?",
        concern="Pricing starts at two thousand a month.",
        resolve_b="It's a flat committed tier with a cap, so no surprises.",
        resolve_a="It's open source under Apache, and you can self-host or export at any time.",
        close="Can we schedule a technical deep-dive next week?"),
    "two-minute-executive": dict(
        intro="Hi Renee, this is Sam from Acme.",
        q_trigger="What is shrink costing your stores this year?",
        quote="I'd like an hour to walk you through it with a demo; results included.",
        q_pain="How are you handling staff turnover and scheduling?",
        concern="The price is about ten thousand per store per year.",
        resolve_b="Retailers see a three percent cut in shrink, a payback inside a year.",
        resolve_a="Fifteen minutes with your VP of Ops, and we only talk outcomes.",
        close="Can we set up that fifteen-minute call next week?"),
}
ARC = ("intro", "q_trigger", "quote", "q_pain", "concern", "resolve_b", "resolve_a", "close")


def test_every_built_in_persona_has_a_conversation():
    assert sorted(CONVERSATIONS) == sorted(PERSONAS)


def _hit(text, phrases):
    return [k for k in phrases if k in text.lower()]


@pytest.mark.parametrize("persona_id", sorted(CONVERSATIONS))
def test_a_realistic_conversation_gets_a_buyer_that_behaves_like_one(persona_id):
    persona, lines = PERSONAS[persona_id], CONVERSATIONS[persona_id]
    first = next(o for o in persona.objections if _hit(lines["quote"], o.triggers))
    second = next(o for o in persona.objections if o is not first)
    # The conversation is built to test what it claims: the words are really there.
    assert any(_hit(lines["q_trigger"], o.triggers) for o in persona.objections), "the question contains a trigger"
    assert _hit(lines["quote"], first.triggers) and _hit(lines["quote"], first.resolved_by)
    replies = dict(zip(ARC, (reply for reply, _ in talk(persona, *(lines[k] for k in ARC))), strict=True))
    objections = [o.text for o in persona.objections]
    reveals = [p.reveal for p in persona.pains]

    assert replies["intro"] in persona.fillers
    # A discovery question is answered with what it asks about, whatever trigger word it contains.
    assert replies["q_trigger"] in reveals and not any(t in replies["q_trigger"] for t in objections)
    # The statement earns the objection; saying the fix in the same turn does not settle it at once.
    assert replies["quote"] == first.text
    # Ignored, it comes back (after the answer to the question the rep asked instead).
    answer, _, back = replies["q_pain"].partition(first.text)
    assert answer.strip().removesuffix("That still leaves my concern.").strip() in reveals
    assert replies["q_pain"].endswith(first.text)
    # A new concern while one is pending is raised, never met with a filler.
    assert replies["concern"] == second.text
    # Settling the newer concern brings the set-aside one back; settling that one is heard.
    assert replies["resolve_b"] == f"{second.resolved_reply} {first.text}"
    assert replies["resolve_a"] == first.resolved_reply
    assert replies["close"] == persona.next_step.accept
    state, _ = fold_state(persona, [Turn("rep", lines[k]) for k in ARC])
    assert state.agreed_next_step and state.pending is None and sorted(state.resolved) == sorted(
        [first.id, second.id])
    assert not any(r in persona.fillers for k, r in replies.items() if k != "intro")


def test_the_onboarding_question_from_the_issue_is_answered_not_objected_to():
    replies = talk(CFO, "Hi Dana, this is Sam from Acme.", "What do you use today to onboard new reps?")
    risk = next(o for o in CFO.objections if o.id == "implementation-risk")
    assert replies[1][0] != risk.text and replies[1][0] in [p.reveal for p in CFO.pains]


def test_a_price_quote_with_a_resolution_phrase_is_pushed_back_on():
    price = next(o for o in CFO.objections if o.id == "price")
    (reply, _), = talk(CFO, "It's forty-nine dollars per seat per month.")
    assert reply == price.text and price.resolved_reply not in reply
    state, _ = fold_state(CFO, [Turn("rep", "It's forty-nine dollars per seat per month.")])
    assert state.pending == "price" and state.resolved == []


def test_a_price_quote_while_an_objection_is_pending_raises_price_not_a_filler():
    risk = next(o for o in CFO.objections if o.id == "implementation-risk")
    price = next(o for o in CFO.objections if o.id == "price")
    replies = talk(CFO, "We would run the migration over a weekend.", "It's forty-nine dollars per seat per month.")
    assert replies[0][0] == risk.text
    assert replies[1][0] == price.text


def test_an_ignored_objection_keeps_coming_back_until_it_is_answered():
    price = next(o for o in CFO.objections if o.id == "price")
    replies = talk(CFO, "Our pricing is simple.", "We're the market leader.", "Our customers love us.",
                   "Most see a return inside two quarters.")
    assert replies[0][0] == price.text
    assert replies[1][0].endswith(price.text) and replies[2][0].endswith(price.text)
    assert replies[3][0] == price.resolved_reply


def test_questions_are_answered_while_an_objection_waits():
    replies = talk(CFO, "Our pricing is simple.", "How does your month-end close work?")
    assert replies[1][0].startswith(CFO.pains[0].reveal)


def test_asking_for_a_meeting_while_an_objection_waits_is_declined_with_the_objection():
    price = next(o for o in CFO.objections if o.id == "price")
    replies = talk(CFO, "How does your month-end close work?", "Have you tried a vendor for this before?",
                   "Our pricing is simple.", "Can we book a meeting Thursday?")
    assert replies[3][0] == f"{CFO.next_step.decline} That still leaves my concern. {price.text}"
