"""What both ClinicalTrials.gov readers share: the format names, telling them apart, text cleaning.

``ctgov`` (API v2 JSON) dispatches to ``ctgov_xml`` (legacy XML); both import from
here, so neither imports the other back.
"""

from __future__ import annotations

from adapter.errors import InputError

V2_FORMAT = "ctgov-v2-json"
XML_FORMAT = "ctgov-legacy-xml"


def detect_format(data: bytes, source: str) -> str:
    """``V2_FORMAT`` or ``XML_FORMAT`` from the first character that is not white space."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        return V2_FORMAT
    if head == b"<":
        return XML_FORMAT
    if not head:
        raise InputError("is empty", source=source)
    raise InputError("is neither ClinicalTrials.gov JSON nor XML (it starts with neither '{' nor '<')", source=source)


def clean_text(value: str | None) -> str | None:
    """The string without outer white space; None for a missing or blank one (FHIR forbids empty strings)."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def clean_texts(values: list[str]) -> tuple[str, ...]:
    """The non-blank strings of ``values``, each without outer white space."""
    return tuple(text for value in values if (text := clean_text(value)))
