"""Token renewal and SMART Backend Services assertions (the token endpoint and server stubbed with ``responses``)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.auth import CLIENT_ASSERTION_TYPE, BasicAuth, BearerAuth, build_auth
from adapter.client import FhirClient
from adapter.errors import AuthFailed, Rejected, ServerError
from adapter.settings import AuthSettings, Secret

BASE = "https://fhir.test/r4"
TOKEN_URL = "https://auth.test/token"
PATIENT = {"resourceType": "Patient", "id": "p1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _form(call: responses.Call) -> dict[str, str]:
    body = call.request.body
    text = body.decode() if isinstance(body, bytes) else str(body)
    return dict(urllib.parse.parse_qsl(text))


def _token_calls() -> list[responses.Call]:
    return [call for call in responses.calls if call.request.url == TOKEN_URL]


def _client_credentials(clock: Clock) -> FhirClient:
    settings = AuthSettings(
        type="client-credentials", token_url=TOKEN_URL, client_id="trialfhir", client_secret=Secret("s3cret")
    )
    return FhirClient(BASE, auth=build_auth(settings, clock=clock), sleep=lambda _: None)


@responses.activate
def test_401_renews_the_token_once_and_retries() -> None:
    responses.post(TOKEN_URL, json={"access_token": "first", "expires_in": 3600})
    responses.post(TOKEN_URL, json={"access_token": "second", "expires_in": 3600})
    responses.get(f"{BASE}/Patient/p1", status=401)
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = _client_credentials(Clock())
    assert client.read("Patient", "p1") == PATIENT
    reads = [c for c in responses.calls if c.request.url == f"{BASE}/Patient/p1"]
    assert [c.request.headers["Authorization"] for c in reads] == ["Bearer first", "Bearer second"]
    assert len(_token_calls()) == 2
    assert _form(_token_calls()[0]) == {
        "grant_type": "client_credentials",
        "client_id": "trialfhir",
        "client_secret": "s3cret",
    }


@responses.activate
def test_a_second_401_is_an_error_not_a_loop() -> None:
    responses.post(TOKEN_URL, json={"access_token": "t", "expires_in": 3600})
    responses.get(f"{BASE}/Patient/p1", status=401)
    with pytest.raises(ServerError) as raised:
        _client_credentials(Clock()).read("Patient", "p1")
    assert raised.value.status == 401
    assert len(_token_calls()) == 2 and len(responses.calls) == 4


@responses.activate
def test_an_expiring_token_is_renewed_before_it_expires() -> None:
    clock = Clock()
    responses.post(TOKEN_URL, json={"access_token": "first", "expires_in": 300})
    responses.post(TOKEN_URL, json={"access_token": "second", "expires_in": 300})
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = _client_credentials(clock)
    client.read("Patient", "p1")
    clock.now += 200  # still valid, and more than a minute left: reused
    client.read("Patient", "p1")
    clock.now += 45  # 55 s left: inside the renewal margin, renewed before the request
    client.read("Patient", "p1")
    reads = [c.request.headers["Authorization"] for c in responses.calls if c.request.url.startswith(BASE)]
    assert reads == ["Bearer first", "Bearer first", "Bearer second"]
    assert len(_token_calls()) == 2


@responses.activate
def test_a_refused_token_request_is_a_server_error_without_the_secret() -> None:
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_client"})
    with pytest.raises(ServerError) as raised:
        _client_credentials(Clock()).read("Patient", "p1")
    assert raised.value.status == 400 and "invalid_client" in str(raised.value)
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(("status", "kind"), [(400, Rejected), (401, AuthFailed), (503, ServerError)])
@responses.activate
def test_a_token_endpoint_error_has_the_type_of_its_status(status: int, kind: type[ServerError]) -> None:
    # The same classes as the FHIR server's answers, so the CLI and service handle both alike.
    responses.post(TOKEN_URL, status=status, json={"error": "invalid_client"})
    with pytest.raises(ServerError) as raised:
        _client_credentials(Clock()).read("Patient", "p1")
    assert type(raised.value) is kind and raised.value.url == TOKEN_URL


def _rsa_pem() -> tuple[bytes, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pem(key), key.public_key()


def _ec_pem() -> tuple[bytes, Any]:
    key = ec.generate_private_key(ec.SECP384R1())
    return _pem(key), key.public_key()


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


@pytest.mark.parametrize(("algorithm", "make_key"), [("RS384", _rsa_pem), ("ES384", _ec_pem)])
@responses.activate
def test_smart_backend_services_signs_a_client_assertion(
    algorithm: str, make_key: Callable[[], tuple[bytes, Any]], tmp_path: Path
) -> None:
    pem, public_key = make_key()
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem)
    clock = Clock()
    settings = AuthSettings(
        type="smart-backend",
        token_url=TOKEN_URL,
        client_id="trialfhir-backend",
        private_key_file=key_file,
        key_id="key-1",
        algorithm=algorithm,
        scope="system/*.write",
    )
    responses.post(TOKEN_URL, json={"access_token": "jwt-granted", "expires_in": 300, "token_type": "bearer"})
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    FhirClient(BASE, auth=build_auth(settings, clock=clock)).read("Patient", "p1")

    form = _form(_token_calls()[0])
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "system/*.write"
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header == {"alg": algorithm, "kid": "key-1", "typ": "JWT"}
    claims = jwt.decode(
        form["client_assertion"],
        public_key,
        algorithms=[algorithm],
        audience=TOKEN_URL,
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == "trialfhir-backend"
    assert claims["exp"] - clock.now == 300  # at most five minutes, per SMART Backend Services
    assert len(claims["jti"]) >= 16
    assert responses.calls[1].request.headers["Authorization"] == "Bearer jwt-granted"


@responses.activate
def test_each_assertion_is_unique(tmp_path: Path) -> None:
    pem, _ = _rsa_pem()
    (tmp_path / "key.pem").write_bytes(pem)
    settings = AuthSettings(
        type="smart-backend", token_url=TOKEN_URL, client_id="c", private_key_file=tmp_path / "key.pem", key_id="k"
    )
    responses.post(TOKEN_URL, json={"access_token": "a", "expires_in": 300})
    responses.get(f"{BASE}/Patient/p1", status=401)
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    FhirClient(BASE, auth=build_auth(settings)).read("Patient", "p1")
    assertions = [_form(call)["client_assertion"] for call in _token_calls()]
    assert len(assertions) == 2 and assertions[0] != assertions[1]


def test_secrets_do_not_show_in_reprs() -> None:
    basic = BasicAuth("alice", Secret("pa55word"))
    assert "pa55word" not in repr(vars(basic)) and "pa55word" not in repr(Secret("pa55word"))
    bearer = BearerAuth(Secret("b3arer"))
    assert "b3arer" not in repr(vars(bearer))


def test_bearer_from_a_rotated_file_is_reread_after_401(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old\n")
    auth = BearerAuth(Secret("old"), token_file)
    token_file.write_text("new\n")
    with requests.Session() as session:
        assert auth.renew(session)
        assert auth.headers(session) == {"Authorization": "Bearer new"}
        assert not auth.renew(session)  # the file did not change again: a retry would not help
