"""Settings: one object built at the edges (CLI, app factory) from a config file and the environment.

The config file (YAML, or TOML when its name ends in ``.toml``) names the FHIR
servers and how to talk to each::

    journal_dir: ~/.local/share/trialfhir/journal    # optional
    servers:
      hapi:
        base_url: http://127.0.0.1:8080/fhir
        auth: {type: none}
        bundle_entries: 500
        bundle_bytes: 5000000
        concurrency: 4
      hospital:
        base_url: https://fhir.example.org/r4
        ca_bundle: /etc/ssl/hospital-ca.pem
        allowed_origins: [https://files.example.org]   # links and Bulk Data files we may follow there
        auth:
          type: smart-backend          # none | basic | bearer | client-credentials | smart-backend
          token_url: https://auth.example.org/token
          client_id: trialfhir
          private_key_file: /run/secrets/trialfhir.pem
          key_id: key-2024
          algorithm: RS384             # or ES384
          scope: system/*.write

The service (``trialfhir serve``) reads an optional ``service`` section::

    service:
      api_keys:                      # name: sha256 hash of the key (trialfhir serve --new-key NAME)
        etl: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      data_dir: /var/lib/trialfhir   # studies, job store, export files
      host: 127.0.0.1
      port: 8000
      workers: 2                     # jobs that run at once
      max_upload_bytes: 50000000     # one request body
      max_unpacked_bytes: 500000000  # everything a trial package zip unpacks to

Secrets are never written in the file: each is named by an environment variable
(``password_env``, ``token_env``, ``client_secret_env``) or a file
(``password_file``, ``token_file``, ``client_secret_file``, ``private_key_file``).
Unknown keys and duplicate keys are errors, so a typo never silently falls back to a default.
Credentials go only to a server's own origin (scheme, host and port of ``base_url``)
and the ``allowed_origins`` listed with it; the client refuses links and redirects
anywhere else.

Environment overrides (``ADAPTER_*``): ``ADAPTER_CONFIG`` (the file),
``ADAPTER_JOURNAL_DIR``, and for the chosen server ``ADAPTER_BUNDLE_ENTRIES``,
``ADAPTER_BUNDLE_BYTES``, ``ADAPTER_CONCURRENCY``, ``ADAPTER_TIMEOUT``,
``ADAPTER_MAX_RETRIES``, ``ADAPTER_CA_BUNDLE``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.errors import ConfigError
from adapter.sources.loader import load_yaml

AUTH_TYPES = ("none", "basic", "bearer", "client-credentials", "smart-backend")
WRITE_MODES = ("auto", "put", "conditional")

_SERVER_KEYS = {
    "base_url", "auth", "bundle_entries", "bundle_bytes", "concurrency", "timeout", "connect_timeout",
    "ca_bundle", "verify_tls", "max_retries", "retry_after_cap", "write_mode", "gzip_requests", "allowed_origins",
}  # fmt: skip
_AUTH_KEYS = {
    "none": set(),
    "basic": {"username", "password_env", "password_file"},
    "bearer": {"token_env", "token_file"},
    "client-credentials": {"token_url", "client_id", "client_secret_env", "client_secret_file", "scope"},
    "smart-backend": {"token_url", "client_id", "private_key_file", "key_id", "algorithm", "scope"},
}
_TYPE_CHECKS: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool}
_ENV_OVERRIDES = {
    "ADAPTER_BUNDLE_ENTRIES": ("bundle_entries", int),
    "ADAPTER_BUNDLE_BYTES": ("bundle_bytes", int),
    "ADAPTER_CONCURRENCY": ("concurrency", int),
    "ADAPTER_TIMEOUT": ("timeout", float),
    "ADAPTER_MAX_RETRIES": ("max_retries", int),
    "ADAPTER_CA_BUNDLE": ("ca_bundle", str),
}


class Secret:
    """A secret value that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class AuthSettings:
    """How to authenticate; which fields are set depends on ``type``."""

    type: str = "none"
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    token_file: Path | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    scope: str | None = None
    private_key_file: Path | None = None
    key_id: str | None = None
    algorithm: str = "RS384"
    # Why a secret could not be read (unset variable, unreadable file): an error only when this server is used,
    # so one server's missing secret does not break commands for the others.
    unresolved: str | None = None


@dataclass(frozen=True)
class ServerSettings:
    """One FHIR server: where it is, how to authenticate, how big and how parallel our writes may be."""

    name: str
    base_url: str
    auth: AuthSettings = field(default_factory=AuthSettings)
    bundle_entries: int = 500
    bundle_bytes: int = 5_000_000
    concurrency: int = 4
    timeout: float = 120.0
    connect_timeout: float = 10.0
    ca_bundle: str | None = None
    verify_tls: bool = True
    max_retries: int = 5
    retry_after_cap: float = 120.0
    write_mode: str = "auto"
    gzip_requests: bool = False
    # Origins besides base_url's that the server's links (search pages, Bulk Data files) may lead to.
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceSettings:
    """The HTTP service: who may call it (hashed API keys), where it keeps its data, how much it accepts."""

    api_keys: Mapping[str, str] = field(default_factory=dict)
    data_dir: Path = field(default_factory=lambda: default_data_dir() / "service")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    max_upload_bytes: int = 50_000_000
    max_unpacked_bytes: int = 500_000_000


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once at the edge."""

    servers: Mapping[str, ServerSettings] = field(default_factory=dict)
    journal_dir: Path = field(default_factory=lambda: default_data_dir() / "journal")
    config_file: Path | None = None
    service: ServiceSettings = field(default_factory=ServiceSettings)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def server(self, name_or_url: str) -> ServerSettings:
        """The server called ``name_or_url`` in the config, or an unconfigured one at that URL."""
        if name_or_url in self.servers:
            chosen = self.servers[name_or_url]
        elif name_or_url.startswith(("http://", "https://")):
            url = name_or_url.rstrip("/")
            same = [s for s in self.servers.values() if s.base_url == url]
            chosen = same[0] if same else ServerSettings(name=url, base_url=url)
        else:
            known = ", ".join(sorted(self.servers)) or "none"
            where = self.config_file or "no config file"
            raise ConfigError(f"no server named {name_or_url!r} in {where} (known: {known}); give a name or a URL")
        if chosen.auth.unresolved:
            raise ConfigError(chosen.auth.unresolved)
        return _apply_env(chosen, self.env)


def default_config_file(env: Mapping[str, str]) -> Path:
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "trialfhir" / "config.yaml"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "trialfhir"


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``config_file`` (or ``ADAPTER_CONFIG``, or the default file if present) and ``env``."""
    env = dict(os.environ if env is None else env)
    explicit = config_file or env.get("ADAPTER_CONFIG")
    path = Path(explicit).expanduser() if explicit else default_config_file(env)
    document: dict[str, Any] = {}
    if path.is_file():
        document = _read_document(path)
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    _check_keys(document, {"servers", "journal_dir", "service"}, str(path))
    servers_doc = document.get("servers") or {}
    if not isinstance(servers_doc, dict):
        raise ConfigError(f"{path}: servers: expected a mapping of server names")
    servers = {name: _server(str(name), spec, env, f"{path}: servers.{name}") for name, spec in servers_doc.items()}
    journal = env.get("ADAPTER_JOURNAL_DIR") or document.get("journal_dir")
    return Settings(
        servers=servers,
        journal_dir=Path(journal).expanduser() if journal else default_data_dir(env) / "journal",
        config_file=path if path.is_file() else None,
        service=_service(document.get("service") or {}, env, f"{path}: service"),
        env=env,
    )


def _service(spec: Any, env: Mapping[str, str], where: str) -> ServiceSettings:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping")
    _check_keys(spec, {field_.name for field_ in dataclasses.fields(ServiceSettings)}, where)
    keys = spec.get("api_keys") or {}
    if not isinstance(keys, dict) or not all(
        isinstance(value, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", value) for value in keys.values()
    ):
        raise ConfigError(f"{where}: api_keys: expected name: sha256:<64 hex digits> (trialfhir serve --new-key NAME)")
    values = {key: value for key, value in spec.items() if key not in ("api_keys", "data_dir")}
    for name, value in values.items():
        if name == "host" and not (isinstance(value, str) and value):
            raise ConfigError(f"{where}: host: expected a host name or address")
        if name != "host" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"{where}: {name}: expected a positive integer, got {value!r}")
    data_dir = Path(spec["data_dir"]).expanduser() if spec.get("data_dir") else default_data_dir(env) / "service"
    return ServiceSettings(api_keys={str(name): value for name, value in keys.items()}, data_dir=data_dir, **values)


def _read_document(path: Path) -> dict[str, Any]:
    if path.suffix != ".toml":
        loaded = load_yaml(path)  # refuses duplicate keys, as TOML does
    else:
        try:
            loaded = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{path}: cannot read config file: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return loaded


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _server(name: str, spec: Any, env: Mapping[str, str], where: str) -> ServerSettings:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping")
    _check_keys(spec, _SERVER_KEYS, where)
    if not isinstance(spec.get("base_url"), str):
        raise ConfigError(f"{where}: base_url is required")
    values = {key: value for key, value in spec.items() if key != "auth"}
    values["base_url"] = values["base_url"].rstrip("/")
    values["allowed_origins"] = _origins(spec.get("allowed_origins", []), f"{where}.allowed_origins")
    try:
        values["auth"] = _auth(spec.get("auth") or {"type": "none"}, env, f"{where}.auth")
    except MissingSecret as error:
        values["auth"] = AuthSettings(type=(spec.get("auth") or {}).get("type", "none"), unresolved=str(error))
    settings = ServerSettings(name=name, **values)
    _validate(settings, where)
    return settings


def url_origin(url: str) -> str:
    """The origin of a URL as credentials are scoped to it: ``scheme://host:port``, lower case, port explicit."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a port that is not a number: matches no origin
        port = None
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def _origins(listed: Any, where: str) -> tuple[str, ...]:
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise ConfigError(f"{where}: expected a list of origins such as https://files.example.org")
    for item in listed:
        parts = urllib.parse.urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
            raise ConfigError(f"{where}: {item!r} is not an origin (scheme://host[:port], no path)")
    return tuple(url_origin(item) for item in listed)


def _validate(server: ServerSettings, where: str) -> None:
    for field_ in dataclasses.fields(ServerSettings):
        value = getattr(server, field_.name)
        expected = _TYPE_CHECKS.get(str(field_.type))
        if expected and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
            raise ConfigError(f"{where}: {field_.name}: expected {field_.type}, got {value!r}")
    for name in ("bundle_entries", "bundle_bytes", "concurrency"):
        if getattr(server, name) < 1:
            raise ConfigError(f"{where}: {name} must be at least 1")
    if server.write_mode not in WRITE_MODES:
        raise ConfigError(f"{where}: write_mode must be one of {', '.join(WRITE_MODES)}")


def _auth(spec: Any, env: Mapping[str, str], where: str) -> AuthSettings:
    if not isinstance(spec, dict) or spec.get("type") not in AUTH_TYPES:
        raise ConfigError(f"{where}: type must be one of {', '.join(AUTH_TYPES)}")
    kind = spec["type"]
    _check_keys(spec, _AUTH_KEYS[kind] | {"type"}, where)

    def required(key: str) -> str:
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise ConfigError(f"{where}: {key} is required for {kind} auth")
        return str(spec[key])

    if kind == "none":
        return AuthSettings()
    if kind == "basic":
        return AuthSettings(type=kind, username=required("username"), password=_secret(spec, "password", env, where))
    if kind == "bearer":
        token_file = Path(spec["token_file"]).expanduser() if spec.get("token_file") else None
        return AuthSettings(type=kind, token=_secret(spec, "token", env, where), token_file=token_file)
    common = {"type": kind, "token_url": required("token_url"), "client_id": required("client_id"),
              "scope": spec.get("scope")}  # fmt: skip
    if kind == "client-credentials":
        return AuthSettings(**common, client_secret=_secret(spec, "client_secret", env, where))
    algorithm = spec.get("algorithm", "RS384")
    if algorithm not in ("RS384", "ES384"):
        raise ConfigError(f"{where}: algorithm must be RS384 or ES384 (SMART Backend Services)")
    key_file = Path(required("private_key_file")).expanduser()
    if not key_file.is_file():
        raise ConfigError(f"{where}: private_key_file {key_file} not found")
    return AuthSettings(**common, private_key_file=key_file, key_id=required("key_id"), algorithm=algorithm)


def _secret(spec: Mapping[str, Any], name: str, env: Mapping[str, str], where: str) -> Secret:
    """The secret ``name`` from the environment variable ``<name>_env`` or the file ``<name>_file``."""
    variable, path = spec.get(f"{name}_env"), spec.get(f"{name}_file")
    if bool(variable) == bool(path):
        raise ConfigError(f"{where}: give exactly one of {name}_env or {name}_file")
    if variable:
        if not env.get(variable):
            raise MissingSecret(f"{where}: environment variable {variable} (the {name}) is not set")
        return Secret(env[variable])
    try:
        value = Path(str(path)).expanduser().read_text(encoding="utf-8").strip()
    except OSError as error:
        raise MissingSecret(f"{where}: cannot read {name}_file {path}: {error.strerror}") from error
    if not value:
        raise MissingSecret(f"{where}: {name}_file {path} is empty")
    return Secret(value)


class MissingSecret(ConfigError):
    """A server's secret cannot be read now; raised only when that server is used (``Settings.server``)."""


def _apply_env(server: ServerSettings, env: Mapping[str, str]) -> ServerSettings:
    changes: dict[str, Any] = {}
    for variable, (name, kind) in _ENV_OVERRIDES.items():
        if variable in env:
            try:
                changes[name] = kind(env[variable])
            except ValueError as error:
                raise ConfigError(f"{variable}: expected {kind.__name__}, got {env[variable]!r}") from error
    if not changes:
        return server
    updated = dataclasses.replace(server, **changes)
    _validate(updated, "environment")
    return updated
