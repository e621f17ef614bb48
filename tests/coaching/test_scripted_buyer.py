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
