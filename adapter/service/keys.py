"""API keys: random tokens given to callers, kept in the config only as SHA-256 hashes.

A key is 32 random bytes (URL-safe base64), so a plain SHA-256 is enough to
keep it from being recovered from the config; a slow password hash would only
slow every request. Every presented key is compared with every stored hash in
constant time, so the time taken says nothing about which hash was close.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "sha256:"


def new_key() -> str:
    """A fresh random API key."""
    return secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The form a key is stored in: ``sha256:<hex digest>``."""
    return PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_name(presented: str | None, stored: Mapping[str, str]) -> str | None:
    """The name of the stored key that ``presented`` matches, or None."""
    if not presented:
        return None
    digest = hash_key(presented)
    found = None
    for name, expected in stored.items():
        # No early exit: every stored hash is compared.
        if hmac.compare_digest(digest.encode(), expected.encode()):
            found = name
    return found


def presented_key(authorization: str | None) -> str | None:
    """The key in an Authorization header: ``Bearer <key>``, or ``Basic`` with the key as password (browsers)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None
