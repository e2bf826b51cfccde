"""Credentials: a token, an auth_provider asked before every request, the user/password handshake;
refused credentials raise AuthError."""

import threading

import pytest

import flightline
from conftest import count

COUNT_SQL = "SELECT count(*) AS n FROM log_entries"


class CountingProvider:
    """An auth_provider as the Micromegas client takes: get_token() on every request."""

    def __init__(self, tokens):
        self._tokens = tokens
        self.calls = 0
        self.threads = set()

    def get_token(self) -> str:
        self.calls += 1
        self.threads.add(threading.get_ident())
        return self._tokens(self.calls)


def test_a_bearer_token_is_accepted(servers):
    client = flightline.connect(servers.auth_uri, token=servers.token)
    assert count(client, COUNT_SQL) == servers.rows


def test_headers_are_sent_with_every_call(servers):
    client = flightline.connect(servers.auth_uri, headers={"authorization": f"Bearer {servers.token}"})
    assert count(client, COUNT_SQL) == servers.rows
    assert len(list(client.query_stream("SELECT * FROM processes"))) >= 1


def test_no_credentials_is_an_auth_error(servers):
    client = flightline.connect(servers.auth_uri)
    with pytest.raises(flightline.AuthError) as raised:
        client.query(COUNT_SQL)
    assert raised.value.retryable is False


def test_a_wrong_token_is_an_auth_error(servers):
    with pytest.raises(flightline.AuthError, match="(?i)token"):
        flightline.connect(servers.auth_uri, token="not-" + servers.token).query(COUNT_SQL)


def test_the_auth_provider_is_asked_on_every_request(servers):
    provider = CountingProvider(lambda _: servers.token)
    client = flightline.connect(servers.auth_uri, auth_provider=provider)

    seen = []
    for call in [
        lambda: client.query(COUNT_SQL),
        lambda: client.query_arrow("SELECT * FROM processes"),
        lambda: list(client.query_stream("SELECT * FROM processes")),
        lambda: client.prepare_statement("SELECT * FROM processes"),
        lambda: client.query(COUNT_SQL),
    ]:
        before = provider.calls
        call()
        seen.append(provider.calls - before)

    assert all(n >= 1 for n in seen), f"requests without a get_token() call: {seen}"
    assert threading.get_ident() not in provider.threads, "get_token() ran on the caller's thread"


def test_a_token_the_provider_changes_is_used_at_once(servers):
    """A provider that starts returning a revoked token fails the very next request: the client
    does not keep an earlier token."""
    revoked = {"now": False}
    provider = CountingProvider(lambda _: "revoked" if revoked["now"] else servers.token)
    client = flightline.connect(servers.auth_uri, auth_provider=provider)
    assert count(client, COUNT_SQL) == servers.rows

    revoked["now"] = True
    with pytest.raises(flightline.AuthError):
        client.query(COUNT_SQL)
    revoked["now"] = False
    assert count(client, COUNT_SQL) == servers.rows


def test_a_provider_that_raises_is_an_auth_error_naming_it(servers):
    class Broken:
        def get_token(self):
            raise RuntimeError("the identity provider is down")

    client = flightline.connect(servers.auth_uri, auth_provider=Broken())
    with pytest.raises(flightline.AuthError, match="the identity provider is down"):
        client.query(COUNT_SQL)


def test_user_and_password_handshake(servers):
    client = flightline.connect(servers.auth_uri, user=servers.user, password=servers.password)
    assert count(client, COUNT_SQL) == servers.rows
    assert len(client.query_arrow("SELECT * FROM processes")) == 8


def test_a_wrong_password_is_an_auth_error(servers):
    with pytest.raises(flightline.AuthError, match="refused"):
        client = flightline.connect(servers.auth_uri, user=servers.user, password=servers.password + "x")
        client.query(COUNT_SQL)


def test_a_user_without_password_is_a_config_error(servers):
    with pytest.raises(flightline.ConfigError, match="user and password"):
        flightline.connect(servers.auth_uri, user=servers.user)
