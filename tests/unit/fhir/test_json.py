"""The one FHIR JSON serialization: decimals with their digits, everything else as the standard library wrote it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.fhir.json import dumpb, dumps, loads
from adapter.fhir.ndjson import read_file
from adapter.package import write_mapped_package
from tests.conftest import REPO


def stdlib(document: object) -> str:
    """What the project wrote before decimals kept their digits (json.dumps, compact, UTF-8 as is)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def test_decimals_are_written_with_the_digits_they_have_byte_for_byte() -> None:
    quantity = {"value": Decimal("2.40"), "unit": "mg/L"}
    document = {"valueQuantity": quantity, "low": Decimal("0.500"), "zero": Decimal("0.0"), "whole": Decimal("38.0"),
                "negative": Decimal("-1.50"), "integer": 7, "tiny": Decimal("0.0000001"), "big": Decimal("1.2E+3")}
    assert dumps(document) == ('{"valueQuantity":{"value":2.40,"unit":"mg/L"},"low":0.500,"zero":0.0,"whole":38.0,'
                               '"negative":-1.50,"integer":7,"tiny":0.0000001,"big":1200}')
    assert dumpb(document) == dumps(document).encode("utf-8")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), object()])
def test_what_json_cannot_carry_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        dumps({"value": value})


def test_everything_else_is_written_as_the_standard_library_wrote_it() -> None:
    # Every character (escapes for control characters, quotes and backslashes; the rest as UTF-8), key order,
    # nesting and the other JSON types: a resource without decimals keeps the bytes (and journal hash) it had.
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    document = {"resourceType": "Patient", "text": text, "zeta": 1, "alpha": [True, False, None, -5, 2**40],
                "nested": {"b": [{"c": "é\n\t\"\\"}], "a": {}}, "empty": [], "float": 106.8273}
    assert dumps(document) == stdlib(document)


def test_reading_keeps_the_digits_so_writing_again_gives_the_same_text() -> None:
    line = '{"value":2.40,"low":0.500,"n":7,"text":"2.40","e":[1.0,0.10]}'
    document = loads(line)
    assert document["value"] == Decimal("2.40") and str(document["value"]) == "2.40"
    assert document["n"] == 7 and isinstance(document["n"], int)
    assert dumps(document) == line


@pytest.fixture(scope="module")
def seed_mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed")
    write_mapped_package(REPO / "fixtures" / "NCT04753476", out)
    return out


def test_a_mapped_folder_read_back_gives_the_bytes_it_was_read_from(seed_mapped: Path) -> None:
    """What push of an NDJSON folder (adapter.sync.inputs) hashes and sends is what the map wrote, every digit kept."""
    for path in sorted(seed_mapped.glob("*.ndjson")):
        if path.name == "rejects.ndjson":
            continue
        written = path.read_text(encoding="utf-8").splitlines()
        assert [dumps(resource) for resource in read_file(path)] == written, path.name
    observations = (seed_mapped / "Observation.ndjson").read_text(encoding="utf-8")
    assert '"value":24.00,' in observations, "2.400 mg/dL CRP is 24.00 mg/L, its trailing zeros on the wire"
