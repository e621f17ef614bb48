"""WebSocket close codes Sparring uses, in one place (4000-4999 are the application's own)."""

from __future__ import annotations

from gateway.auth.caller import AuthRefused

__all__ = ["BAD_MESSAGE", "NOT_FOUND", "RATE_LIMITED", "REFUSED", "TOO_LONG", "UNAUTHENTICATED", "close_code_for"]

UNAUTHENTICATED = 4401
REFUSED = 4403
NOT_FOUND = 4404
BAD_MESSAGE = 4400
TOO_LONG = 4408
RATE_LIMITED = 4429


def close_code_for(refused: AuthRefused) -> int:
    return UNAUTHENTICATED if refused.status == 401 else REFUSED
