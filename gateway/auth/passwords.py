"""Argon2id password hashing, off the event loop, with equal work for unknown accounts."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MIN_PASSWORD_LENGTH", "hash_password", "verify_password"]

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verifying against this when the email is unknown makes both refusals cost the same time.
_DUMMY_HASH = _hasher.hash("sparring-dummy-password-for-timing")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; with `stored` None it does the same work and says no."""
    return await asyncio.to_thread(_verify, stored, password)
