"""Conversation analytics of a finished call: pure and deterministic, from timed transcript segments.

`analyse` reads a call into turns, sentences, questions, objections, pains, interruptions and the
next step; `metrics` turns that into the scorecard's metrics, each judged against its reference
band from the call research (coaching-anchors section 2). The heuristic scorer (coaching.scoring)
reads the `Analysis`; the LLM scorer shows the model the metrics.

Conventions:
    - Every speaker that is not "rep" is the buyer (persona, buyer, unknown).
    - A backchannel is a short (< 1.5 s, <= 4 words) segment made of listening noises ("mm-hmm",
      "right", "okay"): it neither ends the other side's monologue nor counts as a turn switch.
    - A turn is consecutive speech of one side with backchannels left out, so turns alternate.
    - Overlapping speech counts for both sides in the talk ratio.
    - Interruption: a rep segment (not a backchannel) that starts while a buyer segment is running
      and overlaps it by more than 1 s.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from coaching.hints import OBJECTIONS, OPEN_QUESTION, QUESTION_START
from coaching.persona import Persona
from coaching.scorecard import Band, Metric
from coaching.session_log import Segment

__all__ = [
    "CLOSING_WINDOW", "METRIC_KEYS", "PERMISSION", "PRODUCT", "REACTION", "Analysis", "Interruption", "ObjectionHit",
    "Question", "Role", "Sentence", "Span", "Turn", "analyse", "content_words", "fmt_ms", "is_quantified", "metrics",
    "metrics_of", "pain_clause", "pain_sentence", "quote", "role_of",
]

Role = Literal["rep", "buyer"]
Verdict = Literal["good", "watch", "off", "n/a"]

BACKCHANNEL_MS = 1500
INTERRUPTION_MS = 1000
CLOSING_WINDOW = 0.2  # the close, and the next step, are looked for in the last fifth of the call

METRIC_KEYS: tuple[str, ...] = (
    "talk_ratio", "longest_monologue_s", "longest_buyer_story_s", "questions_asked", "open_question_share",
    "interactivity", "patience_s", "patience_after_objection_s", "rep_wpm", "rep_wpm_after_objection",
    "filler_per_100_words", "filler_per_min", "next_step_agreed",
)

# --- phrase lists -------------------------------------------------------------------------------

_BACKCHANNEL_WORDS = frozenset(
    "mm mmm hmm mm-hmm mm-hm mhm uh-huh uh huh right yeah yes yep yup ok okay sure got it i see gotcha true exactly "
    "oh ah totally absolutely makes sense go on alright nice cool great wow interesting fair".split())
_STOP = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't
my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
she'll she's should shouldn't so some such than that that's the their theirs them themselves then there there's
these they they'd they'll they're they've this those through to too under until up very was wasn't we we'd we'll
we're we've were weren't what what's when when's where where's which while who who's whom why why's with won't
would wouldn't you you'd you'll you're you've your yours yourself yourselves yeah yes okay ok right really just
like get got going gonna want know think thing things lot well sure one also actually maybe kind sort pretty
much many say said tell told mean thanks thank hi hello great good now today still even back way look see
something anything everything everyone anyone someone make makes made let us need needs call calling bit
every each always
""".split())
_TOKEN = re.compile(r"[a-z0-9][a-z0-9'-]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LEAD_IN = re.compile(r"^((so|and|okay|ok|great|now|well|but|right|alright|also|then|got it|thanks|perfect|sure"
                      r"|hello|hi|hey)[,\s]+)+")
_MORE_OPEN = re.compile(r"^(talk me through|talk to me about|what's|what are|how's|in what way)\b")
_PITCH_QUESTION = re.compile(
    r"\b(our (platform|product|solution|software|tool|system|app)|we offer|we provide|wouldn't you|would you be"
    r" interested|interested in (seeing|trying|hearing|a demo)|what if i told|if i (could|told|showed)|imagine if"
    r"|isn't it|don't you think|doesn't that sound|wouldn't it be)\b")
PRODUCT = re.compile(
    r"\b(our (platform|product|solution|software|tool|system|app|service)|it (does|comes with|includes|also)"
    r"|features?|dashboards?|integrations?|we offer|we provide|we've built|we built|our customers love)\b")
PERMISSION = re.compile(
    r"\b(do you have (a|a few|two|a couple( of)?|thirty|30|five|ten|\d+) (minutes?|mins?|seconds?|secs?)"
    r"|is (now|this) (still )?a (good|bad|ok|okay) time|a good time (for|to)|(have|got) you got a (minute|second)"
    r"|mind if i|would it be (ok|okay|alright) (if|to)"
    r"|is it (ok|okay|alright) if|can i (take|have|borrow) (a|two|a couple|\d+)|agenda"
    r"|here's what i'd (like|suggest)|the plan for (the|this|our) call|spare (a|two|a few|\d+))\b")
REACTION = re.compile(
    r"\b(how does that (sound|land)|does that (make sense|resonate|sound (useful|relevant|right))"
    r"|what do you think|would that help|how would that (work|fit|land)|what's your (reaction|take)"
    r"|is that (relevant|useful)|does that fit|any (thoughts|reaction))\b")
_CONCERN = re.compile(
    r"(n't\b|\b(not|no|too|why would|never|already|worr\w*|concern\w*|afraid|cannot|expensive|tight|locked"
    r"|frozen|happy with|busy|what does (it|this|that) (cost|run)|how much|skeptic\w*|doubt\w*"
    r"|heard (that|this|it) before)\b)")
# Objections the live hints' OBJECTIONS list does not phrase (it keys on single trigger words).
_MORE_OBJECTIONS: dict[str, re.Pattern[str]] = {
    "objection_timing": re.compile(r"\b(don't have (the |any )?time|no bandwidth|not this (year|quarter))\b"),
    "objection_price": re.compile(r"\b(too expensive|can't afford|costs? too much|out of (our|my) budget)\b"),
    "objection_competitor": re.compile(r"\b(why would (i|we) (switch|change|move)|we're (all )?set|our vendor)\b"),
    "objection_interest": re.compile(r"\b(not interested|just send (me )?(an )?email|email me something)\b"),
}
_PAIN = re.compile(
    r"\b(problem|issue|struggl\w*|challeng\w*|pain\w*|frustrat\w*|hard|difficult|slow|takes? (us|me|my|our|the)"
    r"|too long|too much|manual\w*|by hand|spreadsheets?|backlog|behind|overpa\w*|errors?|mistakes?|lose|losing"
    r"|lost|waste\w*|eat|eats|keeps? me up|worr\w*|can't|cannot|nobody|no one|stuck|drowning|overwhelm\w*"
    r"|delay\w*|bottleneck\w*|headache|nightmare|churn\w*|complain\w*)\b")
_NUMBER = re.compile(r"(\d|\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty"
                     r"|forty|fifty|sixty|hundred|thousand|million|half|dozen|percent|double|twice)\b)")
_DATE = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|next (week|month)"
    r"|this (week|afternoon|morning|evening)|end of (the )?(day|week|month)"
    r"|(at|by) (\d{1,2}(:\d\d)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|noon)"
    r"|\d{1,2}(:\d\d)? ?(am|pm|a\.m\.|p\.m\.)|noon"
    r"|(january|february|march|april|may|june|july|august|september|october|november|december) \d"
    r"|the \d{1,2}(st|nd|rd|th))\b")
_COMMIT = re.compile(
    r"\b(send|sending|meet|book|schedule|invite|set up|put|bring|walk|demo|call|follow up|share|review|join"
    r"|hold|block|present|show|loop in)\b")
_OWNER = re.compile(
    r"\b(i'll|i will|we'll|we will|you'll|you will|let's|let us|i'm going to|i am going to|we're going to"
    r"|i'm sending|he'll|she'll|they'll|you and i)\b")
_DECLINE = re.compile(
    r"\b(not ready|no thanks|not interested|i'll think|let me think|email me something|i'll look when"
    r"|don't think so|can't commit|not right now|maybe later|i'll get back|not now)\b")
_FILLER = re.compile(r"\b(um+|uh+|uhm|erm?|you know|i mean|sort of|kind of|basically|literally)\b")
_FILLER_SO = re.compile(r"(?:^|[.!?] )so,")  # "So, ..." opening a sentence; ", like," is counted as a string


# --- the analysis -------------------------------------------------------------------------------


class Sentence(msgspec.Struct, frozen=True):
    text: str
    lower: str
    segment_id: str
    start_ms: int  # interpolated from the segment's timing by word offset
    turn: int  # index into Analysis.turns
    role: Role
    content: frozenset[str]


class Turn(msgspec.Struct, frozen=True):
    index: int
    role: Role
    start_ms: int
    end_ms: int
    text: str
    words: int
    segment_ids: tuple[str, ...]
    sentences: tuple[Sentence, ...]
    content: frozenset[str]
    speech_ms: int  # the turn's segments' own durations (no pauses, no backchannels between them)

    @property
    def ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def first_segment_text(self) -> str:
        """What the turn's first segment says (evidence cites a segment and quotes it)."""
        return " ".join(s.text for s in self.sentences if s.segment_id == self.segment_ids[0])


class Question(msgspec.Struct, frozen=True):
    sentence: Sentence
    open: bool  # opens with what/how/why/tell me/walk me through...
    kind: Literal["discovery", "permission", "reaction", "pitch", "check"]  # check: "Is this Dana?", "Right?"


class ObjectionHit(msgspec.Struct, frozen=True):
    turn: int  # the buyer turn that raised it
    kind: str  # a hints.OBJECTIONS kind, or "persona:<objection id>"
    sentence: Sentence
    resolved_by: tuple[str, ...] = ()  # the persona's keywords that settle it, when a persona said so


class Span(msgspec.Struct, frozen=True):
    role: Role
    start_ms: int
    end_ms: int
    segment_id: str  # where it starts
    text: str  # what that first segment says

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000


class Interruption(msgspec.Struct, frozen=True):
    segment_id: str
    start_ms: int
    overlap_ms: int
    text: str
    buyer_text: str


class Analysis(msgspec.Struct, frozen=True):
    start_ms: int
    end_ms: int
    turns: tuple[Turn, ...]
    backchannels: int
    rep_ms: int
    buyer_ms: int
    rep_words: int
    fillers: int
    questions: tuple[Question, ...]
    objections: tuple[ObjectionHit, ...]
    pains: tuple[int, ...]  # buyer turns that state a pain
    interruptions: tuple[Interruption, ...]
    longest_monologue: Span | None
    longest_story: Span | None
    next_step: Sentence | None  # commitment verb + date/time + owner in one turn, in the last fifth of the call
    next_step_agreed: bool

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    def rep_sentences(self) -> Iterable[Sentence]:
        return (s for t in self.turns if t.role == "rep" for s in t.sentences)

    def next_turn(self, index: int, role: Role) -> Turn | None:
        return next((t for t in self.turns[index + 1:] if t.role == role), None)

    def previous_turn(self, index: int, role: Role) -> Turn | None:
        return next((t for t in reversed(self.turns[:index]) if t.role == role), None)


def role_of(speaker: str) -> Role:
    """Every side that is not the rep is the buyer (the persona in practice, the customer in uploads)."""
    match speaker:
        case "rep":
            return "rep"
        case "persona" | "buyer" | "unknown":
            return "buyer"
        case _:
            raise ValueError(f"unknown speaker {speaker!r}")


@functools.lru_cache(maxsize=16_384)
def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 5 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> frozenset[str]:
    """The words that carry a sentence's meaning, crudely stemmed: what "reusing the buyer's words" compares."""
    return frozenset([_stem(w) for w in _TOKEN.findall(text.lower()) if len(w) >= 3 and w not in _STOP])


def is_quantified(text: str) -> bool:
    return bool(_NUMBER.search(text.lower()))


def quote(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fmt_ms(ms: int) -> str:
    seconds = max(0, ms) // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def _is_backchannel(segment: Segment) -> bool:
    if segment.end_ms - segment.start_ms >= BACKCHANNEL_MS or len(segment.text) > 40:
        return False
    words = _TOKEN.findall(segment.text.lower())
    return 0 < len(words) <= 4 and all(w in _BACKCHANNEL_WORDS for w in words)


def _fillers(text: str) -> int:
    lowered = " ".join(text.lower().split())
    return len(_FILLER.findall(lowered)) + len(_FILLER_SO.findall(lowered)) + lowered.count(", like,")


def _sentences(segment: Segment, turn: int, role: Role) -> list[Sentence]:
    parts = [p.strip() for p in _SENTENCE_END.split(segment.text.strip()) if p.strip()]
    total = max(1, sum(len(p.split()) for p in parts))
    out, offset = [], 0
    for part in parts:
        start = segment.start_ms + (segment.end_ms - segment.start_ms) * offset // total
        out.append(Sentence(part, part.lower(), segment.segment_id, start, turn, role, content_words(part)))
        offset += len(part.split())
    return out


def _turns(ordered: Sequence[Segment]) -> tuple[tuple[Turn, ...], int]:
    groups: list[tuple[Role, list[Segment]]] = []
    backchannels = 0
    for seg in ordered:
        if _is_backchannel(seg):
            backchannels += 1
            continue
        role = role_of(seg.speaker)
        if groups and groups[-1][0] == role:
            groups[-1][1].append(seg)
        else:
            groups.append((role, [seg]))
    turns = []
    for i, (role, segs) in enumerate(groups):
        sentences = tuple(s for seg in segs for s in _sentences(seg, i, role))
        text = " ".join(seg.text.strip() for seg in segs)
        turns.append(Turn(i, role, segs[0].start_ms, max(s.end_ms for s in segs), text, len(text.split()),
                          tuple(s.segment_id for s in segs), sentences,
                          frozenset().union(*(s.content for s in sentences)),
                          sum(s.end_ms - s.start_ms for s in segs)))
    return tuple(turns), backchannels


def _question(sentence: Sentence) -> Question | None:
    lowered = _LEAD_IN.sub("", sentence.lower)
    if not (sentence.text.endswith("?") or QUESTION_START.match(lowered)):
        return None
    is_open = bool(OPEN_QUESTION.match(lowered) or _MORE_OPEN.match(lowered))
    if _PITCH_QUESTION.search(lowered) or len(lowered.split()) > 28:
        return Question(sentence, False, "pitch")
    if PERMISSION.search(lowered):
        return Question(sentence, False, "permission")
    if REACTION.search(lowered):
        return Question(sentence, is_open, "reaction")
    if not is_open and len(lowered.split()) < 5:
        return Question(sentence, False, "check")
    return Question(sentence, is_open, "discovery")


class _Buyer:
    """A persona's objections and pains, read once per call."""

    def __init__(self, persona: Persona | None) -> None:
        self.objections = [(o, content_words(o.text)) for o in persona.objections] if persona else []
        self.pains = [(p, content_words(p.reveal)) for p in persona.pains] if persona else []


def _objection(turn: Turn, buyer: _Buyer) -> ObjectionHit | None:
    for sentence in turn.sentences:
        concern = bool(_CONCERN.search(sentence.lower))
        for o, words in buyer.objections:
            said = len(sentence.content & words) >= 3
            if said or (concern and any(t in sentence.lower for t in o.triggers)):
                return ObjectionHit(turn.index, f"persona:{o.id}", sentence, tuple(o.resolved_by))
        if concern:
            patterns = [(kind, pattern) for kind, (pattern, _advice) in OBJECTIONS.items()]
            for kind, pattern in patterns + list(_MORE_OBJECTIONS.items()):
                if pattern.search(sentence.lower):
                    return ObjectionHit(turn.index, kind, sentence)
    return None


def pain_clause(text: str) -> str:
    """The clause of a sentence that names the pain ("...fine, but our hold times go past 20 minutes")."""
    _, but, tail = text.partition(", but ")
    return tail if but and tail.strip() else text


def pain_sentence(turn: Turn) -> Sentence:
    """The sentence of a buyer turn that names the pain (the first one, when none does by the phrase list)."""
    return next((s for s in turn.sentences if _PAIN.search(s.lower)), turn.sentences[0])


def _states_pain(turn: Turn, buyer: _Buyer) -> bool:
    lowered = turn.text.lower()
    if _PAIN.search(lowered):
        return True
    return any(len(turn.content & words) >= 3 or sum(k in lowered for k in p.keywords) >= 2 for p, words in buyer.pains)


def _interruptions(ordered: Sequence[Segment]) -> list[Interruption]:
    out: list[Interruption] = []
    running: list[Segment] = []  # buyer segments (not backchannels) that may still be speaking
    for seg in ordered:
        if _is_backchannel(seg):
            continue
        if role_of(seg.speaker) == "buyer":
            running = [b for b in running if b.end_ms > seg.start_ms] + [seg]
            continue
        for b in running:
            overlap = min(b.end_ms, seg.end_ms) - seg.start_ms
            if b.start_ms <= seg.start_ms < b.end_ms and overlap > INTERRUPTION_MS:
                out.append(Interruption(seg.segment_id, seg.start_ms, overlap, seg.text, b.text))
                break
        running = [b for b in running if b.end_ms > seg.end_ms]
    return out


def _longest(turns: Sequence[Turn], role: Role) -> Span | None:
    mine = [t for t in turns if t.role == role]
    if not mine:
        return None
    best = max(mine, key=lambda t: (t.ms, -t.index))
    return Span(role, best.start_ms, best.end_ms, best.segment_ids[0], best.first_segment_text)


def _next_step(turns: Sequence[Turn], start_ms: int, end_ms: int) -> tuple[Sentence | None, bool]:
    """The first turn in the closing window with a date/time, a commitment verb and an owner (the
    sentence with the date), and whether the buyer let it stand (no decline in their next two turns)."""
    window = end_ms - (end_ms - start_ms) * CLOSING_WINDOW
    for turn in turns:
        said = [s for s in turn.sentences if s.start_ms >= window]
        text = " ".join(s.lower for s in said)
        dated = next((s for s in said if _DATE.search(s.lower)), None)
        if dated is not None and _COMMIT.search(text) and _OWNER.search(text):
            later = [t for t in turns[turn.index:] if t.role == "buyer"]
            declined = any(_DECLINE.search(t.text.lower()) for t in later[:2])
            return dated, not declined
    return None, False


TYPED_WPM = 160  # a typed turn (no duration of its own) counts as if said at a sales call's pace


def _spoken(segment: Segment) -> Segment:
    """A typed turn lasts as long as saying it would; spoken segments are as timed."""
    if segment.end_ms > segment.start_ms:
        return segment
    words = len(segment.text.split())
    return msgspec.structs.replace(segment, end_ms=segment.start_ms + words * 60_000 // TYPED_WPM)


def analyse(segments: Sequence[Segment], persona: Persona | None = None) -> Analysis:
    """The call read into turns, questions, objections, pains and timing. `persona` (a practice call's
    buyer) adds its objections and pains to the generic phrase lists."""
    ordered = sorted(segments, key=lambda s: (s.start_ms, s.seq if s.seq is not None else 0))
    ordered = [_spoken(s) for s in ordered if s.text.strip()]
    if not ordered:
        return Analysis(0, 0, (), 0, 0, 0, 0, 0, (), (), (), (), None, None, None, False)
    start_ms, end_ms = ordered[0].start_ms, max(s.end_ms for s in ordered)
    turns, backchannels = _turns(ordered)
    rep = [s for s in ordered if role_of(s.speaker) == "rep"]
    rep_ms = sum(s.end_ms - s.start_ms for s in rep)
    buyer_ms = sum(s.end_ms - s.start_ms for s in ordered if role_of(s.speaker) == "buyer")
    rep_text = [s.text for s in rep]
    questions = tuple(q for t in turns if t.role == "rep" for s in t.sentences if (q := _question(s)) is not None)
    buyer = _Buyer(persona)
    objections = tuple(o for t in turns if t.role == "buyer" and (o := _objection(t, buyer)) is not None)
    raised = {o.turn for o in objections}
    pains = tuple(t.index for t in turns if t.role == "buyer" and t.index not in raised and _states_pain(t, buyer))
    next_step, agreed = _next_step(turns, start_ms, end_ms)
    return Analysis(
        start_ms=start_ms, end_ms=end_ms, turns=turns, backchannels=backchannels, rep_ms=rep_ms, buyer_ms=buyer_ms,
        rep_words=sum(len(t.split()) for t in rep_text),
        fillers=sum(_fillers(t) for t in rep_text), questions=questions,
        objections=objections, pains=pains, interruptions=tuple(_interruptions(ordered)),
        longest_monologue=_longest(turns, "rep"), longest_story=_longest(turns, "buyer"), next_step=next_step,
        next_step_agreed=agreed)


# --- metrics ------------------------------------------------------------------------------------


def _verdict(value: float | None, good: tuple[float | None, float | None],
             off: tuple[float | None, float | None]) -> Verdict:
    """good inside [good lo, good hi]; off outside [off lo, off hi]; watch between."""
    if value is None:
        return "n/a"
    if (off[0] is not None and value < off[0]) or (off[1] is not None and value > off[1]):
        return "off"
    if (good[0] is None or value >= good[0]) and (good[1] is None or value <= good[1]):
        return "good"
    return "watch"


def _metric(key: str, label: str, value: float | None, unit: str, band: Band,
            good: tuple[float | None, float | None]) -> Metric:
    shown = None if value is None else round(value, 2)
    return Metric(key, label, shown, unit, band, _verdict(value, good, (band.low, band.high)))


def _wpm(turns: Iterable[Turn]) -> float | None:
    """Words a minute of speaking time (pauses left out); None under 3 s of speech."""
    chosen = list(turns)
    ms = sum(t.speech_ms for t in chosen)
    return sum(t.words for t in chosen) / (ms / 60_000) if ms >= 3_000 else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def metrics_of(a: Analysis) -> dict[str, Metric]:
    """The metrics of an analysed call, keyed by `METRIC_KEYS`, values rounded to two decimals; the
    ones this call cannot measure (no objection came up, nobody spoke) are None with verdict "n/a"."""
    minutes = a.duration_ms / 60_000
    talk = a.rep_ms + a.buyer_ms
    talk_ratio = 100 * a.rep_ms / talk if talk else None
    rep_turns = [t for t in a.turns if t.role == "rep"]
    # Patience: only buyer -> rep transitions that do not overlap.
    after_buyer = [(b, r) for b, r in zip(a.turns, a.turns[1:], strict=False) if b.role == "buyer"]
    gaps = [(r.start_ms - b.end_ms) / 1000 for b, r in after_buyer if r.start_ms >= b.end_ms]
    raised = {o.turn for o in a.objections}
    objection_gaps = [(r.start_ms - b.end_ms) / 1000 for b, r in after_buyer
                      if b.index in raised and r.start_ms >= b.end_ms]
    answers = [r for b, r in after_buyer if b.index in raised]
    questions = len(a.questions)
    open_share = 100 * sum(q.open for q in a.questions) / questions if questions else None
    wpm = _wpm(rep_turns)
    wpm_after = _wpm(answers) if answers else None
    story_good = min(240.0, max(20.0, 0.1 * a.duration_ms / 1000))
    # The question band (11-14 in a discovery call, under 8 under-qualifies, over 20 interrogates) is
    # for a ~30-minute call; it scales with the call's length, never below a 10-minute call's third.
    scale = max(minutes, 10.0) / 30
    has_call = a.duration_ms > 0
    return {m.key: m for m in (
        _metric("talk_ratio", "Talk ratio (your share of speech)", talk_ratio, "%",
                Band(None, 65, 43, "Top performers talk about 43% of the time; above 65% conversion drops.",
                     "Gong Labs, 25,537 B2B calls"), (30, 50)),
        _metric("longest_monologue_s", "Longest monologue", a.longest_monologue.seconds
                if a.longest_monologue else None, "s",
                Band(None, 120, 75, "Pitches over 2 minutes lose; top quartile stays under ~75 s.",
                     "Gong, 257,967 calls; SalesArmor (75 s)"), (None, 75)),
        _metric("longest_buyer_story_s", "Buyer's longest story", a.longest_story.seconds
                if a.longest_story else None, "s",
                # 4 min / 50 s are for 43-minute calls: a tenth of the call (20 s to 4 min) is the target here.
                Band(story_good / 2, None, story_good,
                     "Let the buyer talk at length: won deals have a buyer stretch of minutes.",
                     "Gong, 257,967 calls (scaled to call length)"), (story_good, None)),
        _metric("questions_asked", "Questions asked", float(questions) if has_call else None, "count",
                Band(round(8 * scale, 1), round(20 * scale, 1), round(12.5 * scale, 1),
                     "11-14 questions per discovery call do best (scaled to this call's length).",
                     "Gong deck, >1M sales meetings"), (round(11 * scale), round(14 * scale))),
        _metric("open_question_share", "Open questions", open_share, "%",
                Band(20, None, 50, "Open questions (how, what, walk me through) get long answers.",
                     "Gong deck (no figure; house threshold)"), (40, None)),
        _metric("interactivity", "Interactivity (speaker switches)",
                (len(a.turns) - 1) / minutes if minutes > 0 and a.turns else None, "per min",
                Band(1, None, 3, "More back-and-forth goes with second meetings.",
                     "Gong (scale unconfirmed)"), (2, None)),
        _metric("patience_s", "Patience (pause before you answer)", _mean(gaps), "s",
                Band(0.3, None, 1.0, "Pause about a second before answering; many reps jump in at 0.5 s.",
                     "Gong via Feel Good About Selling"), (0.6, None)),
        _metric("patience_after_objection_s", "Pause after an objection", _mean(objection_gaps), "s",
                Band(0.5, None, 1.5, "Top performers pause ~1.5 s after an objection, average reps 0.3 s.",
                     "Gong, 67,149 meetings (secondary)"), (1.0, None)),
        _metric("rep_wpm", "Speaking rate", wpm, "wpm",
                Band(110, 190, 150, "Sales calls average ~173 wpm; 140-160 is easiest to follow.",
                     "Gong (173 wpm); Street & Brady 1982"), (140, 175)),
        _metric("rep_wpm_after_objection", "Speaking rate after an objection", wpm_after, "wpm",
                Band(None, round(1.1 * wpm) if wpm else None, round(wpm) if wpm else None,
                     "Keep your pace after an objection: mishandled ones go 173 -> 188 wpm.",
                     "Gong, 67,149 meetings (secondary)"),
                (None, 1.05 * wpm if wpm else None)),
        _metric("filler_per_100_words", "Filler words", 100 * a.fillers / a.rep_words if a.rep_words else None,
                "per 100 words", Band(None, 5, None, "Fillers did not change win rates; over 5% of words distract.",
                                      "Gong, ~0.5M calls; Bigtincan rubric (<5%)"), (None, 3)),
        _metric("filler_per_min", "Filler words per minute", a.fillers / (a.rep_ms / 60_000) if a.rep_ms else None,
                "per min", Band(None, 4, None, "Reps average over 4 fillers a minute.", "TalkIQ"), (None, 2)),
        _metric("next_step_agreed", "Next step agreed", (1.0 if a.next_step_agreed else 0.0) if has_call else None,
                "yes/no", Band(1, None, 1, "Close on a dated next step with an owner; vague 'I'll send times' loses.",
                               "Gong next steps; Gangly (secondary)"), (1, None)),
    )}


def metrics(segments: Sequence[Segment]) -> dict[str, Metric]:
    """The call's conversation metrics with their bands and verdicts (keys: `METRIC_KEYS`)."""
    return metrics_of(analyse(segments))
