"""OIDC_PROVIDERS and the OIDC_<ID>_* variables it names, read at start-up."""

from __future__ import annotations

import pytest

from gateway.settings import ENV_VARS, SettingsError, load_settings

GOOGLE = {"OIDC_PROVIDERS": "google", "OIDC_GOOGLE_ISSUER": "https://accounts.google.com",
          "OIDC_GOOGLE_CLIENT_ID": "client-1", "OIDC_GOOGLE_CLIENT_SECRET": "s3cret-value"}


def test_providers_are_read_with_their_defaults():
    settings = load_settings({**GOOGLE, "OIDC_PROVIDERS": "google, My-Entra", "OIDC_MY_ENTRA_ISSUER":
                              "https://login.microsoftonline.com/tenant/v2.0", "OIDC_MY_ENTRA_CLIENT_ID": "client-2",
                              "OIDC_MY_ENTRA_NAME": "Microsoft", "OIDC_MY_ENTRA_SCOPES": "openid,email"})
    google, entra = settings.oidc
    assert (google.id, google.name, google.scopes, google.client_secret) == (
        "google", "Google", "openid email profile", "s3cret-value")
    assert (entra.id, entra.name, entra.scopes, entra.client_secret) == ("my-entra", "Microsoft", "openid email", None)
    assert "s3cret-value" not in repr(settings), "the client secret never reaches a log line"
    assert "OIDC_PROVIDERS" in ENV_VARS and "OIDC" not in ENV_VARS


def test_no_providers_by_default():
    assert load_settings({}).oidc == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OIDC_GOOGLE_ISSUER": ""}, "OIDC_GOOGLE_ISSUER: required: OIDC_PROVIDERS names 'google'"),
        ({"OIDC_GOOGLE_CLIENT_ID": " "}, "OIDC_GOOGLE_CLIENT_ID: required: OIDC_PROVIDERS names 'google'"),
        ({"OIDC_GOOGLE_ISSUER": "accounts.google.com"}, "OIDC_GOOGLE_ISSUER: expected the issuer's http:// or"),
        ({"OIDC_GOOGLE_SCOPES": "email profile"}, "OIDC_GOOGLE_SCOPES: the scopes must include openid"),
        ({"OIDC_PROVIDERS": "google,google"}, "OIDC_PROVIDERS: expected distinct ids"),
        ({"OIDC_PROVIDERS": "go ogle"}, "OIDC_PROVIDERS: expected distinct ids"),
    ],
)
def test_a_named_provider_missing_a_setting_stops_start_up_naming_the_variable(env, message):
    with pytest.raises(SettingsError) as raised:
        load_settings({**GOOGLE, **env})
    assert str(raised.value).startswith(message)
    assert "s3cret-value" not in str(raised.value)
