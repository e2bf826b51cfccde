"""An OpenID Connect identity provider for the OIDC tests: a real authlib authorization server.

The token endpoint is authlib's framework-neutral ``AuthorizationServer`` with its
``ClientCredentialsGrant`` (client_secret_basic and client_secret_post) and its RFC 9068
``JWTBearerTokenGenerator`` (RS256 JWT access tokens with a ``kid``), served over the standard
library's ``http.server``; nothing here builds a token by hand except ``/forge``, which exists so
the tests can present tokens a real provider would never issue.

    python interop/oidc_idp.py --port 0 --lifetime 3 --client svc:s3cret [--audience flightline]

prints ``oidc-idp: listening on http://127.0.0.1:PORT`` once, then serves until killed:

- ``GET /.well-known/openid-configuration``: discovery (issuer = the base URL).
- ``POST /token``: the client-credentials grant; form parameters ``audience`` and ``scope``.
- ``GET /jwks``: the public keys, every key ever used (so a rotated key stays valid).
- ``GET /stats``: what the provider served, counted here: ``tokens`` (total), ``tokens_by_client``,
  ``jwks`` and ``discovery`` fetches, ``refused`` token requests.
- ``POST /rotate`` (tests only): a new signing key (a new ``kid``) signs from now on.
- ``POST /forge`` (tests only): a token with the claims asked for (``sub``, ``aud``, ``exp_in``
  seconds, may be negative), signed by the current key or, with ``key=stray``, by a key that is
  never published; ``kid`` overrides the header's key id.
"""

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

# The request being answered, per handler thread: the token generator's hooks do not see it.
_current = threading.local()


class Client(ClientMixin):
    """A confidential client allowed the client-credentials grant only."""

    def __init__(self, client_id, secret):
        self.client_id = client_id
        self.secret = secret

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope or ""

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return client_secret == self.secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"


class CredentialsGrant(ClientCredentialsGrant):
    # Both ways a client sends its secret: the Authorization header and the form.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class Keys:
    """The signing keys: the newest signs, every one is published."""

    def __init__(self):
        self.lock = threading.Lock()
        self.published = []
        self.rotate()

    def rotate(self):
        key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex, "use": "sig", "alg": "RS256"})
        with self.lock:
            self.published.append(key)
        return key.kid

    def current(self):
        with self.lock:
            return self.published[-1]

    def public_set(self):
        with self.lock:
            return {"keys": [key.as_dict(private=False) for key in self.published]}


class TokenGenerator(JWTBearerTokenGenerator):
    def __init__(self, issuer, keys, lifetime, audience):
        super().__init__(issuer=issuer, alg="RS256", expires_generator=lifetime)
        self.keys = keys
        self.default_audience = audience

    def get_jwks(self):
        return KeySet([self.keys.current()])

    def get_audiences(self, client, user, scope):
        return _current.form.get("audience") or self.default_audience or client.get_client_id()


class FormPayload(OAuth2Payload):
    def __init__(self, form):
        self._form = form

    @property
    def data(self):
        return {key: values[0] for key, values in self._form.items()}

    @property
    def datalist(self):
        return self._form


class FormRequest(OAuth2Request):
    def __init__(self, uri, headers, form):
        super().__init__("POST", uri, headers=headers)
        self.payload = FormPayload(form)

    @property
    def form(self):
        return self.payload.data

    @property
    def args(self):
        return {}


class Server(AuthorizationServer):
    """authlib's server, told how requests come in and responses go out of http.server."""

    def __init__(self, clients, stats):
        super().__init__()
        self.clients = clients
        self.stats = stats

    def query_client(self, client_id):
        return self.clients.get(client_id)

    def save_token(self, token, request):
        self.stats.issued(request.client.get_client_id())

    def create_oauth2_request(self, request):
        return request

    def handle_response(self, status, body, headers):
        return status, body, headers

    def send_signal(self, name, *args, **kwargs):
        # Framework integrations forward these to their signal systems; nothing listens here.
        pass


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"tokens": 0, "tokens_by_client": {}, "jwks": 0, "discovery": 0, "refused": 0}

    def issued(self, client_id):
        with self.lock:
            self.counts["tokens"] += 1
            by_client = self.counts["tokens_by_client"]
            by_client[client_id] = by_client.get(client_id, 0) + 1

    def bump(self, name):
        with self.lock:
            self.counts[name] += 1

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.counts))


def make_handler(base, server, keys, stats, lifetime):
    stray = RSAKey.generate_key(2048, parameters={"kid": "never-published", "alg": "RS256"})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            sys.stderr.write("oidc-idp: " + (format % args) + "\n")

        def send_json(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            sent = set()
            for name, value in headers:
                self.send_header(name, value)
                sent.add(name.lower())
            if "content-type" not in sent:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def read_form(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            return parse_qs(body, keep_blank_values=True)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/.well-known/openid-configuration":
                stats.bump("discovery")
                self.send_json(200, {
                    "issuer": base,
                    "token_endpoint": base + "/token",
                    "jwks_uri": base + "/jwks",
                    "grant_types_supported": ["client_credentials"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["token"],
                    "subject_types_supported": ["public"],
                })
            elif path == "/jwks":
                stats.bump("jwks")
                self.send_json(200, keys.public_set())
            elif path == "/stats":
                self.send_json(200, stats.snapshot())
            else:
                self.send_json(404, {"error": "not_found"})

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            form = self.read_form()
            if path == "/token":
                _current.form = {key: values[0] for key, values in form.items()}
                request = FormRequest(base + "/token", self.headers, form)
                status, body, headers = server.create_token_response(request)
                if status != 200:
                    stats.bump("refused")
                self.send_json(status, body, headers)
            elif path == "/rotate":
                self.send_json(200, {"kid": keys.rotate()})
            elif path == "/forge":
                self.send_json(200, {"access_token": forge(form)})
            else:
                self.send_json(404, {"error": "not_found"})

    def forge(form):
        one = {key: values[0] for key, values in form.items()}
        key = stray if one.get("key") == "stray" else keys.current()
        now = int(time.time())
        claims = {
            "iss": one.get("iss", base),
            "sub": one.get("sub", "forged"),
            "aud": one.get("aud", "flightline"),
            "iat": now,
            "exp": now + int(one.get("exp_in", lifetime)),
        }
        header = {"alg": "RS256", "typ": "at+jwt", "kid": one.get("kid", key.kid)}
        return jwt.encode(header, claims, key)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=int, default=3600, help="token lifetime in seconds")
    parser.add_argument("--client", action="append", default=[], metavar="ID:SECRET")
    parser.add_argument("--audience", help="the aud of tokens whose request names none")
    args = parser.parse_args()
    clients = {}
    for spec in args.client:
        client_id, sep, secret = spec.partition(":")
        if not sep or not client_id:
            parser.error(f"--client wants ID:SECRET, got {spec!r}")
        clients[client_id] = Client(client_id, secret)

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), None)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    keys = Keys()
    stats = Stats()
    server = Server(clients, stats)
    server.register_grant(CredentialsGrant)
    server.register_token_generator("default", TokenGenerator(base, keys, args.lifetime, args.audience))
    httpd.RequestHandlerClass = make_handler(base, server, keys, stats, args.lifetime)
    print(f"oidc-idp: listening on {base}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
