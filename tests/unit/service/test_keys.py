"""API keys: stored hashed, compared against every stored hash, read from Bearer or Basic."""

from __future__ import annotations

import base64

from adapter.service.keys import hash_key, key_name, new_key, presented_key


def test_a_new_key_is_random_and_only_its_hash_is_stored() -> None:
    first, second = new_key(), new_key()
    assert first != second and len(first) >= 40
    stored = hash_key(first)
    assert stored.startswith("sha256:") and first not in stored


def test_key_name_finds_the_matching_key_only() -> None:
    stored = {"etl": hash_key("alpha"), "dashboard": hash_key("beta")}
    assert key_name("beta", stored) == "dashboard"
    assert key_name("gamma", stored) is None
    assert key_name("", stored) is None
    assert key_name(None, stored) is None
    assert key_name(hash_key("alpha"), stored) is None  # the hash itself is not a key


def test_presented_key_from_bearer_and_basic() -> None:
    assert presented_key("Bearer abc") == "abc"
    assert presented_key("bearer  abc ") == "abc"
    basic = base64.b64encode(b"whoever:the-key").decode()
    assert presented_key(f"Basic {basic}") == "the-key"
    assert presented_key("Basic !!!not-base64") is None
    assert presented_key("Token abc") is None
    assert presented_key("Bearer ") is None
    assert presented_key(None) is None
