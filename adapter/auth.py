"""Authentication for the FHIR client: none, basic, bearer token, OAuth client credentials, SMART Backend Services.

Every scheme answers two questions from the client: which headers go on the next
request (``headers``), and, after a 401, whether fetching a new credential may
help (``renew``). Token schemes cache the access token and renew it shortly
before it expires. Secrets live in ``Secret`` objects and never reach a log.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import jwt
import requests

from adapter.errors import ConfigError, server_error
from adapter.settings import AuthSettings, Secret

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART Backend Services: the signed assertion may live at most five minutes.
ASSERTION_LIFETIME = 300


class Auth(Protocol):
    """What the client asks of an authentication scheme."""

    def headers(self, session: requests.Session) -> dict[str, str]:
        """Headers that authenticate the next request."""
        ...

    def renew(self, session: requests.Session) -> bool:
        """Drop the current credential after a 401; True when a new one was obtained."""
        ...


class NoAuth:
    """No credentials at all (a server on a trusted network, a test server)."""

    def headers(self, session: requests.Session) -> dict[str, str]:
        return {}

    def renew(self, session: requests.Session) -> bool:
        return False


class BasicAuth:
    """HTTP basic authentication."""

    def __init__(self, username: str, password: Secret) -> None:
        raw = f"{username}:{password.reveal()}".encode()
        self._header = Secret("Basic " + base64.b64encode(raw).decode("ascii"))

    def headers(self, session: requests.Session) -> dict[str, str]:
        return {"Authorization": self._header.reveal()}

    def renew(self, session: requests.Session) -> bool:
        return False


class BearerAuth:
    """A static bearer token; when it came from a file, a 401 re-reads the file (another process may rotate it)."""

    def __init__(self, token: Secret, token_file: Path | None = None) -> None:
        self._token = token
        self._file = token_file

    def headers(self, session: requests.Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    def renew(self, session: requests.Session) -> bool:
        if self._file is None:
            return False
        try:
            fresh = Secret(self._file.read_text(encoding="utf-8").strip())
        except OSError:
            return False
        changed = fresh != self._token
        self._token = fresh
        return changed


class TokenAuth:
    """An OAuth 2.0 client-credentials token, cached and renewed before it expires.

    ``credentials`` returns the form fields that prove who we are: a client
    secret, or (SMART Backend Services) a freshly signed JWT assertion.
    """

    def __init__(
        self,
        token_url: str,
        credentials: Callable[[], dict[str, str]],
        *,
        scope: str | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self._credentials = credentials
        self._scope = scope
        self._timeout = timeout
        self._clock = clock
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def headers(self, session: requests.Session) -> dict[str, str]:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._fetch(session)
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token.reveal()}"}

    def renew(self, session: requests.Session) -> bool:
        with self._lock:
            self._fetch(session)
            return True

    def _fetch(self, session: requests.Session) -> None:
        form = {"grant_type": "client_credentials", **self._credentials()}
        if self._scope:
            form["scope"] = self._scope
        try:
            response = session.post(
                self.token_url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except requests.RequestException as error:
            raise server_error(0, method="POST", url=self.token_url, text=f"token request failed: {error}") from error
        if response.status_code != 200:
            # The token endpoint's error body names the problem (RFC 6749 error, error_description); our form,
            # which holds the secret, is never included.
            raise server_error(response.status_code, method="POST", url=self.token_url, text=response.text)
        try:
            body: dict[str, Any] = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError) as error:
            raise server_error(
                response.status_code, method="POST", url=self.token_url, text="token response has no access_token"
            ) from error
        lifetime = float(body.get("expires_in") or 300)
        # Renew a little early so a token never expires in flight: a minute, or half the lifetime if shorter.
        self._expires_at = self._clock() + lifetime - min(60.0, lifetime / 2)
        self._token = Secret(token)


def client_secret_credentials(client_id: str, client_secret: Secret) -> Callable[[], dict[str, str]]:
    """Form fields for the client-credentials grant with a shared secret (client_secret_post)."""
    return lambda: {"client_id": client_id, "client_secret": client_secret.reveal()}


def jwt_assertion_credentials(
    client_id: str,
    token_url: str,
    private_key_pem: Secret,
    key_id: str,
    algorithm: str = "RS384",
    clock: Callable[[], float] = time.time,
) -> Callable[[], dict[str, str]]:
    """Form fields for SMART Backend Services: a JWT client assertion signed with our private key."""
    if algorithm not in ("RS384", "ES384"):
        raise ConfigError(f"SMART Backend Services signs with RS384 or ES384, not {algorithm}")

    def credentials() -> dict[str, str]:
        now = int(clock())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": str(uuid.uuid4()),
        }
        assertion = jwt.encode(
            claims, private_key_pem.reveal(), algorithm=algorithm, headers={"kid": key_id, "typ": "JWT"}
        )
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}

    return credentials


def build_auth(settings: AuthSettings, *, clock: Callable[[], float] = time.time) -> Auth:
    """The authentication scheme that ``settings`` describe."""
    if settings.type == "none":
        return NoAuth()
    if settings.type == "basic":
        assert settings.username is not None and settings.password is not None
        return BasicAuth(settings.username, settings.password)
    if settings.type == "bearer":
        assert settings.token is not None
        return BearerAuth(settings.token, settings.token_file)
    assert settings.token_url is not None and settings.client_id is not None
    if settings.type == "client-credentials":
        assert settings.client_secret is not None
        credentials = client_secret_credentials(settings.client_id, settings.client_secret)
    else:
        assert settings.private_key_file is not None and settings.key_id is not None
        try:
            key = Secret(settings.private_key_file.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"cannot read private key {settings.private_key_file}: {error.strerror}") from error
        credentials = jwt_assertion_credentials(
            settings.client_id, settings.token_url, key, settings.key_id, settings.algorithm, clock
        )
    return TokenAuth(settings.token_url, credentials, scope=settings.scope, clock=clock)
