"""The project's one JSON serialization of FHIR resources, and the one way to read FHIR JSON back.

Compact, UTF-8, keys in the order the mapper wrote them. These bytes are what the
sync journal hashes, what NDJSON files hold and what bundles carry: a second copy
that drifted would make an unchanged resource look changed and break idempotence,
so every writer of FHIR JSON calls this module.

Decimals keep their digits. FHIR says the precision of a decimal is significant
(``2.40`` is not ``2.4``), so a value is a ``decimal.Decimal`` from the reader to the
wire and is written as its own digits, never through a float. The standard ``json``
module cannot do that: its C encoder writes every float (a subclass too) with
``float.__repr__`` and has no way to emit raw number text. ``orjson`` can
(``orjson.Fragment``), and writes everything else byte for byte as ``json.dumps(...,
ensure_ascii=False, separators=(",", ":"))`` did (tests/unit/fhir/test_json.py holds
it to that), about five times faster. Reading back, ``loads`` makes every JSON
number with a fraction or an exponent a Decimal, so a resource read and written
again gives the very bytes it was read from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson


def _number(value: Any) -> orjson.Fragment:
    """A Decimal as raw JSON number text; anything else (NaN and infinities too) is a TypeError."""
    if isinstance(value, Decimal) and value.is_finite():
        # Positional notation, every digit kept: Decimal("0.0000001") is written 0.0000001, not 1E-7.
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{value!r} is not a JSON value")


def dumpb(document: Mapping[str, Any]) -> bytes:
    """``document`` in the project's stable form, as UTF-8 bytes (for hashes and request bodies)."""
    return orjson.dumps(document, default=_number)


def dumps(document: Mapping[str, Any]) -> str:
    """``document`` in the project's stable form, as text (one NDJSON line, without the newline)."""
    return dumpb(document).decode("utf-8")


def loads(text: str | bytes) -> Any:
    """FHIR JSON as Python values, numbers with a fraction or an exponent as Decimal (their digits kept).

    Raises ``json.JSONDecodeError`` (a ValueError) for text that is not JSON.
    """
    return json.loads(text, parse_float=Decimal)
