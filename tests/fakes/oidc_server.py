"""An in-process OpenID Connect provider speaking the real protocol over HTTP: discovery, JWKS,
an authorization endpoint that approves `user` at once (or denies), and a token endpoint that
checks the client's credentials, the code, the redirect URI and the PKCE verifier, and answers
an RS256 ID token signed with its current key (joserfc, authlib's JOSE library)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, Response, get, post
from litestar.response import Redirect

from tests.servers import run_asgi


@dataclass
class FakeUser:
    sub: str
    email: str | None
    email_verified: bool | None = True  # None: the token has no email_verified (as Microsoft Entra's)
    name: str = "Sam Sso"


@dataclass
class _Pending:
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str
    user: FakeUser


def new_signing_key() -> RSAKey:
    kid = secrets.token_hex(6)
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class FakeOidcProvider:
    """What the fake answers. `issuer` is set once it is served (its base URL). The authorization
    endpoint approves `user` (or, with `deny`, answers `error=access_denied`). `claim_overrides`
    replace claims in every ID token issued (e.g. `{"nonce": "other"}`, `{"aud": "someone-else"}`,
    `{"exp": <past>}`) until cleared. `rotate_key()` starts signing with a new key and publishes
    only it; `rogue_key` signs with a key it never publishes. `discovery_requests`,
    `jwks_requests` and `token_requests` count what it was asked."""

    client_id: str = "sparring-test-client"
    client_secret: str = "fake-client-secret-value"
    issuer: str = ""
    user: FakeUser = field(default_factory=lambda: FakeUser("sub-1", "sam@example.com"))
    deny: bool = False
    claim_overrides: dict[str, Any] = field(default_factory=dict)
    discovery_requests: int = 0
    jwks_requests: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key: RSAKey = field(default_factory=new_signing_key)
    rogue_key: RSAKey | None = None  # when set, ID tokens are signed with it (never published) instead
    _codes: dict[str, _Pending] = field(default_factory=dict)


    @contextmanager
    def serve(self) -> Iterator[FakeOidcProvider]:
        """Serves the provider on a loopback port; its issuer is that URL while the block runs."""
        with run_asgi(self.app()) as url:
            self.issuer = url
            yield self

    def rotate_key(self) -> None:
        self.key = new_signing_key()

    def _id_token(self, pending: _Pending) -> str:
        now = int(time.time())
        user = pending.user
        claims: dict[str, Any] = {"iss": self.issuer, "sub": user.sub, "aud": pending.client_id, "iat": now,
                                  "exp": now + 300, "name": user.name}
        if user.email is not None:
            claims["email"] = user.email
            if user.email_verified is not None:
                claims["email_verified"] = user.email_verified
        if pending.nonce is not None:
            claims["nonce"] = pending.nonce
        claims.update(self.claim_overrides)
        key = self.rogue_key or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)

    def app(self) -> Litestar:
        fake = self

        @get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            fake.discovery_requests += 1
            return {
                "issuer": fake.issuer, "authorization_endpoint": f"{fake.issuer}/authorize",
                "token_endpoint": f"{fake.issuer}/token", "jwks_uri": f"{fake.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }

        @get("/jwks")
        async def jwks() -> dict[str, Any]:
            fake.jwks_requests += 1
            return KeySet([fake.key]).as_dict(private=False)

        @get("/authorize")
        async def authorize(request: Request) -> Response[Any]:
            q = request.query_params
            redirect_uri = q.get("redirect_uri", "")
            # This provider insists on PKCE (S256), as the relying party must always use it.
            if q.get("client_id") != fake.client_id or q.get("response_type") != "code" or not redirect_uri \
                    or not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
                return Response({"error": "invalid_request"}, status_code=400)
            if fake.deny:
                params = {"error": "access_denied", "state": q.get("state", "")}
            else:
                code = secrets.token_urlsafe(16)
                fake._codes[code] = _Pending(fake.client_id, redirect_uri, q.get("nonce"), q["code_challenge"],
                                             fake.user)
                params = {"code": code, "state": q.get("state", "")}
            return Redirect(f"{redirect_uri}?{urlencode(params)}", status_code=302)

        @post("/token", status_code=200)
        async def token(request: Request) -> Response[Any]:
            form = dict(await request.form())
            fake.token_requests.append({k: str(v) for k, v in form.items()})
            basic = request.headers.get("authorization", "")
            client = (form.get("client_id"), form.get("client_secret"))
            if basic.lower().startswith("basic "):
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                client = (user, password)
            if client != (fake.client_id, fake.client_secret):
                return Response({"error": "invalid_client"}, status_code=401)
            pending = fake._codes.pop(str(form.get("code", "")), None)
            if pending is None or form.get("grant_type") != "authorization_code" \
                    or form.get("redirect_uri") != pending.redirect_uri:
                return Response({"error": "invalid_grant"}, status_code=400)
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != pending.code_challenge:
                return Response({"error": "invalid_grant", "error_description": "PKCE check failed"}, status_code=400)
            return Response({"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300,
                             "id_token": fake._id_token(pending)}, headers={"Cache-Control": "no-store"})

        return Litestar([discovery, jwks, authorize, token], logging_config=None, debug=False)
