"""Settings: config file, secrets from the environment or files, ADAPTER_* overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.errors import ConfigError
from adapter.settings import Secret, load_settings

CONFIG = """
journal_dir: {journal}
servers:
  hapi:
    base_url: http://127.0.0.1:8080/fhir/
    bundle_entries: 250
    concurrency: 2
  hospital:
    base_url: https://fhir.example.org/r4
    ca_bundle: /etc/ssl/hospital.pem
    auth:
      type: basic
      username: etl
      password_env: HOSPITAL_PASSWORD
"""


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_servers_from_yaml_with_secret_from_env(tmp_path: Path) -> None:
    config = _write(tmp_path, CONFIG.format(journal=tmp_path / "j"))
    settings = load_settings(config, env={"HOSPITAL_PASSWORD": "pw"})
    hapi = settings.server("hapi")
    assert hapi.base_url == "http://127.0.0.1:8080/fhir"
    assert (hapi.bundle_entries, hapi.bundle_bytes, hapi.concurrency) == (250, 5_000_000, 2)
    hospital = settings.server("hospital")
    assert hospital.auth.type == "basic" and hospital.auth.password == Secret("pw")
    assert hospital.ca_bundle == "/etc/ssl/hospital.pem"
    assert "pw" not in repr(settings)
    assert settings.journal_dir == tmp_path / "j"


def test_a_url_finds_its_configured_server_or_stands_alone(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, CONFIG.format(journal=tmp_path)), env={"HOSPITAL_PASSWORD": "pw"})
    assert settings.server("http://127.0.0.1:8080/fhir").name == "hapi"
    other = settings.server("http://other:8080/fhir/")
    assert other.base_url == "http://other:8080/fhir" and other.auth.type == "none"
    with pytest.raises(ConfigError, match=r"no server named 'nope' .*\(known: hapi, hospital\)"):
        settings.server("nope")


def test_toml_and_secret_files(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-a-file\n")
    config = _write(
        tmp_path,
        f"""
[servers.idp]
base_url = "https://fhir.example.org"
[servers.idp.auth]
type = "client-credentials"
token_url = "https://auth.example.org/token"
client_id = "trialfhir"
client_secret_file = "{tmp_path / "secret"}"
""",
        "config.toml",
    )
    auth = load_settings(config, env={}).server("idp").auth
    assert auth.client_secret == Secret("from-a-file") and auth.token_url == "https://auth.example.org/token"


def test_adapter_env_overrides(tmp_path: Path) -> None:
    config = _write(tmp_path, CONFIG.format(journal=tmp_path))
    env = {"HOSPITAL_PASSWORD": "pw", "ADAPTER_CONCURRENCY": "8", "ADAPTER_BUNDLE_BYTES": "1000000",
           "ADAPTER_JOURNAL_DIR": str(tmp_path / "elsewhere"), "ADAPTER_CONFIG": "/not/used/when/given"}  # fmt: skip
    settings = load_settings(config, env=env)
    assert settings.server("hapi").concurrency == 8
    assert settings.server("hapi").bundle_bytes == 1_000_000
    assert settings.journal_dir == tmp_path / "elsewhere"
    with pytest.raises(ConfigError, match="ADAPTER_CONCURRENCY: expected int"):
        load_settings(config, env={**env, "ADAPTER_CONCURRENCY": "many"}).server("hapi")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servers:\n  s:\n    base_url: http://x\n    bundle_size: 5\n", "unknown setting.*bundle_size"),
        ("servers:\n  s:\n    base_url: http://x\n    auth: {type: basic, username: u, password: pw}\n",
         "unknown setting.*password"),
        ("servers:\n  s:\n    base_url: http://x\n    auth: {type: kerberos}\n", "type must be one of"),
        ("servers:\n  s:\n    base_url: http://x\n    concurrency: 0\n", "concurrency must be at least 1"),
        ("servers:\n  s:\n    base_url: http://x\n    concurrency: four\n", "concurrency: expected int"),
        ("servers:\n  s:\n    auth: {type: none}\n", "base_url is required"),
        ("servers:\n  s:\n    base_url: http://x\n    auth: {type: smart-backend, token_url: t, client_id: c, "
         "private_key_file: /no/such.pem, key_id: k}\n", "private_key_file /no/such.pem not found"),
        ("servers:\n  s:\n    base_url: http://x\n    auth: {type: smart-backend, token_url: t, client_id: c, "
         "private_key_file: /etc/hostname, key_id: k, algorithm: HS256}\n", "RS384 or ES384"),
    ],
)  # fmt: skip
def test_config_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_write(tmp_path, text), env={})


def test_a_missing_secret_is_an_error_for_its_server_only(tmp_path: Path) -> None:
    text = ("servers:\n  s:\n    base_url: http://x\n    auth: {type: basic, username: u, password_env: NOPE}\n"
            "  open:\n    base_url: http://y\n")
    settings = load_settings(_write(tmp_path, text), env={})
    assert settings.server("open").base_url == "http://y"
    with pytest.raises(ConfigError, match="environment variable NOPE"):
        settings.server("s")


def test_missing_explicit_config_is_an_error_but_missing_default_is_not(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.yaml", env={})
    settings = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")})
    assert settings.servers == {} and settings.journal_dir == tmp_path / "data" / "trialfhir" / "journal"
