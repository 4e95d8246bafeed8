"""A small OIDC identity provider for the tests: a token endpoint and its JWKS.

``POST /token`` answers the client credentials grant (HTTP Basic, as Keycloak, Okta or
Azure AD accept it) with an RS256-signed JWT; ``GET /jwks`` publishes the public key,
which a broker's ``OAuthBearerValidatorCallbackHandler`` fetches to check the tokens.
It runs in a thread (stdlib HTTP server), so a broker can start against it before a test's
own event loop exists. Tokens can be made short-lived (renewal) or already expired.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_ID = "test-key-1"


class OidcDouble:
    """The provider's state: its clients, its key, and what it has issued."""

    def __init__(self, clients: dict[str, str], audience: str = "kafka") -> None:
        self.clients = clients
        self.audience = audience
        self.lifetime = 3600.0  # seconds a token lives
        self.expired = False  # issue tokens whose exp has passed already
        self.issued = 0
        self.url = ""
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.url}/token"

    @property
    def jwks_url(self) -> str:
        """The key set endpoint."""
        return f"{self.url}/jwks"

    def jwks(self) -> dict[str, Any]:
        """The public key set, as a JWKS document."""
        key = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**key, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def issue(self, client: str, scope: str | None) -> dict[str, Any]:
        """A token answer for ``client``."""
        now = time.time()
        expires = now - 120 if self.expired else now + self.lifetime
        claims = {
            "sub": client,
            "aud": self.audience,
            "iss": self.url,
            "iat": int(now) - (300 if self.expired else 0),
            "exp": int(expires),
            "scope": scope or "kafka",
            "jti": f"token-{self.issued + 1}",
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KEY_ID})
        self.issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def client_of(self, authorization: str | None) -> str | None:
        """The client whose Basic credentials these are, if they are right."""
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            client, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return None
        return client if self.clients.get(client) == secret else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path == "/jwks":
            self._answer(200, self.server.double.jwks())
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        double = self.server.double
        if self.path != "/token" or form.get("grant_type") != ["client_credentials"]:
            self._answer(400, {"error": "unsupported_grant_type"})
            return
        client = double.client_of(self.headers.get("Authorization"))
        if client is None:
            self._answer(401, {"error": "invalid_client"})
            return
        scope = form.get("scope")
        self._answer(200, double.issue(client, scope[0] if scope else None))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows what a failing test printed


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, double: OidcDouble) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.double = double


@contextmanager
def serving(double: OidcDouble) -> Iterator[OidcDouble]:
    """Serve ``double`` on a free port of 127.0.0.1 until the block ends."""
    server = _Server(double)
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
