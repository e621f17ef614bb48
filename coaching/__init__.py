"""The domain, framework-free: events, call pipeline, personas, hints, scoring, providers."""
