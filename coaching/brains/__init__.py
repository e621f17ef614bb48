"""Persona brains: what the buyer says next. Scripted (no keys) or an LLM."""
