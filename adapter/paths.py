"""Where the adapter finds its default mapping files, from any working folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from adapter.errors import ConfigError


def mappings_dir() -> Path:
    """The folder of mapping files.

    In order: ``ADAPTER_MAPPINGS_DIR``; the repository's ``mappings/`` next to the
    package (a source checkout or an editable install); the copy a wheel installs
    under ``<prefix>/share/trialfhir/mappings`` (setup.cfg ``data_files``).
    """
    candidates = []
    if env := os.environ.get("ADAPTER_MAPPINGS_DIR"):
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parent.parent / "mappings")
    candidates.append(Path(sys.prefix) / "share" / "trialfhir" / "mappings")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        "cannot find the mapping files; looked in "
        + ", ".join(str(c) for c in candidates)
        + " (set ADAPTER_MAPPINGS_DIR to the folder that holds them)"
    )
