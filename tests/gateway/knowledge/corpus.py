"""A small corpus for relevance tests, and questions phrased differently from it."""

from __future__ import annotations

DOCUMENTS = {
    "Handling price objections": "When a buyer says the cost is too high, anchor on the value and the return on"
                                 " investment before offering any discount.",
    "Booking the next meeting": "End every call by agreeing a dated follow-up appointment with the decision maker,"
                                " and put it in the calendar while you are still on the line.",
    "Data protection": "Our platform encrypts customer records at rest and in transit and is audited for SOC 2"
                       " compliance every year.",
    "Onboarding": "New customers get a dedicated implementation engineer and are fully set up within two weeks.",
    "Competitor displacement": "If the prospect already works with another supplier, ask what they would improve"
                               " about their current provider.",
    "Cold call opening": "Introduce yourself, give a reason for calling tailored to their industry, and ask"
                         " permission to continue.",
}

# Synonyms, no shared keywords (after stemming and stop words): only an embedding model finds these.
PARAPHRASED = {
    "They told me it's way too expensive for them": "Handling price objections",
    "How should I finish a conversation so we speak again soon?": "Booking the next meeting",
    "Is my information kept safe and private?": "Data protection",
    "How long until we are up and running?": "Onboarding",
    "The client is loyal to a rival vendor": "Competitor displacement",
    "What do I say in the first seconds when I ring someone?": "Cold call opening",
}

# Words shared with the document: full-text search alone finds these.
OVERLAPPING = {
    "discount versus value": "Handling price objections",
    "implementation engineer": "Onboarding",
    "SOC 2 audit": "Data protection",
    "current supplier": "Competitor displacement",
    "calendar appointment": "Booking the next meeting",
}
