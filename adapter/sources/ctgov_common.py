"""What both ClinicalTrials.gov readers share: the format names, telling them apart, text cleaning.

``ctgov`` (API v2 JSON) dispatches to ``ctgov_xml`` (legacy XML); both import from
here, so neither imports the other back.
"""

from __future__ import annotations

import re
from fractions import Fraction

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


_AGE = re.compile(r"^(\d+) (Year|Month|Week|Day|Hour|Minute)s?$")
_YEARS = {"Year": Fraction(1), "Month": Fraction(1, 12), "Week": Fraction(700, 36525), "Day": Fraction(100, 36525),
          "Hour": Fraction(100, 36525 * 24), "Minute": Fraction(100, 36525 * 1440)}  # fmt: skip
# The registry's age groups: Child (birth-17), Adult (18-64), Older Adult (65+), as [from, to) in years.
_STANDARD_AGES = (("CHILD", 0, 18), ("ADULT", 18, 65), ("OLDER_ADULT", 65, None))


def standard_ages(minimum: str | None, maximum: str | None) -> tuple[str, ...]:
    """The registry's stdAges for these age limits ("18 Years"), for the legacy XML, which lacks them.

    The API v2 computes them the same way (ClinicalTrials.gov glossary, "Age group"): every
    group the range [minimum, maximum] reaches. An age that does not parse gives none.
    """
    low, high = _years(minimum), _years(maximum)
    if (minimum and low is None) or (maximum and high is None):
        return ()
    low = low or Fraction(0)
    return tuple(
        code
        for code, start, end in _STANDARD_AGES
        if (end is None or low < end) and (high is None or high >= start)
    )


def _years(age: str | None) -> Fraction | None:
    match = _AGE.match(age.strip()) if age else None
    return int(match[1]) * _YEARS[match[2]] if match else None


def clean_texts(values: list[str]) -> tuple[str, ...]:
    """The non-blank strings of ``values``, each without outer white space."""
    return tuple(text for value in values if (text := clean_text(value)))
