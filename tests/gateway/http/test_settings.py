"""Settings come from the environment; a bad value stops start-up with one line naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import ENV_VARS, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[3]
SPARRING = Path(sys.executable).with_name("sparring")


def test_settings_without_environment_use_the_zero_config_defaults():
    settings = load_settings({})
    assert settings.database_url is None and settings.redis_url is None
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8000, "INFO")
    assert settings.data_dir == (Path.cwd() / ".sparring").resolve()
    assert settings.llm_choice == "scripted"


@pytest.mark.parametrize("value", ["warning", "WARNING", "Warning", " warning "])
def test_log_level_is_case_insensitive(value):
    assert load_settings({"LOG_LEVEL": value}).log_level == "WARNING"


def test_every_documented_variable_is_read():
    for name in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "ELEVENLABS_API_KEY",
                 "VAPI_PRIVATE_KEY", "VAPI_WEBHOOK_SECRET", "SENTRY_DSN", "SITE_URL", "JWT_SECRET",
                 "SUPABASE_JWT_SECRET", "SPARRING_DATA_DIR", "HOST", "PORT", "LOG_LEVEL", "RATE_LIMIT_LOGIN",
                 "RATE_LIMIT_CHAT", "RATE_LIMIT_TRANSCRIBE", "RATE_LIMIT_UPLOAD", "RATE_LIMIT_WS_CONNECT",
                 "RATE_LIMIT_WATCH", "RATE_LIMIT_WEBHOOK", "RATE_LIMIT_FAIL_CLOSED", "LIVE_TTL_SECONDS"):
        assert name in ENV_VARS


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "eighty"}, "PORT: expected a whole number, got 'eighty'"),
        ({"PORT": "70000"}, "PORT: expected a number from 1 to 65535, got 70000"),
        ({"LOG_LEVEL": "loud"},
         "LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), got 'LOUD'"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL: expected a postgres:// or postgresql:// URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL: expected a redis:// or rediss:// or unix:// URL"),
        ({"SITE_URL": "https://"}, "SITE_URL: the URL has no host"),
        ({"SENTRY_TRACES_SAMPLE_RATE": "2"}, "SENTRY_TRACES_SAMPLE_RATE: expected a number from 0 to 1, got 2.0"),
        ({"RATE_LIMIT_LOGIN": "lots"}, "RATE_LIMIT_LOGIN: expected a limit like 10/minute or 5 per second, got 'lots'"),
        ({"RATE_LIMIT_FAIL_CLOSED": "perhaps"}, "RATE_LIMIT_FAIL_CLOSED: expected true or false, got 'perhaps'"),
        ({"HINT_TALK_SHARE": "2"}, "HINT_TALK_SHARE: expected a number from 0.1 to 1, got 2.0"),
        ({"INSTANCE_ID": "a b"}, "INSTANCE_ID: use letters, digits, dots and dashes"),
    ],
)
def test_malformed_value_is_one_message_naming_the_variable(env, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert str(caught.value) == expected


@pytest.mark.parametrize("url", [
    "postgresql://user@/sparring?host=/var/run/postgresql",
    "postgres://user:pw@db.internal:5432/sparring?sslmode=require",
    "postgresql:///sparring",
])
def test_every_asyncpg_style_database_url_is_accepted(url):
    assert load_settings({"DATABASE_URL": url}).database_url == url


def test_empty_values_count_as_unset():
    assert load_settings({"REDIS_URL": "", "PORT": " "}).redis_url is None


def test_serve_with_a_bad_value_exits_with_one_line_and_no_traceback(tmp_path):
    env = {"PATH": os.environ["PATH"], "PORT": "not-a-port", "SPARRING_DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(SPARRING), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sparring: configuration error: PORT: expected a whole number, got 'not-a-port'"]
    assert "Traceback" not in result.stderr


def test_hint_thresholds_come_from_the_environment_in_the_engine_units():
    from gateway.calls.services import hint_options
    options = hint_options(load_settings({"HINT_MONOLOGUE_SECONDS": "90", "HINT_MAX_WPM": "170",
                                          "HINT_MIN_GAP_SECONDS": "30"}))
    assert (options.monologue_ms, options.max_wpm, options.min_gap_ms) == (90_000, 170, 30_000)


def test_llm_hints_on_without_an_llm_key_is_a_configuration_error():
    from gateway.calls.services import build_call_services
    with pytest.raises(SettingsError) as caught:
        build_call_services(load_settings({"HINTS_LLM": "on"}), {}, {}, None)
    assert str(caught.value) == "HINTS_LLM: on needs OPENROUTER_API_KEY or OPENAI_API_KEY"
    quiet = build_call_services(load_settings({}), {}, {}, None)
    assert quiet.llm_hints is None and quiet.providers["hints_llm"] == "off"
    quiet.pool.close()
