"""Without TRUSTED_PROXIES, X-Forwarded-For is ignored (no local peer is trusted by default); the
new settings are validated."""

import pytest

from gateway.settings import SettingsError, load_settings
from tests.gateway.accounts_helpers import unique_email


async def test_x_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_limit(client):
    email = unique_email()
    codes = [(await client.post("/api/auth/login", json={"email": email, "password": "wrong password!"},
                                headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429


@pytest.mark.parametrize(("variable", "value"), [("TRUSTED_PROXIES", "nginx"), ("RATE_LIMIT_SIGNUP", "lots"),
                                                 ("RATE_LIMIT_LOGIN_ADDRESS", "x"), ("REFRESH_GRACE_SECONDS", "600")])
def test_the_new_settings_are_validated(variable, value):
    with pytest.raises(SettingsError) as refused:
        load_settings({variable: value})
    assert refused.value.variable == variable


def test_trusted_proxies_parse():
    settings = load_settings({"TRUSTED_PROXIES": "10.0.0.1, 172.28.0.0/24"})
    assert [str(n) for n in settings.proxy_networks] == ["10.0.0.1/32", "172.28.0.0/24"]
