"""OIDC client credentials: tokens from a real authorization server (interop/oidc_idp.py, started
by python/tests/pytest.rs), accepted by the authenticated server, which checks them against the
provider's keys. The provider counts the tokens it issued."""

import json
import os
import urllib.request

import pytest

import flightline
from conftest import count

COUNT_SQL = "SELECT count(*) AS n FROM log_entries"
CLIENT = "python-oidc"
SECRET = "python oidc secret"
AUDIENCE = "flightline"


def issuer() -> str:
    return os.environ["FLIGHTLINE_TEST_OIDC_ISSUER"]


def issued() -> int:
    with urllib.request.urlopen(issuer() + "/stats") as answer:
        return json.load(answer)["tokens_by_client"].get(CLIENT, 0)


def test_one_token_serves_every_query_while_it_lives(servers):
    before = issued()
    client = flightline.connect(
        servers.auth_uri,
        oidc_issuer=issuer(),
        oidc_client_id=CLIENT,
        oidc_client_secret=SECRET,
        oidc_audience=AUDIENCE,
        oidc_scope="read",
    )
    for _ in range(3):
        assert count(client, COUNT_SQL) == servers.rows
    assert issued() == before + 1


def test_the_micromegas_variables_are_read_when_asked(servers, monkeypatch):
    monkeypatch.setenv("MICROMEGAS_OIDC_ISSUER", issuer())
    monkeypatch.setenv("MICROMEGAS_OIDC_CLIENT_ID", CLIENT)
    monkeypatch.setenv("MICROMEGAS_OIDC_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("MICROMEGAS_OIDC_AUDIENCE", AUDIENCE)
    client = flightline.connect(servers.auth_uri, oidc_from_env=True)
    assert count(client, COUNT_SQL) == servers.rows
    # Exported but not asked for: no credentials are sent.
    with pytest.raises(flightline.AuthError):
        flightline.connect(servers.auth_uri).query(COUNT_SQL)


def test_a_wrong_secret_is_an_auth_error_naming_the_issuer_not_the_secret(servers):
    with pytest.raises(flightline.AuthError) as raised:
        flightline.connect(
            servers.auth_uri, oidc_issuer=issuer(), oidc_client_id=CLIENT, oidc_client_secret="wrong-secret"
        ).query(COUNT_SQL)
    message = str(raised.value)
    assert issuer() in message and "invalid_client" in message, message
    assert "wrong-secret" not in message


def test_oidc_beside_a_token_or_half_given_is_a_config_error(servers):
    with pytest.raises(flightline.ConfigError, match="pass one of them"):
        flightline.connect(
            servers.auth_uri,
            token=servers.token,
            oidc_issuer=issuer(),
            oidc_client_id=CLIENT,
            oidc_client_secret=SECRET,
        )
    with pytest.raises(flightline.ConfigError, match="together"):
        flightline.connect(servers.auth_uri, oidc_issuer=issuer())
