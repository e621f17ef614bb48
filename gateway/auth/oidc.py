"""OpenID Connect relying party: one authlib client per configured provider, and the signed state
record that carries a login through the round trip to the provider.

authlib does the protocol: discovery from the issuer's `.well-known/openid-configuration` (kept
for `DISCOVERY_TTL_S`), the authorization URL with `state`, `nonce` and a PKCE S256 challenge, the
code exchange, and the ID token's signature against the provider's JWKS (an unknown `kid` fetches
the JWKS again once: key rotation) with `iss`, `aud`, `exp`, `iat` and `nonce` checked. What comes
back is an `OidcIdentity`; its email is None unless the provider says it is verified.

The state record (`StateRecord`) is an HS256 JWT under the app's JWT secret, kept in a short-lived
HttpOnly cookie scoped to the SSO routes: the callback accepts only the `state` that this browser
started (login CSRF), within `STATE_TTL_S`, and finds there the nonce, the PKCE verifier and the
invite code the login started with.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import warnings
from typing import Any

import httpx
import jwt
import msgspec

with warnings.catch_warnings():
    # authlib prefers the httpx2 fork and warns once when it falls back to httpx, which we use.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.base_client import BaseApp, OAuthError  # type: ignore[import-untyped]
    from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin  # type: ignore[import-untyped]
    from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin  # type: ignore[import-untyped]
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from joserfc.errors import ExpiredTokenError, JoseError

from coaching.errors import SparringError
from gateway.settings import OidcProvider

__all__ = [
    "DISCOVERY_TTL_S", "STATE_COOKIE", "STATE_TTL_S", "OidcClient", "OidcIdentity", "SsoFailed", "StateRecord",
    "decode_state", "encode_state",
]

log = logging.getLogger(__name__)

STATE_COOKIE = "sparring_sso"
STATE_TTL_S = 10 * 60  # the time a person has at the provider's login page
DISCOVERY_TTL_S = 3600  # how long a provider's discovery document is kept before it is read again
_STATE_AUDIENCE = "sparring-sso-state"
_LEEWAY_S = 30  # clock skew allowed on the ID token's exp and iat
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")  # within users.email's 3 to 320 characters
_TIMEOUT_S = 10.0


class SsoFailed(SparringError):
    """A login through a provider failed; `code` is stable (the login page words it), `message`
    is for logs and JSON answers."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class StateRecord(msgspec.Struct, frozen=True):
    provider: str
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    invite: str | None = None


class OidcIdentity(msgspec.Struct, frozen=True):
    provider: str
    subject: str
    email: str | None  # only when the provider says `email_verified`
    name: str | None


def encode_state(record: StateRecord, secret: str, *, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    payload = {**msgspec.to_builtins(record), "aud": _STATE_AUDIENCE, "iat": issued, "exp": issued + STATE_TTL_S}
    return jwt.encode(payload, secret, algorithm="HS256")


def decode_state(cookie: str | None, returned_state: str | None, provider: str, secret: str) -> StateRecord:
    """The record this browser's login started with, if `returned_state` is its state.

    Raises:
        SsoFailed: `bad_state`: no record, a forged or expired one, another provider's, or a state
            that is not the one this browser was sent off with.
    """
    if not cookie or not returned_state:
        raise SsoFailed("bad_state", "this sign-in was not started here (or took too long); start it again")
    try:
        payload = jwt.decode(cookie, secret, algorithms=["HS256"], audience=_STATE_AUDIENCE,
                             options={"require": ["exp", "aud"]})
        record = msgspec.convert({k: v for k, v in payload.items() if k not in ("aud", "iat", "exp")}, StateRecord)
    except (jwt.PyJWTError, msgspec.ValidationError):
        raise SsoFailed("bad_state", "this sign-in expired or was tampered with; start it again") from None
    if record.provider != provider or not hmac.compare_digest(record.state.encode(), returned_state.encode()):
        raise SsoFailed("bad_state", "this sign-in does not match the one started in this browser; start it again")
    return record


class _ProviderApp(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):
    """authlib's framework-free OAuth 2 + OpenID client app (what its Starlette integration builds on)."""

    client_cls = AsyncOAuth2Client


class OidcClient:
    """One configured provider.

    Args:
        provider: its settings (issuer, client id and secret, scopes, display name).
        timeout_s: for each request to the provider.
    """

    def __init__(self, provider: OidcProvider, *, timeout_s: float = _TIMEOUT_S) -> None:
        self.provider = provider
        issuer = provider.issuer.rstrip("/")
        self._app = _ProviderApp(
            None, name=provider.id, client_id=provider.client_id, client_secret=provider.client_secret,
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": provider.scopes, "code_challenge_method": "S256", "timeout": timeout_s},
        )

    @property
    def id(self) -> str:
        return self.provider.id

    @property
    def name(self) -> str:
        return self.provider.name

    async def _metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self._app.server_metadata
        if time.time() - metadata.get("_loaded_at", 0) > DISCOVERY_TTL_S:
            metadata.clear()  # read the discovery document (and then the JWKS) again
        try:
            loaded: dict[str, Any] = await self._app.load_server_metadata()
        except (httpx.HTTPError, ValueError) as exc:
            metadata.clear()
            raise SsoFailed("provider_unavailable",
                            f"{self.name} could not be reached ({type(exc).__name__}); try again later") from None
        if str(loaded.get("issuer") or "").rstrip("/") != self.provider.issuer.rstrip("/"):
            metadata.clear()
            raise SsoFailed("provider_misconfigured", f"{self.name}'s discovery document names another issuer")
        return loaded

    async def authorization_url(self, redirect_uri: str, *, invite: str | None) -> tuple[str, StateRecord]:
        """Where to send the browser, and the record the callback needs.

        Raises:
            SsoFailed: the provider cannot be reached or its discovery document is unusable.
        """
        await self._metadata()
        try:
            made = await self._app.create_authorization_url(redirect_uri)
        except RuntimeError as exc:  # no authorization_endpoint in the discovery document
            raise SsoFailed("provider_misconfigured", f"{self.name}: {exc}") from None
        record = StateRecord(self.id, made["state"], made["nonce"], made["code_verifier"], redirect_uri, invite)
        return str(made["url"]), record

    async def identify(self, record: StateRecord, code: str) -> OidcIdentity:
        """Exchanges `code` (with the PKCE verifier) and verifies the ID token it brings.

        Raises:
            SsoFailed: `sso_failed` (the exchange failed), `id_token_expired`, `invalid_id_token`
                (signature, issuer, audience, nonce or a missing claim), `provider_unavailable`.
        """
        issuer = (await self._metadata())["issuer"]  # before awaiting: a refresh may clear the shared dict
        try:
            token = await self._app.fetch_access_token(record.redirect_uri, code=code,
                                                       code_verifier=record.code_verifier)
        except OAuthError as exc:
            raise SsoFailed("sso_failed", f"{self.name} refused the sign-in: {exc.error}") from None
        except (httpx.HTTPError, ValueError) as exc:
            raise SsoFailed("provider_unavailable", f"{self.name} could not be reached ({type(exc).__name__})") \
                from None
        if not isinstance(token, dict) or not token.get("id_token"):
            raise SsoFailed("sso_failed", f"{self.name} sent no ID token; is `openid` in its scopes?")
        options = {"iss": {"essential": True, "value": issuer},
                   "aud": {"essential": True, "value": self.provider.client_id}}
        try:
            claims = await self._app.parse_id_token(token, record.nonce, claims_options=options, leeway=_LEEWAY_S)
        except ExpiredTokenError:
            raise SsoFailed("id_token_expired", f"{self.name}'s ID token has expired") from None
        except JoseError as exc:
            reason = exc.description or exc.error
            raise SsoFailed("invalid_id_token", f"{self.name}'s ID token was refused: {reason}") from None
        except (httpx.HTTPError, RuntimeError) as exc:  # the JWKS could not be fetched
            raise SsoFailed("provider_unavailable", f"{self.name}'s keys could not be read ({type(exc).__name__})") \
                from None
        except ValueError:  # not a compact JWS at all
            raise SsoFailed("invalid_id_token", f"{self.name}'s ID token is malformed") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
            raise SsoFailed("invalid_id_token", f"{self.name}'s ID token has no usable subject")
        email = claims.get("email")
        # Microsoft Entra sends no email_verified; its optional claim xms_edov says the email's domain
        # is verified for the tenant (add it in the app's token configuration).
        verified = any(claims.get(claim) in (True, "true") for claim in ("email_verified", "xms_edov"))
        if isinstance(email, str) and not _EMAIL.fullmatch(email.strip()):
            verified = False  # not an address an account can carry (users.email's own check)
        name = claims.get("name")
        return OidcIdentity(self.id, subject, email.strip() if isinstance(email, str) and verified else None,
                            name.strip()[:200] if isinstance(name, str) and name.strip() else None)
