"""The package readers' bounds (issue 13): a hostile header is refused quickly, with a short message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapter.errors import InputError
from adapter.package import map_package
from tests.unit.sources.trialpackage import csv, write_package


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (",".join(f"c{n}" for n in range(1_000_000)), "its header line is longer than 16384 characters"),
        (",".join(["a"] * 5000), "its header has 5000 columns; at most 100 are accepted"),
        ("x" * 20_000_000, "its header line is longer than 16384 characters"),
        ("subject_id,visit,test_code,value,collected_at," + ",".join(f"x{n}" for n in range(90)), "'x9' and 80 more"),
    ],
    ids=["million-columns", "many-columns", "one-huge-name", "unknown-listed-briefly"],
)
def test_a_hostile_header_is_refused_quickly(tmp_path: Path, header: str, message: str) -> None:
    # Before issue 13 a million-column header took hours (list.count per column).
    mapping = map_package(write_package(tmp_path, measurements=csv(header)))
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        next(iter(mapping))
    assert len(str(caught.value)) < 1000
