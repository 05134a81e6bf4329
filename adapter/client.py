"""The FHIR REST client: one ``requests.Session`` and one request function that retries and raises.

Every call goes through ``FhirClient._request``, which alone

- puts a timeout, the User-Agent and the credentials on the request, the
  credentials only when the URL's origin is the base URL's or one of
  ``allowed_origins``: a ``next`` link, a Bulk Data file or a redirect that leads
  anywhere else is refused (a ``ServerError``), so a token never reaches a host
  the configuration did not name; redirects are followed here, not by requests,
  so each hop is checked;
- retries idempotent requests after a connection error or a 408, 429, 500, 502,
  503 or 504, with capped exponential backoff and jitter, and honours
  ``Retry-After`` (seconds or an HTTP date) up to a cap;
- after a 401 asks the authentication scheme for a new credential, once;
- turns every error status into a ``ServerError`` carrying the status and the
  server's OperationOutcome, of the subclass ``server_error`` picks for the status
  (``AuthFailed``, ``NotFound``, ``Conflict``, ``Rejected``), so callers catch a kind of
  failure rather than compare numbers. A request that got no answer at all raises a
  ``ServerError`` with status 0.

The client also owns the rest of the protocol that callers would otherwise
repeat: search paging (``search``: ``next`` links followed as opaque URLs, a link
seen twice is a loop and an error) and the CapabilityStatement (``capabilities``:
read and parsed once per client, with the Bulk Data ``$export`` levels).

Our writes are PUTs to deterministic ids (or transaction bundles made only of
them), so sending one twice leaves the server as sending it once: they count as
idempotent. A plain POST that creates does not, and is never retried.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import random
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from adapter import __version__
from adapter.auth import Auth, NoAuth, build_auth
from adapter.errors import ConfigError, ServerError, server_error
from adapter.fhir.json import dumpb, loads
from adapter.settings import ServerSettings, url_origin

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
USER_AGENT = f"trialfhir/{__version__} (+https://trialfhir.dev) python-requests/{requests.__version__}"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The levels Bulk Data defines $export at: the whole server, all patients, one Group.
EXPORT_LEVELS = frozenset({"system", "Patient", "Group"})


@dataclass(frozen=True)
class Capabilities:
    """What a server's CapabilityStatement says about the writes and exports we need."""

    fhir_version: str
    transaction: bool
    batch: bool
    # Per resource type: may a PUT create a resource at a client-chosen id (updateCreate)?
    update_create: Mapping[str, bool | None]
    # Where Bulk Data $export is offered: a subset of EXPORT_LEVELS.
    export_levels: frozenset[str]

    def client_ids_allowed(self, resource_type: str) -> bool:
        """False only when the server says so: most servers that leave updateCreate out do accept it."""
        return self.update_create.get(resource_type) is not False

    @classmethod
    def parse(cls, statement: Mapping[str, Any]) -> Capabilities:
        rest: Mapping[str, Any] = next((r for r in statement.get("rest", []) if r.get("mode") == "server"), {})
        system = {i.get("code") for i in rest.get("interaction", [])}
        resources = [r for r in rest.get("resource", []) if "type" in r]
        levels = {str(r["type"]) for r in resources if _offers_export(r)}
        if _offers_export(rest):
            levels.add("system")
        return cls(
            fhir_version=str(statement.get("fhirVersion", "")),
            transaction="transaction" in system,
            batch="batch" in system,
            update_create={r["type"]: r.get("updateCreate") for r in resources},
            export_levels=frozenset(levels & EXPORT_LEVELS),
        )


def _offers_export(declaration: Mapping[str, Any]) -> bool:
    """Whether a rest or rest.resource entry lists the $export operation."""
    return any(operation.get("name") == "export" for operation in declaration.get("operation", []))


class FhirClient:
    """A thin FHIR R4 client; use it as a context manager so its connections close."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        auth: Auth | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        verify: bool | str = True,
        max_retries: int = 5,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 120.0,
        gzip_requests: bool = False,
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        allowed_origins: Collection[str] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Where requests may go, and credentials with them: the base URL's origin and those the config allows.
        self.origins = frozenset({url_origin(self.base_url), *map(url_origin, allowed_origins)})
        self.session = session or requests.Session()
        if session is None:
            adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self.session.verify = verify
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": FHIR_JSON, "Accept-Encoding": "gzip"})
        self.auth: Auth = auth or NoAuth()
        self.timeout = (connect_timeout, timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self.gzip_requests = gzip_requests
        self._sleep = sleep
        self._capabilities: Capabilities | None = None
        self._not_r4: str | None = None  # why the server is no FHIR 4.0.x server, when it is not

    @classmethod
    def from_settings(cls, server: ServerSettings, **overrides: Any) -> FhirClient:
        """A client for a configured server (for the CLI and the app factory, which read settings)."""
        options: dict[str, Any] = {
            "auth": build_auth(server.auth),
            "timeout": server.timeout,
            "connect_timeout": server.connect_timeout,
            "verify": server.ca_bundle or server.verify_tls,
            "max_retries": server.max_retries,
            "retry_after_cap": server.retry_after_cap,
            "gzip_requests": server.gzip_requests,
            "pool_size": max(10, server.concurrency + 2),
            "allowed_origins": server.allowed_origins,
        }
        return cls(server.base_url, **{**options, **overrides})

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # --- what callers use ---------------------------------------------------------------------

    def capabilities(self, *, require_r4: bool = True) -> Capabilities:
        """The server's CapabilityStatement, read and parsed once per client.

        With ``require_r4`` (what a push needs), a /metadata that is not a CapabilityStatement or a
        server that does not speak FHIR 4.0.x is a ConfigError. A pull asks only which ``$export``
        levels exist, and has never refused a server for its version: it passes False.
        """
        if self._capabilities is None:
            statement = self._request("GET", "metadata").json()
            self._capabilities = Capabilities.parse(statement)
            if statement.get("resourceType") != "CapabilityStatement":
                self._not_r4 = f"{self.base_url}/metadata is not a CapabilityStatement; is this a FHIR base URL?"
            elif not self._capabilities.fhir_version.startswith("4.0."):
                self._not_r4 = (
                    f"{self.base_url} speaks FHIR {self._capabilities.fhir_version or '(unstated version)'}; "
                    "trialfhir writes FHIR R4 and needs a 4.0.x server"
                )
        if require_r4 and self._not_r4:
            raise ConfigError(self._not_r4)
        return self._capabilities

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """The current version of ``resource_type/resource_id``."""
        return dict(loads(self._request("GET", f"{resource_type}/{resource_id}").content))

    def search(self, resource_type: str, params: Mapping[str, str], *, fresh: bool = False) -> Iterator[dict[str, Any]]:
        """Every page (a searchset Bundle) of a search, following ``next`` links.

        A next link is an opaque URL: fetched as the server wrote it, never parsed or rebuilt. A link
        already followed is a loop and a ServerError (status 0), raised before that page is read again.
        ``fresh`` asks the server not to answer from a cached search (``Cache-Control: no-cache``).
        """
        headers = {"Cache-Control": "no-cache"} if fresh else {}
        # Resources are read with their decimals' digits (adapter.fhir.json.loads): a pull writes them back.
        page: dict[str, Any] = loads(self._request("GET", resource_type, params=params, headers=headers).content)
        followed: set[str] = set()
        while True:
            yield page
            following = next((link["url"] for link in page.get("link", []) if link.get("relation") == "next"), None)
            if not following:
                return
            if following in followed:
                raise ServerError(0, method="GET", url=following,
                                  text="the server's next links loop back to a page already read")  # fmt: skip
            followed.add(following)
            page = loads(self._request("GET", following, headers=headers).content)

    def count(self, resource_type: str, params: Mapping[str, str]) -> int:
        """How many resources match a search, counted fresh by the server."""
        page = next(self.search(resource_type, {**params, "_summary": "count"}, fresh=True))
        return int(page.get("total", 0))

    def update(self, path: str, resource: bytes | Mapping[str, Any]) -> requests.Response:
        """PUT ``resource`` to ``path``: ``Type/id`` (update as create) or ``Type?identifier=sys|val`` (conditional)."""
        body = resource if isinstance(resource, bytes) else dumpb(resource)
        return self._request("PUT", path, body=body)

    def delete(self, resource_type: str, resource_id: str) -> requests.Response:
        return self._request("DELETE", f"{resource_type}/{resource_id}")

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        stream: bool = False,
        credentials: bool = True,
    ) -> requests.Response:
        """Any other request (Bulk Data kick-off, status polls, file downloads): the response, errors raised.

        ``path`` is relative to the base or an absolute URL (on an allowed origin); ``body`` is sent as FHIR
        JSON (a POST with a body is not retried); ``stream`` leaves a large response body unread until
        iterated; ``credentials=False`` sends none (a Bulk Data file whose manifest says
        ``requiresAccessToken: false``).
        """
        raw = dumpb(body) if body is not None else None
        return self._request(
            method, path, params=params, headers=headers, body=raw, stream=stream, credentials=credentials
        )

    def post_bundle(self, body: bytes | Mapping[str, Any], *, idempotent: bool) -> dict[str, Any]:
        """POST a transaction or batch Bundle to the base; returns the response Bundle.

        ``idempotent`` says whether every entry may safely be sent twice (PUT, DELETE), which allows retries.
        """
        raw = body if isinstance(body, bytes) else dumpb(body)
        return dict(self._request("POST", "", body=raw, idempotent=idempotent).json())

    # --- the one request path -------------------------------------------------------------------
    #
    # Why not urllib3's Retry (mounted with requests' HTTPAdapter)? It would cover the status list,
    # backoff with jitter and Retry-After with a cap (retry_after_max), but: it sleeps with time.sleep,
    # bypassing the injected ``sleep`` the fault tests record instead of waiting; which
    # methods retry is fixed per adapter, while a transaction of PUTs is a POST we retry per call; it
    # cannot renew a credential after a 401; and its parse_retry_after reads the wall clock, where
    # retry_after_seconds takes ``now``. Keeping the loop below is smaller than working around that.

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
        credentials: bool = True,
    ) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path}".rstrip("/")
        self._check_origin(method, url)
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        extra = dict(headers or {})
        if body is not None:
            extra["Content-Type"] = FHIR_JSON
            if self.gzip_requests:
                body = gzip.compress(body, compresslevel=1)
                extra["Content-Encoding"] = "gzip"
        attempt, renewed, redirects = 0, False, 0
        while True:
            request_headers = {**extra, **(self.auth.headers(self.session) if credentials else {})}
            try:
                response = self.session.request(
                    method, url, params=params, data=body, headers=request_headers, timeout=self.timeout,
                    stream=stream, allow_redirects=False,
                )  # fmt: skip
            except (requests.ConnectionError, requests.Timeout) as error:
                if idempotent and attempt < self.max_retries:
                    delay = self._backoff(attempt)
                    log.warning("%s %s: %s; retry %d in %.1fs", method, url, type(error).__name__, attempt + 1, delay)
                    self._sleep(delay)
                    attempt += 1
                    continue
                raise server_error(0, method=method, url=url, text=f"no response: {error}") from error
            status = response.status_code
            if status in _REDIRECTS and response.headers.get("Location") and redirects < MAX_REDIRECTS:
                response.close()
                url = urllib.parse.urljoin(url, response.headers["Location"])
                params, redirects = None, redirects + 1  # the Location is the whole URL
                self._check_origin(method, url)
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, body = "GET", None  # what browsers and requests do
                    extra = {k: v for k, v in extra.items() if k not in ("Content-Type", "Content-Encoding")}
                continue
            if status == 401 and credentials and not renewed and self.auth.renew(self.session):
                renewed = True
                log.info("%s %s: 401, retrying once with a renewed credential", method, url)
                continue
            if status in ServerError.RETRYABLE_STATUSES and idempotent and attempt < self.max_retries:
                delay = self._retry_delay(response, attempt)
                log.warning("%s %s: HTTP %d; retry %d in %.1fs", method, url, status, attempt + 1, delay)
                self._sleep(delay)
                attempt += 1
                continue
            if status >= 400:
                raise server_error(status, method=method, url=url, outcome=_outcome(response), text=response.text)
            return response

    def _check_origin(self, method: str, url: str) -> None:
        if url_origin(url) not in self.origins:
            raise ServerError(
                0, method=method, url=url, text=f"refusing to follow the server to another origin, {url_origin(url)}; "
                "list it in the server's allowed_origins if it is trusted"
            )  # fmt: skip

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff * 2.0**attempt)
        # Jitter spreads the retries of parallel workers; not a security use of random.
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311

    def _retry_delay(self, response: requests.Response, attempt: int) -> float:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        if wait is None:
            return self._backoff(attempt)
        return min(wait, float(self.retry_after_cap))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _outcome(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None
