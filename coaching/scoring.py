"""The heuristic scorer: the six-dimension rubric (coaching-anchors section 3.3) decided from the
call's analysis, without a model. Pure and deterministic.

`CHECKS` is the rubric's catalog, four yes/no checks per dimension; the LLM scorer asks the model
about the same checks. Each check here reads behaviours in context, not keyword counts: an
implication question counts when it follows a pain the buyer stated and the buyer puts a number on
it; a paraphrase counts when it reuses the previous buyer turn's words; an acknowledgment counts in
the rep turn right after the objection; a pitch ending in a question mark is not discovery.

Every check cites the turn its verdict rests on (for a failed check, where the behaviour was due)
and a failed one says what was missing, where it would have fit and what to say there, in the
buyer's own words when the call has them.

A call in which no objection came up passes the objection checks only if the rep asked for
concerns ("what would stop you...?"): objections that are never surfaced are not handled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import msgspec

from coaching.analytics import (
    CLOSING_WINDOW,
    PERMISSION,
    PRODUCT,
    REACTION,
    Analysis,
    ObjectionHit,
    Sentence,
    Turn,
    analyse,
    content_words,
    fmt_ms,
    is_quantified,
    metrics_of,
    pain_clause,
    pain_sentence,
    quote,
)
from coaching.persona import Persona
from coaching.scorecard import (
    DIMENSIONS,
    Check,
    CheckEvidence,
    Dimension,
    DimensionKey,
    Feedback,
    OnDimension,
    Scorecard,
    ScoringConfig,
    assemble,
    dimension_score,
)
from coaching.session_log import Segment

__all__ = ["CHECKS", "RUBRIC_VERSION", "CheckSpec", "HeuristicScorer"]

RUBRIC_VERSION = 1
INTRO_MS = 30_000  # name, company and reason within the first 30 s


class CheckSpec(msgspec.Struct, frozen=True):
    id: str  # "<dimension>.<check>", stable across rubric versions
    label: str  # the yes/no question
    guide: str  # one line: what passes


CHECKS: dict[DimensionKey, tuple[CheckSpec, ...]] = {
    "opening": (
        CheckSpec("opening.introduction", "States name, company and reason for the call in the first ~30 s",
                  "Within 30 s the rep says who they are, where they are from and why they are calling."),
        CheckSpec("opening.permission", "Proposes an agenda or asks for time, and gets a yes",
                  "Early on the rep asks for time or proposes what the call covers, and the buyer agrees."),
        CheckSpec("opening.personalised", "Makes a personalised reference to the buyer's role, company or context",
                  "The opening mentions something specific to this buyer: their company, role, news or prior contact."),
        CheckSpec("opening.question_before_pitch", "Asks a first discovery question before any product pitch",
                  "The rep's first real question about the buyer comes before any description of the product."),
    ),
    "discovery": (
        CheckSpec("discovery.open_situation", "Asks at least one open question about the current situation",
                  "An open question (how/what/walk me through) about how things work today, answered at length."),
        CheckSpec("discovery.pain", "Asks a problem/pain question and the buyer states a pain",
                  "The rep asks about problems or challenges and the buyer's answer names one."),
        CheckSpec("discovery.implication", "Asks an implication question about a stated pain and the buyer "
                  "quantifies it", "After the buyer names a pain, the rep asks what it costs or affects and the "
                  "buyer answers with a number (hours, money, percent)."),
        CheckSpec("discovery.qualification", "Covers at least two qualification elements (budget, decision "
                  "process, timeline, decision criteria)", "Before the close, the rep asks about two or more of "
                  "budget, who decides, timeline and decision criteria."),
    ),
    "listening": (
        CheckSpec("listening.paraphrase", "Paraphrases or labels what the buyer said",
                  "\"It sounds like...\" / \"what I'm hearing is...\" restating the buyer's last turn in their words."),
        CheckSpec("listening.follow_up", "Asks a follow-up question that reuses the buyer's own words",
                  "A question built on the buyer's previous answer, reusing its key words."),
        CheckSpec("listening.refers_back", "Refers back to something the buyer said earlier in the call",
                  "\"You mentioned...\" about a point from an earlier (not the last) buyer turn."),
        CheckSpec("listening.no_interruption", "Lets the buyer finish: no rep overlap over 1 s",
                  "The rep never starts talking more than a second before the buyer has finished."),
    ),
    "value": (
        CheckSpec("value.linked_to_pain", "Links a capability to a pain the buyer stated, in the buyer's words",
                  "A statement of what the product would do about a pain the buyer named, reusing their words."),
        CheckSpec("value.proof", "Gives a proof point (number, customer example) relevant to the buyer",
                  "A customer example with a number, about the buyer's situation or industry."),
        CheckSpec("value.no_long_monologue", "Keeps every stretch of talking short (no product monologue over ~2 min)",
                  "No rep monologue over 2 minutes (a sixth of the call for short calls, at least 60 s)."),
        CheckSpec("value.checks_reaction", "Checks the buyer's reaction after presenting value",
                  "Right after describing what the product does, the rep asks how that lands."),
    ),
    "objections": (
        CheckSpec("objections.acknowledge", "Acknowledges the objection without arguing",
                  "The rep's reply to each objection opens by acknowledging it, not contradicting it."),
        CheckSpec("objections.clarify", "Asks a clarifying question to isolate the real concern",
                  "In reply to each objection the rep asks what is behind it before answering."),
        CheckSpec("objections.value_response", "Answers with value tied to the buyer's stated need, not a discount",
                  "The answer ties back to a pain the buyer stated (or what settles it) before any discount."),
        CheckSpec("objections.confirm_resolved", "Confirms the concern is resolved before moving on",
                  "After answering, the rep asks whether that addresses the concern."),
    ),
    "closing": (
        CheckSpec("closing.summary", "Summarises the agreed needs and value before asking for the next step",
                  "In the close, a recap of the buyer's pains in their words, before or with the ask."),
        CheckSpec("closing.ask", "Asks for a specific commitment (meeting, demo, trial, decision)",
                  "The rep asks for a concrete next meeting, demo, trial or decision."),
        CheckSpec("closing.dated_owner", "The next step has a date/time and an owner",
                  "A next step with a day or time and who does what (\"I'll send the invite for Tuesday at 10\")."),
        CheckSpec("closing.stakeholders", "Confirms who else must be involved in the decision",
                  "In the close, the rep asks who else should join or signs off."),
    ),
}

# --- phrase lists the checks read -----------------------------------------------------------------

_NAME = re.compile(r"\b(this is|my name is|my name's|i'm|i am|it's) [A-Z][a-z]+")
_COMPANY = re.compile(r"\b(from|with|here at|calling from) [A-Z][A-Za-z]+")
_REASON = re.compile(r"\b(reason (i'm|i am|for) (calling|my call|the call)|i'm calling (because|about|to)|calling "
                     r"(because|about|since)|reaching out (because|about|since)|the reason i|wanted to (talk|see|ask|"
                     r"share|find out)|i called (because|to)|why i'm calling)\b")
_AFFIRM = re.compile(r"\b(sure|yes|yeah|go ahead|okay|ok|fine|that works|alright|go on|shoot|i have|i've got|quick"
                     r"|works for me|happy to)\b")
_REFUSE = re.compile(r"\b(no time|not now|bad time|can't talk|not interested|call (me )?back)\b")
_PERSONAL = re.compile(r"\b(i saw|i noticed|i read|i see that|congrat\w*|your (recent|new)|you (posted|wrote|spoke)"
                       r"|last time we|when we spoke|saw your|noticed your|in your role|as (the |a )?(head|director|vp"
                       r"|owner|manager|cfo|cto) of|your (hospital|bakery|cafe|clinic|warehouse|fleet|carrier))\b")
_SITUATION = re.compile(r"\b(today|currently|right now|now|process|handle|handling|work|works|set up|setup|look like"
                        r"|manage|managing|run|running|day to day|day-to-day|typical|walk me through|tell me about)\b")
_PAIN_Q = re.compile(r"\b(challeng\w*|problem\w*|struggl\w*|frustrat\w*|hard|hardest|difficult|pain\w*|slow\w*"
                     r"|bottleneck\w*|worr\w*|keeps? you up|not working|wrong|issue\w*|headache\w*|biggest|costing"
                     r"|break\w*|fall\w* through|get in the way|annoy\w*)\b")
_IMPLICATION = re.compile(r"\b(impact\w*|cost (you|the|your|in)|costing|mean for|means for|what does (\w+ ){0,6}mean"
                          r"|revenue|losing you|affect\w*|consequence\w*"
                          r"|what happens|how much (time|money)|how many (hours|days|people|tickets|calls|nights)"
                          r"|how often|result\w*|downstream|knock-on|in (dollars|hours)|add up|what does that (do|mean)"
                          r"|translate)\b")
_QUALIFY: dict[str, re.Pattern[str]] = {
    "budget": re.compile(r"\b(budget\w*|spend\w*|invest\w*|funding|funded|afford|price range|allocated)\b"),
    "decision process": re.compile(r"\b(who else|who besides|besides you|weigh in|decision|decide\w*|sign[- ]off"
                                   r"|signs off|approv\w*|involved"
                                   r"|stakeholder\w*|buying process|final say|the board)\b"),
    "timeline": re.compile(r"\b(timeline|timeframe|time frame|by when|deadline|how soon|when do you need|when would"
                           r" you|go[- ]live|target date|when does)\b"),
    "decision criteria": re.compile(r"\b(criteria|what matters most|evaluat\w*|looking for in|must[- ]have\w*"
                                    r"|success look|deciding factor|requirements?|compar\w*)\b"),
}
_LABEL = re.compile(r"\b(it sounds like|sounds like|what i'm hearing|if i heard you right|if i'm hearing you"
                    r"|so you're saying|in other words|it seems like|let me make sure i)\b")
_REFER = re.compile(r"\b(you mentioned|you said|earlier you|going back to|you told me|as you said|like you said"
                    r"|you brought up|you were saying)\b")
_BENEFIT = re.compile(r"\b(which means|that means|so you|so your|you'd|you would|you could|lets you|helps?"
                      r" (you|your)|would (cut|save|free|give|take|remove|reduce)|cuts?|saves?|frees?|reduc\w*"
                      r"|automat\w*|eliminat\w*|without)\b")
_PROOF = re.compile(r"\b(customers?|clients?|case study|for example|for instance|one of our|teams? like yours"
                    r"|companies like|an? (\w+ )?(hospital|bakery|insurer|carrier|cafe|clinic|distributor|retailer"
                    r"|manufacturer|logistics|shipper)|we worked with)\b")
_ACK = re.compile(r"\b(i understand|understand(able)?|that's fair|fair (point|question|enough)|makes sense|i hear you"
                  r"|good question|i get (that|it)|totally get|appreciate|that's a (real|reasonable|valid|big)"
                  r"|you're right|it sounds like|of course|i can see why|no wonder)\b")
_ARGUE_START = re.compile(r"^(no\b|actually\b|well, actually|but\b|that's not|not really)")
_ARGUE = re.compile(r"\b(that's not true|you're wrong|i disagree|not the case|that's wrong|trust me)\b")
_CLARIFY = re.compile(r"\b(compared to|comparing|help me understand|when you say|what's behind|other than|besides"
                      r"|is that the only|the main|what specifically|which part|what would (it|you) need"
                      r"|what would have to|what matters|what are you|is it the|is it more|what's driving"
                      r"|what makes)\b")
_DISCOUNT = re.compile(r"\b(discount\w*|lower the price|cut the price|knock (off|\w+ off)|% off|percent off|cheaper"
                       r"|special (price|deal|offer)|price match|match (their|the) price|drop the price|free month)\b")
_CONFIRM = re.compile(r"\b((does|would|did|will) that (address|answer|help|solve|ease|change|cover|take care of"
                      r"|work for you|settle|fix|work)|is that (a fair|fair|enough)|does that make sense"
                      r"|how does that sound|are you (comfortable|okay) with|address(es)? your concern"
                      r"|is that the kind of|did that answer)\b")
_PROBE = re.compile(r"\b(any concerns|what concerns|what would stop|get in the way|hesitation|reservations"
                    r"|what could prevent|what's holding|anything that would keep)\b")
_SUMMARY = re.compile(r"\b(to recap|recap|to summari[sz]e|summing up|to sum up|what i'm hearing|based on what you"
                      r"('ve| have) (told|said|shared)|from what you('ve| have) (told|said|shared)|you mentioned"
                      r"|you told me|let me play (that|it) back|so you've got)\b")
_ASK_OBJECT = re.compile(r"\b(meeting|demo|trial|pilot|call|session|walkthrough|walk-through|review|proposal|decision"
                         r"|workshop|invite|calendar)\b")
_ASK_FORM = re.compile(r"\b(can we|could we|would you|shall we|let's|how about|are you open|does (\w+ ){0,3}work"
                       r"|can i (book|send|set|put|get)|should we|why don't we|i'd like to (book|set|schedule)"
                       r"|let me (book|send|set)|are you free|set up|book|schedule)\b")
_STAKEHOLDER = re.compile(r"\b(who else|anyone else|anybody else|sign[- ]off|signs off|decision|involved|bring in"
                          r"|loop in|join us|stakeholders?|approv\w*|your (boss|manager|team lead|security lead|cfo"
                          r"|board)|should be there|should join|include (your|my|the) \w+)\b")


_LEAD_IN = re.compile(r"^((hm+|okay|ok|well|but|so|and|honestly|look|to be honest)[,.]?\s+)+", re.IGNORECASE)


_SWAP = {"i": "you", "i'm": "you're", "i've": "you've", "i'd": "you'd", "me": "you", "my": "your", "we": "you",
         "we're": "you're", "we've": "you've", "we'd": "you'd", "us": "you", "our": "your", "ours": "yours"}


def _as_you(text: str) -> str:
    """The buyer's words as the rep would say them back: "our queue" -> "your queue"."""
    return " ".join(_SWAP.get(w.lower(), w) for w in text.split())


class _Outcome(NamedTuple):
    passed: bool
    evidence: CheckEvidence
    feedback: Feedback | None = None


class _Call:
    """One call under scoring: its analysis, its buyer, and the phrasing helpers the checks share."""

    def __init__(self, analysis: Analysis, persona: Persona | None) -> None:
        self.a = analysis
        self.persona = persona
        self.name = persona.name.split()[0] if persona else "the buyer"
        self.company = persona.company if persona else "their company"
        self.close_ms = analysis.end_ms - int(analysis.duration_ms * CLOSING_WINDOW)
        self.opening_ms = analysis.start_ms + max(60_000, int(analysis.duration_ms * 0.15))
        self.pain_turns = [analysis.turns[i] for i in analysis.pains]
        self.rep_sentences = list(analysis.rep_sentences())
        self.persona_terms = (content_words(f"{persona.company} {persona.industry}") if persona else frozenset())
        windows: set[int] = set()
        for o in analysis.objections:
            windows.update(t.index for t in self.response(o))
        self.objection_turns = windows

    # --- reading

    def rep(self, before_ms: int | None = None, after_ms: int | None = None) -> list[Sentence]:
        """The rep's sentences, in order, that start in [after_ms, before_ms)."""
        if before_ms is None and after_ms is None:
            return self.rep_sentences
        return [s for s in self.rep_sentences if (before_ms is None or s.start_ms < before_ms)
                and (after_ms is None or s.start_ms >= after_ms)]

    def turn(self, s: Sentence) -> Turn:
        return self.a.turns[s.turn]

    def buyer_before(self, s: Sentence) -> Turn | None:
        return self.a.previous_turn(s.turn, "buyer")

    def buyer_after(self, s: Sentence) -> Turn | None:
        return self.a.next_turn(s.turn, "buyer")

    def response(self, o: ObjectionHit) -> list[Turn]:
        """The rep turns answering an objection: the next two, until the next objection."""
        later = {x.turn for x in self.a.objections if x.turn > o.turn}
        out: list[Turn] = []
        for t in self.a.turns[o.turn + 1:]:
            if t.index in later or len(out) == 2:
                break
            if t.role == "rep":
                out.append(t)
        return out

    # --- phrasing

    def gist(self, text: str, words: int = 14) -> str:
        """A buyer's words, trimmed for quoting inside an example sentence."""
        parts = _LEAD_IN.sub("", text.strip()).rstrip(".!?").split()
        if not parts:
            return ""
        if parts[0] not in ("I", "I'm", "I've", "I'd") and not parts[0][1:].isupper():
            parts[0] = parts[0][0].lower() + parts[0][1:]
        return " ".join(parts[:words]) + ("…" if len(parts) > words else "")

    def pain_gist(self, before: int | None = None) -> str | None:
        """The first pain the buyer stated (before turn `before`), in the rep's mouth."""
        turns = [t for t in self.pain_turns if before is None or t.index < before]
        return _as_you(self.pain_words(turns[0])) if turns else None

    def pain_words(self, turn: Turn, words: int = 14) -> str:
        sentence = pain_sentence(turn)
        text = pain_clause(sentence.text)
        following = turn.sentences.index(sentence) + 1
        if len(text.split()) < 5 and following < len(turn.sentences):  # "The complaints. Our score dropped..."
            text = f"{text.rstrip('.!?')}: {turn.sentences[following].text}"
        return self.gist(text, words)

    @property
    def to_name(self) -> str:
        """Addresses the buyer by name (", Dana"), when the call has one."""
        return f", {self.name}" if self.persona else ""

    def topic(self) -> str:
        """What the buyer's problem is about, in a word or two: the persona's pain keyword the buyer
        used, else the longest word of the first pain the buyer stated."""
        said = " ".join(t.text.lower() for t in self.pain_turns)
        if self.persona is not None:
            keywords = [k for p in self.persona.pains for k in p.keywords]
            keyword = next((k for k in keywords if k in said), keywords[0])
            if " " in keyword:
                return keyword
            return next((w.strip(",.;:!?") for w in said.split() if keyword in w), keyword)
        if self.pain_turns:
            words = [w.strip(",;:") for w in pain_sentence(self.pain_turns[0]).lower.rstrip(".!?").split()
                     if content_words(w) and not is_quantified(w)]
            if words:
                return max(words, key=len)
        return "this"

    def ev(self, s: Sentence | Turn | None) -> CheckEvidence:
        if s is None:
            return CheckEvidence(None, self.a.start_ms, "")
        if isinstance(s, Turn):
            return CheckEvidence(s.segment_ids[0], s.start_ms, quote(s.first_segment_text))
        return CheckEvidence(s.segment_id, s.start_ms, quote(s.text))

    def after(self, t: Turn | None) -> tuple[str, int]:
        """`where` right after a turn: the buyer's words when it is theirs."""
        if t is None:
            return "at the start of the call", self.a.start_ms
        if t.role == "buyer":
            return f"at {fmt_ms(t.end_ms - self.a.start_ms)}, after {self.name} said \"{quote(t.text, 70)}\"", t.end_ms
        return f"at {fmt_ms(t.end_ms - self.a.start_ms)}, after you said \"{quote(t.text, 70)}\"", t.end_ms

    def at(self, s: Sentence | Turn) -> tuple[str, int]:
        return f"at {fmt_ms(s.start_ms - self.a.start_ms)}, where you said \"{quote(s.text, 70)}\"", s.start_ms

    def fail(self, evidence: Sentence | Turn | None, missing: str, where: tuple[str, int], example: str) -> _Outcome:
        return _Outcome(False, self.ev(evidence), Feedback(missing, where[0], where[1], example))

    def first_rep_turn(self) -> Turn | None:
        return next((t for t in self.a.turns if t.role == "rep"), None)

    def first_buyer_turn(self) -> Turn | None:
        return next((t for t in self.a.turns if t.role == "buyer"), None)


# Words too common in calls to show that the rep reused what the buyer said.
_GENERIC = frozenset("day time week month year people team work thing call minute hour".split())


def _shares(s: Sentence, turn: Turn | None, n: int) -> bool:
    return turn is not None and len((s.content & turn.content) - _GENERIC) >= n


def _first(items: Iterable[Sentence], test: Callable[[Sentence], bool]) -> Sentence | None:
    return next((s for s in items if test(s)), None)


# --- opening ------------------------------------------------------------------------------------


def _introduction(c: _Call) -> _Outcome:
    early = c.rep(before_ms=c.a.start_ms + INTRO_MS)
    name = _first(early, lambda s: bool(_NAME.search(s.text)))
    company = _first(early, lambda s: bool(_COMPANY.search(s.text)))
    reason = _first(early, lambda s: bool(_REASON.search(s.lower)))
    if name and company and reason:
        return _Outcome(True, c.ev(reason))
    missing = [part for part, found in (("your name", name), ("your company", company),
                                        ("the reason for the call", reason)) if not found]
    why = (f"I work with {c.persona.industry.lower()} teams like {c.company} on {c.topic()}" if c.persona
           else f"teams I talk to struggle with {c.topic()}")
    first = c.first_rep_turn()
    return c.fail(early[0] if early else first, f"In the first 30 s you did not give {' and '.join(missing)}.",
                  c.at(first) if first else c.after(None),
                  f"Hi {c.name if c.persona else 'there'}, this is [your name] from [your company]. The reason I'm "
                  f"calling: {why}.")


def _permission(c: _Call) -> _Outcome:
    asked = _first(c.rep(before_ms=c.opening_ms), lambda s: bool(PERMISSION.search(s.lower)))
    if asked is not None:
        reply = c.buyer_after(asked)
        if reply is not None and _AFFIRM.search(reply.text.lower()) and not _REFUSE.search(reply.text.lower()):
            return _Outcome(True, c.ev(asked))
        return c.fail(asked, f"You asked for time, but {c.name} did not agree; you carried on anyway.",
                      c.after(reply), f"Sounds like a bad moment{c.to_name}. Could we take ten minutes tomorrow "
                      "morning instead?")
    first = c.first_rep_turn()
    return c.fail(first, "You never asked for time or proposed what the call would cover.",
                  c.after(first) if first else c.after(None),
                  f"Do you have five minutes{c.to_name}? I'd like to ask how you deal with {c.topic()} today and then "
                  "see together whether a next step makes sense.")


def _personalised(c: _Call) -> _Outcome:
    early = c.rep(before_ms=c.opening_ms)
    hit = _first(early, lambda s: bool(_PERSONAL.search(s.lower) or (s.content & c.persona_terms)))
    if hit is not None:
        return _Outcome(True, c.ev(hit))
    first = c.first_rep_turn()
    example = (f"I saw {c.company} has \"{c.persona.goals[0].lower()}\" on the agenda this year, so I thought of "
               "you." if c.persona else "I saw [something specific: their role, a company announcement, a mutual "
               "contact], so I thought of you.")
    return c.fail(first, "Nothing in your opening was specific to this buyer or their company.",
                  c.at(first) if first else c.after(None), example)


def _question_before_pitch(c: _Call) -> _Outcome:
    question = next((q.sentence for q in c.a.questions if q.kind == "discovery"), None)
    before = question.start_ms + 1 if question else None
    pitch = _first(c.rep(before_ms=before), lambda s: bool(PRODUCT.search(s.lower)))
    pitch_q = next((q.sentence for q in c.a.questions if q.kind == "pitch"), None)
    if pitch is None or (pitch_q is not None and pitch_q.start_ms < pitch.start_ms):
        pitch = pitch_q
    if question is not None and (pitch is None or question.start_ms < pitch.start_ms):
        return _Outcome(True, c.ev(question))
    example = f"Before I tell you anything about us: how do you deal with {c.topic()} today?"
    if pitch is None:
        first = c.first_rep_turn()
        return c.fail(first, "You never asked a question about the buyer's situation.",
                      c.after(first) if first else c.after(None), example)
    return c.fail(pitch, "You described the product before asking a single question about the buyer.",
                  c.at(pitch), example)


# --- discovery ----------------------------------------------------------------------------------


def _open_situation(c: _Call) -> _Outcome:
    for q in c.a.questions:
        if q.kind == "discovery" and q.open and _SITUATION.search(q.sentence.lower):
            answer = c.buyer_after(q.sentence)
            if answer is not None and answer.words >= 8:
                return _Outcome(True, c.ev(q.sentence))
    closed = next((q.sentence for q in c.a.questions if q.kind == "discovery"), None)
    where = c.after(c.first_buyer_turn())
    return c.fail(closed or c.first_rep_turn(), "No open question about how things work today (closed or no "
                  "questions get short answers).", where,
                  f"Walk me through what happens today at {c.company if c.persona else 'your end'} with {c.topic()}, "
                  "step by step?")


def _pain(c: _Call) -> _Outcome:
    asked: Sentence | None = None
    for q in c.a.questions:
        if q.kind == "discovery" and _PAIN_Q.search(q.sentence.lower):
            answer = c.buyer_after(q.sentence)
            if answer is not None and answer.index in c.a.pains:
                return _Outcome(True, c.ev(q.sentence))
            asked = asked or q.sentence
    example = f"When it comes to {c.topic()}, what's the hardest part for you right now?"
    if asked is not None:
        return c.fail(asked, "You asked about problems, but the buyer did not name one: dig one level deeper.",
                      c.after(c.buyer_after(asked)), f"If you could change one thing about {c.topic()} tomorrow, "
                      "what would it be?")
    first_q = next((q.sentence for q in c.a.questions if q.kind == "discovery"), None)
    return c.fail(first_q or c.first_rep_turn(), "You never asked what is hard or not working for them.",
                  c.after(c.buyer_after(first_q) if first_q else c.first_buyer_turn()), example)


def _implication(c: _Call) -> _Outcome:
    for pain in c.pain_turns:
        for t in c.a.turns[pain.index + 1:pain.index + 5]:
            if t.role != "rep":
                continue
            for s in t.sentences:
                if _IMPLICATION.search(s.lower) and (s.text.endswith("?") or s.lower.startswith(("how", "what"))):
                    answer = c.buyer_after(s)
                    if answer is not None and is_quantified(answer.text):
                        return _Outcome(True, c.ev(s))
    if not c.pain_turns:
        return c.fail(c.first_buyer_turn(), "No pain came up, so there was nothing to size.",
                      c.after(c.first_buyer_turn()),
                      f"Once {c.name} names a problem, ask: 'What does that cost you each month, in hours or money?'")
    pain = c.pain_turns[0]
    return c.fail(pain, "The buyer named a pain but you never asked what it costs them, so it stayed unquantified.",
                  c.after(pain), f"When you say \"{c.pain_words(pain)}\", what does that cost you "
                  "in hours or money each month?")


def _qualification(c: _Call) -> _Outcome:
    found: dict[str, Sentence] = {}
    for q in c.a.questions:
        if q.kind != "discovery" or q.sentence.start_ms >= c.close_ms:
            continue
        for element, pattern in _QUALIFY.items():
            if element not in found and pattern.search(q.sentence.lower):
                found[element] = q.sentence
    if len(found) >= 2:
        return _Outcome(True, c.ev(sorted(found.values(), key=lambda s: s.start_ms)[1]))
    missing = [e for e in _QUALIFY if e not in found]
    asks = {"budget": "is there budget set aside for this", "decision process":
            f"who else at {c.company} weighs in on a decision like this",
            "timeline": f"by when do you need {c.topic()} sorted", "decision criteria": "what matters most when you "
            "compare options"}
    wanted = [asks[e] for e in missing][:2]
    last_q = next((q.sentence for q in reversed(c.a.questions) if q.sentence.start_ms < c.close_ms), None)
    where_turn = c.buyer_after(last_q) if last_q else c.first_buyer_turn()
    return c.fail(next(iter(found.values()), None) or last_q or c.first_rep_turn(),
                  f"Qualification covered {len(found)} of budget, decision process, timeline and criteria "
                  f"(missing {', '.join(missing)}).", c.after(where_turn),
                  f"Can I ask two practical things: {wanted[0]}, and {wanted[1]}?")


# --- listening ----------------------------------------------------------------------------------


def _paraphrase(c: _Call) -> _Outcome:
    for s in c.rep(before_ms=c.close_ms):
        if _LABEL.search(s.lower) and _shares(s, c.buyer_before(s), 2):
            return _Outcome(True, c.ev(s))
    buyer = [t for t in c.a.turns if t.role == "buyer"]
    target = c.pain_turns[0] if c.pain_turns else max(buyer, key=lambda t: t.ms) if buyer else None
    if target is None:
        return c.fail(None, "The buyer said nothing to paraphrase.", c.after(None),
                      "It sounds like ... - did I get that right?")
    return c.fail(target, "You never played the buyer's words back to them.", c.after(target),
                  f"It sounds like {_as_you(c.pain_words(target))} - did I get that right?")


def _follow_up(c: _Call) -> _Outcome:
    for q in c.a.questions:
        if q.kind == "discovery" and _shares(q.sentence, c.buyer_before(q.sentence), 2):
            return _Outcome(True, c.ev(q.sentence))
    target = c.pain_turns[0] if c.pain_turns else c.first_buyer_turn()
    nxt = c.a.next_turn(target.index, "rep") if target else None
    words = c.pain_words(target, 6) if target else "that"
    return c.fail(nxt or target, "Your questions did not build on the buyer's answers: none reused their words.",
                  c.after(target), f"You said \"{words}\" - what happens when that goes wrong?")


def _refers_back(c: _Call) -> _Outcome:
    for s in c.rep(before_ms=c.close_ms):
        if not _REFER.search(s.lower):
            continue
        last = c.buyer_before(s)
        earlier = [t for t in c.a.turns[:s.turn] if t.role == "buyer" and (last is None or t.index != last.index)]
        if any(_shares(s, t, 1) for t in earlier):
            return _Outcome(True, c.ev(s))
    mid = c.a.start_ms + c.a.duration_ms // 2
    later = next((t for t in c.a.turns if t.role == "rep" and t.start_ms >= mid), c.first_rep_turn())
    earlier_pain = c.pain_gist(later.index if later else None) or "..."
    return c.fail(later, "You never tied back to something the buyer told you earlier.",
                  c.at(later) if later else c.after(None),
                  f"Earlier you mentioned {earlier_pain} - how does that play into this?")


def _no_interruption(c: _Call) -> _Outcome:
    if not c.a.interruptions:
        story = c.a.longest_story
        if story is None:
            return _Outcome(True, c.ev(c.first_rep_turn()))
        return _Outcome(True, CheckEvidence(story.segment_id, story.start_ms, quote(story.text)))
    first = c.a.interruptions[0]
    n = len(c.a.interruptions)
    buyer = c.gist(first.buyer_text, 8)
    return _Outcome(False, CheckEvidence(first.segment_id, first.start_ms, quote(first.text)), Feedback(
        f"You talked over the buyer {n} time{'s' if n > 1 else ''} (more than a second of overlap).",
        f"at {fmt_ms(first.start_ms - c.a.start_ms)}, while {c.name} was saying \"{quote(first.buyer_text, 70)}\"",
        first.start_ms,
        f"Let {c.name} finish and pause a beat; if you do overlap: 'Sorry, go ahead - you were saying {buyer}?'"))


# --- value --------------------------------------------------------------------------------------


def _linked_to_pain(c: _Call) -> _Outcome:
    for s in c.rep():
        if s.text.endswith("?") or not _BENEFIT.search(s.lower):
            continue
        if any(p.index < s.turn and _shares(s, p, 2) for p in c.pain_turns):
            return _Outcome(True, c.ev(s))
    pitch = _first(c.rep(), lambda s: bool(PRODUCT.search(s.lower) or _BENEFIT.search(s.lower)))
    pain = c.pain_gist()
    example = (f"You said {pain}; [the capability] takes that off your plate, which means [the result in their terms]."
               if pain else "Tie each capability to a problem they named: 'You said X; this takes X off your plate.'")
    return c.fail(pitch or c.first_rep_turn(), "You described the product without linking it to a pain the buyer "
                  "stated in their words.", c.at(pitch) if pitch else c.after(c.first_buyer_turn()), example)


def _proof(c: _Call) -> _Outcome:
    buyer_words: frozenset[str] = frozenset().union(*(t.content for t in c.a.turns if t.role == "buyer"))
    relevant = buyer_words | c.persona_terms
    for s in c.rep():
        if _PROOF.search(s.lower) and is_quantified(s.text) and s.content & relevant:
            return _Outcome(True, c.ev(s))
    claim = _first(c.rep(), lambda s: bool(_PROOF.search(s.lower) or PRODUCT.search(s.lower)))
    industry = c.persona.industry.lower() if c.persona else ""
    article = "an" if industry[:1] in tuple("aeiou") else "a"
    who = f"{article} {industry} team like {c.company}'s" if c.persona else "a team like yours"
    return c.fail(claim or c.first_rep_turn(), "No proof point: a customer result with a number, close to the "
                  "buyer's situation.", c.at(claim) if claim else c.after(c.first_buyer_turn()),
                  f"One example: {who} cut {c.topic()} from [X] to [Y] within [N] weeks.")


def _no_long_monologue(c: _Call) -> _Outcome:
    limit_ms = min(120_000, max(60_000, c.a.duration_ms // 6))  # 2 min; a sixth of a short call, at least 60 s
    m = c.a.longest_monologue
    if m is None:
        return _Outcome(True, c.ev(c.first_buyer_turn()))
    evidence = CheckEvidence(m.segment_id, m.start_ms, quote(m.text))
    if m.end_ms - m.start_ms <= limit_ms:
        return _Outcome(True, evidence)
    seconds = (m.end_ms - m.start_ms) // 1000
    return _Outcome(False, evidence, Feedback(
        f"You talked for {seconds} s without handing over (top reps stop well before {limit_ms // 1000} s).",
        f"at {fmt_ms(m.start_ms + limit_ms - c.a.start_ms)}, {limit_ms // 1000} s into \"{quote(m.text, 60)}\"",
        m.start_ms + limit_ms, f"Stop after one point and ask: 'How does that compare with how you handle "
        f"{c.topic()} today?'"))


def _presents(s: Sentence) -> bool:
    return bool(PRODUCT.search(s.lower) or (not s.text.endswith("?") and _BENEFIT.search(s.lower)))


def _checks_reaction(c: _Call) -> _Outcome:
    first: Turn | None = None
    for t in c.a.turns:
        if t.role != "rep" or t.index in c.objection_turns or not any(_presents(s) for s in t.sentences):
            continue
        first = first or t
        nxt = c.a.next_turn(t.index, "rep")
        for turn in [t] + ([nxt] if nxt is not None and nxt.index not in c.objection_turns else []):
            hit = _first(turn.sentences, lambda s: bool(REACTION.search(s.lower)))
            if hit is not None:
                return _Outcome(True, c.ev(hit))
    target = first or c.first_rep_turn()
    pain = c.pain_gist()
    return c.fail(target, "After presenting you did not check how it landed.", c.after(target),
                  f"How does that land, given {pain}?" if pain else "How does that land for you?")


# --- objections ---------------------------------------------------------------------------------


def _each_objection(c: _Call, spec: str, judge: Callable[[ObjectionHit, list[Turn]], _Outcome]) -> _Outcome:
    """Passes when every objection raised was handled; cites the first that was not."""
    if not c.a.objections:
        probe = _first(c.rep(), lambda s: bool(_PROBE.search(s.lower)))
        if probe is not None:
            return _Outcome(True, c.ev(probe))
        before = next((t for t in reversed(c.a.turns) if t.role == "buyer" and t.start_ms < c.close_ms),
                      c.first_buyer_turn())
        return c.fail(before, f"No objection came up and you never asked for one, so none was handled ({spec}).",
                      c.after(before), f"Before we talk next steps: what would stop {c.company} from moving ahead "
                      "with this?")
    first_pass: _Outcome | None = None
    for o in c.a.objections:
        outcome = judge(o, c.response(o))
        if not outcome.passed:
            return outcome
        first_pass = first_pass or outcome
    assert first_pass is not None
    return first_pass


def _objection_where(c: _Call, o: ObjectionHit) -> tuple[str, int]:
    return c.after(c.a.turns[o.turn])


def _acknowledge(c: _Call) -> _Outcome:
    def judge(o: ObjectionHit, answer: list[Turn]) -> _Outcome:
        said = c.gist(o.sentence.text, 10)
        example = f"That's a fair question - {said} is exactly what I'd ask in your seat."
        reply = answer[0] if answer and answer[0].index == o.turn + 1 else None
        if reply is None:
            return c.fail(c.a.turns[o.turn], "Nobody answered the objection.", _objection_where(c, o), example)
        opening = " ".join(s.lower for s in reply.sentences[:2])
        if _ACK.search(opening) and not _ARGUE_START.match(reply.sentences[0].lower) and not _ARGUE.search(opening):
            return _Outcome(True, c.ev(reply.sentences[0]))
        return c.fail(reply.sentences[0], "You answered the objection without acknowledging it first"
                      + (" and argued with it." if _ARGUE_START.match(reply.sentences[0].lower)
                         or _ARGUE.search(opening) else "."), _objection_where(c, o), example)
    return _each_objection(c, "acknowledge", judge)


def _clarify(c: _Call) -> _Outcome:
    def judge(o: ObjectionHit, answer: list[Turn]) -> _Outcome:
        for t in answer[:2]:
            for s in t.sentences:
                q = s.text.endswith("?") and not REACTION.search(s.lower) and not _CONFIRM.search(s.lower)
                if q and (_CLARIFY.search(s.lower) or s.content & o.sentence.content):
                    return _Outcome(True, c.ev(s))
        return c.fail(answer[0] if answer else c.a.turns[o.turn], "You answered before finding out what was "
                      "really behind the objection.", _objection_where(c, o),
                      f"When you say \"{c.gist(o.sentence.text, 10)}\", is that the main concern, or is there "
                      "something else behind it?")
    return _each_objection(c, "clarify", judge)


def _value_response(c: _Call) -> _Outcome:
    def judge(o: ObjectionHit, answer: list[Turn]) -> _Outcome:
        needs = [p for p in c.pain_turns if p.index < o.turn]
        discount: Sentence | None = None
        for t in answer:
            for s in t.sentences:
                if _DISCOUNT.search(s.lower) and discount is None:
                    discount = s
                # Their words twice, or once (a long word) in a "which means / so you" statement.
                benefit = bool(_BENEFIT.search(s.lower)) and any(len(w) >= 5 for p in needs
                                                                 for w in (s.content & p.content) - _GENERIC)
                tied = (not s.text.endswith("?") and (benefit or any(_shares(s, p, 2) for p in needs)
                                                      or any(k in s.lower for k in o.resolved_by)))
                if tied and discount is None:
                    return _Outcome(True, c.ev(s))
        pain = c.pain_gist(o.turn)
        settle = f" (what settles it for {c.name}: {', '.join(o.resolved_by[:3])})" if o.resolved_by else ""
        example = (f"You told me {pain}. Fixing that is worth more than this costs{settle}." if pain
                   else f"Tie the answer to what they need{settle} rather than dropping the price.")
        if discount is not None:
            return c.fail(discount, "You reached for a discount before tying the answer to the buyer's need.",
                          _objection_where(c, o), example)
        return c.fail(answer[0] if answer else c.a.turns[o.turn], "Your answer did not tie back to a need the "
                      "buyer had stated.", _objection_where(c, o), example)
    return _each_objection(c, "answer with value", judge)


def _confirm_resolved(c: _Call) -> _Outcome:
    def judge(o: ObjectionHit, answer: list[Turn]) -> _Outcome:
        for t in answer:
            hit = _first(t.sentences, lambda s: bool(_CONFIRM.search(s.lower)) and s.text.endswith("?"))
            if hit is not None:
                return _Outcome(True, c.ev(hit))
        last = answer[-1] if answer else c.a.turns[o.turn]
        return c.fail(last, "You moved on without checking the concern was settled.", c.after(last),
                      f"Does that answer your concern about \"{c.gist(o.sentence.text, 8)}\", or is there more to it?")
    return _each_objection(c, "confirm", judge)


# --- closing ------------------------------------------------------------------------------------


def _ask_sentence(c: _Call) -> Sentence | None:
    return _first(c.rep(after_ms=c.close_ms), lambda s: bool(_ASK_OBJECT.search(s.lower) and _ASK_FORM.search(s.lower)))


def _last_rep_turn(c: _Call) -> Turn | None:
    return next((t for t in reversed(c.a.turns) if t.role == "rep"), None)


def _close_turn(c: _Call) -> Turn | None:
    """Where the close began: the rep's first turn in the closing window (else their last turn)."""
    return next((t for t in c.a.turns if t.role == "rep" and t.start_ms >= c.close_ms), _last_rep_turn(c))


def _summary(c: _Call) -> _Outcome:
    ask = _ask_sentence(c)
    needs = c.pain_turns or [t for t in c.a.turns if t.role == "buyer"]
    for s in c.rep(after_ms=c.close_ms):
        if ask is not None and s.start_ms > ask.start_ms and s.turn != ask.turn:
            break
        if _SUMMARY.search(s.lower) and any(_shares(s, p, 2) for p in needs):
            return _Outcome(True, c.ev(s))
    target = c.turn(ask) if ask else _close_turn(c)
    gists = [_as_you(c.pain_words(p, 8)) for p in c.pain_turns[:2]]
    recap = " and ".join(gists) if gists else "[what they told you]"
    return c.fail(target, "You went for the next step without recapping what the buyer told you.",
                  c.at(target) if target else c.after(None), f"So to recap: {recap} - did I get that right?")


def _ask(c: _Call) -> _Outcome:
    ask = _ask_sentence(c)
    if ask is not None:
        return _Outcome(True, c.ev(ask))
    last = _close_turn(c)
    who = f"{c.name} and whoever else should be there" if c.persona else "you and whoever else should be there"
    return c.fail(last, "The call ended without asking for a specific commitment.",
                  c.at(last) if last else c.after(None),
                  f"Can we book thirty minutes on Tuesday with {who} to walk through {c.topic()}?")


def _dated_owner(c: _Call) -> _Outcome:
    if c.a.next_step is not None:
        return _Outcome(True, c.ev(c.a.next_step))
    ask = _ask_sentence(c)
    target = c.turn(ask) if ask else _close_turn(c)
    return c.fail(ask or target, "The next step has no date/time or no owner: it can quietly slip.",
                  c.at(ask) if ask else (c.at(target) if target else c.after(None)),
                  f"I'll send the invite for Tuesday at 10 - you, me and whoever else at {c.company} should be there. "
                  "Does that work?")


def _stakeholders(c: _Call) -> _Outcome:
    hit = _first(c.rep(after_ms=c.close_ms), lambda s: bool(_STAKEHOLDER.search(s.lower)))
    if hit is not None:
        return _Outcome(True, c.ev(hit))
    ask = _ask_sentence(c)
    target = c.turn(ask) if ask else _close_turn(c)
    return c.fail(target, "You did not confirm who else has to be involved in the decision.",
                  c.after(target) if target else c.after(None),
                  f"Who else at {c.company} should be on that call, and who signs off on a decision like this?")


_DECIDE: dict[str, Callable[[_Call], _Outcome]] = {
    "opening.introduction": _introduction, "opening.permission": _permission, "opening.personalised": _personalised,
    "opening.question_before_pitch": _question_before_pitch,
    "discovery.open_situation": _open_situation, "discovery.pain": _pain, "discovery.implication": _implication,
    "discovery.qualification": _qualification,
    "listening.paraphrase": _paraphrase, "listening.follow_up": _follow_up, "listening.refers_back": _refers_back,
    "listening.no_interruption": _no_interruption,
    "value.linked_to_pain": _linked_to_pain, "value.proof": _proof, "value.no_long_monologue": _no_long_monologue,
    "value.checks_reaction": _checks_reaction,
    "objections.acknowledge": _acknowledge, "objections.clarify": _clarify,
    "objections.value_response": _value_response, "objections.confirm_resolved": _confirm_resolved,
    "closing.summary": _summary, "closing.ask": _ask, "closing.dated_owner": _dated_owner,
    "closing.stakeholders": _stakeholders,
}


def _empty(c: _Call, spec: CheckSpec) -> _Outcome:
    return c.fail(None, "The call has no transcript to judge.", c.after(None), f"Practice the call: {spec.guide}")


def _decide(c: _Call, spec: CheckSpec) -> Check:
    outcome = _DECIDE[spec.id](c) if c.a.turns else _empty(c, spec)
    return Check(spec.id, spec.label, outcome.passed, outcome.evidence, None if outcome.passed else outcome.feedback)


class HeuristicScorer:
    """The rubric decided by rules over the call's analysis: fast, free, deterministic."""

    name = "heuristic"
    version = RUBRIC_VERSION

    async def score(self, segments: Sequence[Segment], *, persona: Persona | None, config: ScoringConfig,
                    on_dimension: OnDimension | None = None) -> Scorecard:
        analysis = analyse(segments, persona)
        call = _Call(analysis, persona)
        dimensions: dict[str, Dimension] = {}
        for key, name in DIMENSIONS:
            checks = [_decide(call, spec) for spec in CHECKS[key]]
            dimension = Dimension(key, name, dimension_score(checks), config.weight(key), checks)
            dimensions[key] = dimension
            if on_dimension is not None:
                await on_dimension(dimension)
        return assemble(dimensions, metrics_of(analysis), config, scorer=self.name, version=self.version)
