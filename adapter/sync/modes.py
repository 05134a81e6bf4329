"""How ``pull`` reads a server, as names: light enough for the service's request schema to import."""

from __future__ import annotations

# auto: Bulk Data $export where the server offers it, search paging elsewhere.
PULL_MODES = ("auto", "search", "bulk")
