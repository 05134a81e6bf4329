"""The project's one JSON serialization of FHIR resources.

Compact, UTF-8, keys in the order the mapper wrote them. These bytes are what the
sync journal hashes, what NDJSON files hold and what bundles carry: a second copy
that drifted would make an unchanged resource look changed and break idempotence,
so every writer of FHIR JSON calls this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def dumps(document: Mapping[str, Any]) -> str:
    """``document`` in the project's stable form, as text (one NDJSON line, without the newline)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def dumpb(document: Mapping[str, Any]) -> bytes:
    """``document`` in the project's stable form, as UTF-8 bytes (for hashes and request bodies)."""
    return dumps(document).encode("utf-8")
