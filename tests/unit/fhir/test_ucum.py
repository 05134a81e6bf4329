"""UCUM conversion: the library's factors in Decimal, the reported digits kept, per-analyte molar masses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.errors import ConversionError, MappingError
from adapter.fhir.ucum import conversion, convert, is_ucum

CHOLESTEROL = Decimal("386.65")  # g/mol, C27H46O
GLUCOSE = Decimal("180.156")  # g/mol, C6H12O6


def test_cholesterol_mass_to_molar_uses_its_own_molar_mass() -> None:
    # 200 mg/dL = 2000 mg/L = 2 g/L; 2 / 386.65 mol/L = 5.1726 mmol/L, three digits as reported.
    assert convert(Decimal("200"), "mg/dL", "mmol/L", molar_mass=CHOLESTEROL) == Decimal("5.17")


def test_glucose_mass_to_molar_and_back_uses_its_own() -> None:
    # 90 mg/dL = 0.9 g/L; 0.9 / 180.156 mol/L = 4.9957 mmol/L -> two digits: 5.0
    assert str(convert(Decimal("90"), "mg/dL", "mmol/L", molar_mass=GLUCOSE)) == "5.0"
    # 5.55 mmol/L x 180.156 g/mol = 999.87 mg/L = 99.987 mg/dL -> three digits: 100
    assert convert(Decimal("5.55"), "mmol/L", "mg/dL", molar_mass=GLUCOSE) == Decimal("100")


def test_one_analyte_factor_is_not_another_ones() -> None:
    glucose_factor, _ = conversion("mg/dL", "mmol/L", molar_mass=GLUCOSE)
    cholesterol_factor, _ = conversion("mg/dL", "mmol/L", molar_mass=CHOLESTEROL)
    assert glucose_factor == Decimal(10) / GLUCOSE
    assert cholesterol_factor == Decimal(10) / CHOLESTEROL


def test_mass_to_molar_without_a_molar_mass_is_refused() -> None:
    with pytest.raises(ConversionError, match="molar mass") as raised:
        convert(Decimal("200"), "mg/dL", "mmol/L")
    assert isinstance(raised.value, MappingError)
    assert (raised.value.from_unit, raised.value.to_unit) == ("mg/dL", "mmol/L")


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        ("1.5", "mg/dL", "mg/L", "15"),  # d = 1e-1
        ("13.3", "kPa", "mm[Hg]", "99.8"),  # 13300 Pa / 133.322 Pa
        ("5.2", "10*3/uL", "10*9/L", "5.2"),  # 1e3 / 1e-6 L = 1e9 / L
        ("180", "[lb_av]", "kg", "81.6"),  # 1 lb = 0.45359237 kg exactly
        ("98.6", "[degF]", "Cel", "37.0"),  # offset scale: decimal places kept
        ("500", "ng/mL{FEU}", "ug/mL{FEU}", "0.500"),  # same annotation on both sides
        ("5", "g/L", "mg/L", "5000"),  # no exponent form (5E+3) for a whole number
    ],
)
def test_dimensionally_valid_conversions_keep_the_reported_digits(
    value: str, source: str, target: str, expected: str
) -> None:
    assert str(convert(Decimal(value), source, target)) == expected


def test_a_unit_to_itself_needs_no_parsing() -> None:
    # [pH] and {INR} are UCUM codes the library does not read as quantities.
    assert not is_ucum("[pH]")
    assert convert(Decimal("7.40"), "[pH]", "[pH]") == Decimal("7.40")
    assert convert(Decimal("1.1"), "{INR}", "{INR}") == Decimal("1.1")


@pytest.mark.parametrize(
    ("source", "target", "reason"),
    [
        ("ng/mL{FEU}", "ng/mL", "annotations differ"),
        ("[pH]", "mmol/L", "not a UCUM unit"),
        ("mg", "m", "cannot be expressed"),
        ("mg/dL", "mmol/L", "molar mass"),
    ],
)
def test_pairs_that_cannot_be_converted_are_refused(source: str, target: str, reason: str) -> None:
    with pytest.raises(ConversionError, match=reason) as raised:
        convert(Decimal("4321"), source, target)
    assert "4321" not in str(raised.value)  # values are patient data: the message names the units only


@pytest.mark.parametrize(("value", "from_unit", "to_unit", "written"), [
    ("15.610", "mg/dL", "mg/L", "156.10"),  # five significant digits reported, five kept (trailing zero too)
    ("0.000", "mg/dL", "mg/L", "0.00"),  # a zero keeps its resolution: 0.001 mg/dL is 0.01 mg/L
    ("0.0", "kPa", "mm[Hg]", "0.0"),  # not 0.0000000: no digits from the factor
    ("0", "/uL", "10*3/uL", "0.000"),
])
def test_a_converted_value_has_the_reported_digits_and_no_float_noise(
    value: str, from_unit: str, to_unit: str, written: str
) -> None:
    assert format(convert(Decimal(value), from_unit, to_unit), "f") == written
