"""Settings: every environment variable Sparring reads, validated once at start-up."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

import limits
import msgspec

from coaching.errors import SparringError

__all__ = ["ENV_VARS", "RATE_LIMITS", "OidcProvider", "Settings", "SettingsError", "load_settings"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
SttProvider = Literal["auto", "openai", "local"]
TtsProvider = Literal["auto", "openai", "elevenlabs", "local"]
LlmProvider = Literal["auto", "openai", "openrouter", "scripted"]
HintsLlm = Literal["auto", "on", "off"]
Scorer = Literal["auto", "heuristic", "llm"]
Embeddings = Literal["auto", "openai", "local", "off"]
VapiAuth = Literal["auto", "hmac", "secret", "bearer", "legacy", "none"]
VapiHmacAlgorithm = Literal["sha256", "sha512", "sha1"]
VapiHmacEncoding = Literal["hex", "base64"]


class SettingsError(SparringError):
    """One environment variable is missing or malformed; the message names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class OidcProvider(msgspec.Struct, frozen=True, kw_only=True):
    """One OpenID Connect provider, from OIDC_<ID>_ISSUER, _CLIENT_ID, _CLIENT_SECRET, _SCOPES, _NAME."""

    id: str
    name: str
    issuer: str
    client_id: str
    client_secret: str | None = None
    scopes: str = "openid email profile"

    def __repr__(self) -> str:  # the client secret never reaches a log line
        return f"OidcProvider(id={self.id!r}, issuer={self.issuer!r}, client_id={self.client_id!r})"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Each field is the environment variable of the same name, upper-cased (but `oidc`, which
    OIDC_PROVIDERS and the OIDC_<ID>_* variables it names are read into)."""

    # Storage and fan-out. Unset: embedded Postgres under SPARRING_DATA_DIR, in-process stand-ins for Redis.
    database_url: str | None = None
    redis_url: str | None = None
    sparring_data_dir: str = ".sparring"
    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    # `sparring serve` worker processes on the one port (`--workers` overrides): 0 = one per core
    # when REDIS_URL is set (workers share calls, watchers, leases and limits through it), else 1.
    workers: int = 0
    site_url: str | None = None
    log_level: LogLevel = "INFO"
    max_body_bytes: int = 10 * 1024 * 1024
    # Recorded calls (POST /api/analyze/upload): the largest file and the longest recording taken.
    max_upload_bytes: int = 25 * 1024 * 1024
    max_upload_seconds: int = 2 * 3600
    upload_chunk_seconds: int = 60  # audio per transcription request (and per resume point)
    # Auth. JWT_SECRET unset: generated once and kept in the database (a warning says so).
    jwt_secret: str | None = None
    supabase_jwt_secret: str | None = None
    # A refresh token presented again this soon after its rotation (two tabs at once) gets a new pair.
    refresh_grace_seconds: float = 10
    # Proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs); unset: none.
    trusted_proxies: str = ""
    # AI providers (OpenAI-compatible endpoints use the openai SDK with base_url).
    openai_api_key: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openrouter_api_key: str | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    elevenlabs_api_key: str | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    provider_timeout_s: float = 10.0
    # Which provider does what; auto = the API when its key is set, else the local one.
    stt_provider: SttProvider = "auto"
    tts_provider: TtsProvider = "auto"
    llm_provider: LlmProvider = "auto"
    openai_model: str = "gpt-4o"
    openrouter_model: str = "openai/gpt-4o"
    inference_threads: int = 2
    inference_queue: int = 8
    # Live calls.
    max_live_sessions_per_user: int = 2
    max_call_seconds: int = 1800
    idle_timeout_seconds: int = 60
    resume_grace_seconds: int = 20
    vad_silence_ms: int = 500
    # WebRTC calls (gateway/transports/webrtc.py): whether the web app places calls over WebRTC
    # (else the WebSocket); the ICE servers handed to the browser and used by the gateway, as a JSON
    # list of RTCIceServer ({"urls", "username"?, "credential"?}), unset: none (host candidates
    # only); and the addresses the gateway gathers host candidates on (comma-separated; unset:
    # every interface but loopback, as aioice does; 127.0.0.1 for calls on one machine).
    webrtc_calls: bool = True
    webrtc_ice_servers: str = ""
    webrtc_host_addresses: str = ""
    # Across instances: a call's lease and its presence in GET /api/live live this long without a
    # heartbeat (a crashed instance's calls disappear within it). INSTANCE_ID: unset = generated.
    live_ttl_seconds: float = 15
    instance_id: str | None = None
    # Rate limits, in the `limits` syntax ("10/minute", "5 per second"). Shared through Redis.
    rate_limit_login: str = "10/minute"  # failed logins per address and email
    rate_limit_login_address: str = "30/minute"  # login attempts per address, whatever the email
    rate_limit_signup: str = "10/hour"  # sign-ups per address
    rate_limit_chat: str = "20/minute"
    rate_limit_transcribe: str = "5/minute"
    rate_limit_upload: str = "10/hour"
    rate_limit_ws_connect: str = "30/minute"
    rate_limit_watch: str = "60/minute"
    rate_limit_webhook: str = "6000/minute"
    rate_limit_fail_closed: bool = False
    # Live hint thresholds (defaults from published call research; see coaching/hints.py).
    hint_monologue_seconds: int = 75
    hint_talk_share: float = 0.65
    hint_discovery_by_seconds: int = 180
    hint_min_open_questions: int = 3
    hint_max_wpm: float = 180
    hint_pace_jump: float = 1.3
    hint_min_gap_seconds: int = 20
    hint_repeat_seconds: int = 60
    # Stage-aware hints from the LLM on top of the rules: auto = when an LLM key is set.
    hints_llm: HintsLlm = "auto"
    hints_llm_interval_seconds: int = 30
    # Scoring: auto = the LLM scorer (GPT-4o via OpenRouter, then OpenAI) when a key is set, else
    # the heuristic scorer; jobs (scoring, transcription) worked at once per instance.
    scorer: Scorer = "auto"
    job_workers: int = 2
    # Knowledge base: auto = text-embedding-3-small (OpenRouter, then OpenAI) when a key is set,
    # else the local all-MiniLM-L6-v2; off = full-text search only. The starter playbook is loaded
    # into the shared knowledge base on first start.
    embeddings: Embeddings = "auto"
    knowledge_starter: bool = True
    # How long the coaching chat skips an LLM backend after 3 failures in a row, before a trial.
    chat_breaker_reset_seconds: float = 30.0
    # VAPI.
    vapi_private_key: str | None = None
    vapi_public_key: str | None = None
    vapi_webhook_secret: str | None = None
    vapi_webhook_auth: VapiAuth = "auto"
    vapi_hmac_signature_header: str = "x-signature"
    vapi_hmac_timestamp_header: str = "x-timestamp"
    vapi_hmac_prefix: str = ""
    vapi_hmac_payload: str = "{timestamp}.{body}"
    vapi_hmac_algorithm: VapiHmacAlgorithm = "sha256"
    vapi_hmac_encoding: VapiHmacEncoding = "hex"
    vapi_default_org_id: uuid.UUID | None = None
    vapi_default_persona_id: str | None = None
    vapi_llm_api_key: str | None = None
    vapi_coach_steering: bool = False
    vapi_control_hosts: str = "vapi.ai"  # comma-separated; a call's controlUrl must be on one of them
    # An org may set its own endpoint to auth_mode none only when the operator allows it.
    vapi_allow_unsigned_org_webhooks: bool = False
    # A VAPI call whose `ended` never arrives is ended (vapi_timeout) this long after MAX_CALL_SECONDS.
    vapi_timeout_grace_seconds: int = 300
    # Single sign-on: OIDC_PROVIDERS names them (google,entra), each configured by OIDC_<ID>_*.
    oidc_providers: str = ""
    oidc: tuple[OidcProvider, ...] = ()
    # Observability.
    sentry_dsn: str | None = None
    sentry_environment: str = "production"
    sentry_traces_sample_rate: float = 0.1

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """TRUSTED_PROXIES parsed (raises ValueError on a malformed entry)."""
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in self.trusted_proxies.split(",") if part.strip())

    @property
    def data_dir(self) -> Path:
        return Path(self.sparring_data_dir).expanduser().resolve()

    @property
    def llm_choice(self) -> Literal["openrouter", "openai", "scripted"]:
        """LLM_PROVIDER resolved: auto = OpenRouter first, as the original service did, then OpenAI,
        else the scripted persona."""
        if self.llm_provider != "auto":
            return self.llm_provider
        if self.openrouter_api_key:
            return "openrouter"
        if self.openai_api_key:
            return "openai"
        return "scripted"


_DERIVED_FIELDS = {"oidc"}  # not a variable of its own: read from OIDC_PROVIDERS' OIDC_<ID>_* variables
ENV_VARS: tuple[str, ...] = tuple(name.upper() for name in Settings.__struct_fields__ if name not in _DERIVED_FIELDS)

_WORD_FIELDS = {"log_level": str.upper, "stt_provider": str.lower, "tts_provider": str.lower,
                "llm_provider": str.lower, "hints_llm": str.lower, "scorer": str.lower, "vapi_webhook_auth": str.lower,
                "vapi_hmac_algorithm": str.lower, "vapi_hmac_encoding": str.lower, "embeddings": str.lower}
_URL_SCHEMES = {
    "database_url": ("postgres", "postgresql"),
    "redis_url": ("redis", "rediss", "unix"),
    "site_url": ("http", "https"),
    "openai_base_url": ("http", "https"),
    "openrouter_base_url": ("http", "https"),
    "elevenlabs_base_url": ("http", "https"),
    "sentry_dsn": ("http", "https"),
}
_EXPECTED = {"int": "expected a whole number", "float": "expected a number", "bool": "expected true or false",
             "uuid.UUID | None": "expected a UUID"}
_RANGES: dict[str, tuple[float, float]] = {
    "port": (1, 65535),
    "workers": (0, 256),
    "max_body_bytes": (1024, 1024**3),
    "max_upload_bytes": (1024, 1024**3),
    "max_upload_seconds": (2, 24 * 3600),
    "upload_chunk_seconds": (10, 600),
    "provider_timeout_s": (0.1, 600),
    "chat_breaker_reset_seconds": (0.05, 3600),
    "sentry_traces_sample_rate": (0.0, 1.0),
    "inference_threads": (1, 64),
    "inference_queue": (0, 1000),
    "max_live_sessions_per_user": (1, 100_000),
    "max_call_seconds": (10, 24 * 3600),
    "idle_timeout_seconds": (5, 24 * 3600),
    "resume_grace_seconds": (1, 3600),
    "vad_silence_ms": (100, 5000),
    "live_ttl_seconds": (1, 300),
    "hint_monologue_seconds": (10, 3600),
    "hint_talk_share": (0.1, 1.0),
    "hint_discovery_by_seconds": (10, 3600),
    "hint_min_open_questions": (0, 100),
    "hint_max_wpm": (60, 600),
    "hint_pace_jump": (1.0, 5.0),
    "hint_min_gap_seconds": (0, 3600),
    "hint_repeat_seconds": (0, 3600),
    "hints_llm_interval_seconds": (5, 3600),
    "job_workers": (1, 64),
    "refresh_grace_seconds": (0, 60),
    "vapi_timeout_grace_seconds": (0, 24 * 3600),
}
RATE_LIMITS = ("login", "login_address", "signup", "chat", "transcribe", "upload", "ws_connect", "watch", "webhook")


def _check_url(field: str, value: str) -> None:
    parts = urlsplit(value)
    schemes = _URL_SCHEMES[field]
    if parts.scheme not in schemes:
        raise SettingsError(field.upper(), f"expected a {' or '.join(s + '://' for s in schemes)} URL")
    if field != "database_url" and parts.scheme in ("http", "https") and not parts.hostname:
        raise SettingsError(field.upper(), "the URL has no host")


_OIDC_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _oidc_providers(names: str, environ: Mapping[str, str]) -> tuple[OidcProvider, ...]:
    """The providers OIDC_PROVIDERS names, each from its OIDC_<ID>_* variables."""
    providers: list[OidcProvider] = []
    for raw_id in (part.strip().lower() for part in names.split(",")):
        if not raw_id:
            continue
        if not _OIDC_ID.match(raw_id) or any(p.id == raw_id for p in providers):
            raise SettingsError("OIDC_PROVIDERS", f"expected distinct ids of letters, digits, - and _, got {raw_id!r}")
        prefix = f"OIDC_{raw_id.upper().replace('-', '_')}_"

        def read(suffix: str, *, prefix: str = prefix) -> str | None:
            value = environ.get(prefix + suffix, "").strip()
            return value or None

        issuer, client_id = read("ISSUER"), read("CLIENT_ID")
        for variable, value in (("ISSUER", issuer), ("CLIENT_ID", client_id)):
            if value is None:
                raise SettingsError(prefix + variable, f"required: OIDC_PROVIDERS names {raw_id!r}")
        assert issuer is not None and client_id is not None  # checked just above
        parts = urlsplit(issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(prefix + "ISSUER", "expected the issuer's http:// or https:// URL")
        scopes = " ".join((read("SCOPES") or "openid email profile").replace(",", " ").split())
        if "openid" not in scopes.split():
            raise SettingsError(prefix + "SCOPES", "the scopes must include openid")
        providers.append(OidcProvider(id=raw_id, name=read("NAME") or raw_id.capitalize(), issuer=issuer,
                                      client_id=client_id, client_secret=read("CLIENT_SECRET"), scopes=scopes))
    return tuple(providers)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Builds Settings from an environment mapping. Empty values count as unset.

    Raises:
        SettingsError: naming the first variable that is malformed, and what is wrong with it.
    """
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        if field in _DERIVED_FIELDS:
            continue
        value = environ.get(field.upper())
        if value is None or value.strip() == "":
            continue
        value = value.strip()
        if field in _WORD_FIELDS:
            value = _WORD_FIELDS[field](value)
        if field in _URL_SCHEMES:
            _check_url(field, value)
        raw[field] = value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        field = str(exc).rsplit("`$.", 1)[-1].rstrip("`") if "`$." in str(exc) else ""
        variable = field.upper() or "environment"
        kind = _EXPECTED.get(Settings.__annotations__.get(field, ""), str(exc).split(" - at ")[0])
        if field in _WORD_FIELDS:
            choices = get_args({
                "log_level": LogLevel, "stt_provider": SttProvider, "tts_provider": TtsProvider,
                "llm_provider": LlmProvider, "hints_llm": HintsLlm, "scorer": Scorer, "vapi_webhook_auth": VapiAuth,
                "vapi_hmac_algorithm": VapiHmacAlgorithm, "vapi_hmac_encoding": VapiHmacEncoding}[field])
            kind = f"expected one of {', '.join(choices)} (any case)"
        raise SettingsError(variable, f"{kind}, got {raw.get(field)!r}") from None
    settings = msgspec.structs.replace(settings, oidc=_oidc_providers(settings.oidc_providers, environ))
    for field, (low, high) in _RANGES.items():
        value = getattr(settings, field)
        if not low <= value <= high:
            raise SettingsError(field.upper(), f"expected a number from {low:g} to {high:g}, got {value!r}")
    for name in RATE_LIMITS:
        value = getattr(settings, f"rate_limit_{name}")
        try:
            limits.parse(value)
        except ValueError:
            raise SettingsError(f"RATE_LIMIT_{name.upper()}",
                                f"expected a limit like 10/minute or 5 per second, got {value!r}") from None
    try:
        settings.proxy_networks  # noqa: B018 (parses TRUSTED_PROXIES)
    except ValueError as exc:
        raise SettingsError("TRUSTED_PROXIES", f"expected addresses or CIDRs, comma-separated: {exc}") from None
    from gateway.transports.ice import parse_host_addresses, parse_ice_servers  # noqa: PLC0415 (pure parsing)

    for name, parse in (("webrtc_ice_servers", parse_ice_servers), ("webrtc_host_addresses", parse_host_addresses)):
        try:
            parse(getattr(settings, name))
        except ValueError as exc:
            raise SettingsError(name.upper(), str(exc)) from None
    if "{body}" not in settings.vapi_hmac_payload:
        raise SettingsError("VAPI_HMAC_PAYLOAD", "the payload format must contain {body}")
    if settings.instance_id is not None and not settings.instance_id.replace("-", "").replace(".", "").isalnum():
        raise SettingsError("INSTANCE_ID", "use letters, digits, dots and dashes")
    try:
        ipaddress.ip_address(settings.host)
    except ValueError:
        if not settings.host.replace("-", "").replace(".", "").isalnum():
            raise SettingsError("HOST", f"expected an IP address or host name, got {settings.host!r}") from None
    return settings
