"""The site's linkage table (LINKS.csv): which hospital identifiers belong to which trial subject.

The file is PHI. It is read into memory and never written anywhere: not to the output
folder, the journal, a log or an error message. Errors name the file, the line and
the column, and show the subject id (pseudonymous) at most, never an identifier value.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapter.errors import InputError

COLUMNS = ["subject_id", "identifier_system", "identifier_value"]
MAX_ROWS = 200_000
MAX_CELL = 256
_SUBJECT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SYSTEM = re.compile(r"(https?|urn):\S+")


@dataclass(frozen=True)
class HospitalId:
    """One identifier of a patient on the hospital's server."""

    system: str
    value: str

    def token(self) -> str:
        """The FHIR token search form ``system|value``, with the characters FHIR search escapes escaped."""
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")
        return f"{self.system}|{escaped}"


def read_links(path: Path) -> Mapping[str, tuple[HospitalId, ...]]:
    """Every subject's hospital identifiers, in file order."""
    links: dict[str, list[HospitalId]] = {}
    try:
        stream = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InputError(f"cannot be read ({error.strerror})", source=str(path)) from error
    with stream:
        reader = csv.reader(stream)
        header = [name.strip() for name in next(reader, [])]
        if header != COLUMNS:
            raise InputError(f"the header must be exactly {','.join(COLUMNS)}", source=str(path), line=1)
        for line, row in enumerate(reader, start=2):
            if line > MAX_ROWS + 1:
                raise InputError(f"more than {MAX_ROWS} rows", source=str(path), line=line)
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(COLUMNS):
                raise InputError(f"has {len(row)} fields; the header has {len(COLUMNS)}", source=str(path), line=line)
            subject, system, value = (cell.strip() for cell in row)
            if not _SUBJECT.fullmatch(subject):
                raise InputError("not a subject id (1-64 of A-Z a-z 0-9 . _ -)", source=str(path), line=line,
                                 field="subject_id")
            if not _SYSTEM.fullmatch(system) or len(system) > MAX_CELL:
                raise InputError("not an identifier system URI", source=str(path), line=line,
                                 field="identifier_system")
            if not value or len(value) > MAX_CELL:
                raise InputError(f"empty or longer than {MAX_CELL} characters", source=str(path), line=line,
                                 field="identifier_value")
            known = links.setdefault(subject, [])
            if HospitalId(system, value) not in known:
                known.append(HospitalId(system, value))
    return {subject: tuple(ids) for subject, ids in links.items()}
