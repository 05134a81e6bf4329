"""CSV cells that a spreadsheet will not run as formulas (CSV injection, OWASP).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read
as a formula by Excel, LibreOffice and Google Sheets, and a formula can fetch URLs or
run commands when the file is opened. Values in an export come from FHIR servers and
trial packages we do not control (a status reason, a string result, a product name),
so every CSV we write passes its text cells through ``safe_cell``, which prefixes such
a cell with a single quote, as OWASP's "CSV Injection" page advises: the spreadsheet
then shows the text, and the quote is visible, never silent. Numbers (``-5``,
``+1.5e3``) are left alone: a number is never a formula, and a prefix would turn it
into text. The csv module quotes separators, quotes and line breaks.

``trialfhir export --raw-csv`` writes cells exactly as they are, for programs (not
spreadsheets) that read the files.
"""

from __future__ import annotations

import re

# What a spreadsheet takes as the start of a formula (OWASP "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: str) -> str:
    """``value``, prefixed with ``'`` when a spreadsheet would read it as a formula; numbers unchanged."""
    if value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
