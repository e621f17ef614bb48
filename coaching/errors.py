"""The error hierarchy callers can act on; gateway/errors.py maps each to an HTTP status and a close code."""

from __future__ import annotations

__all__ = ["Overloaded", "ProviderUnavailable", "SparringError"]


class SparringError(Exception):
    """Root of every error Sparring raises on purpose. Messages say what to do about it."""


class ProviderUnavailable(SparringError):
    """An AI or voice provider could not be reached or answered with an error."""


class Overloaded(SparringError):
    """The instance is at capacity and shed this piece of work; retry later."""
