"""Convert a measured value between UCUM units, in Decimal, with the ``ucumvert`` library.

``ucumvert`` parses UCUM codes into ``pint`` units, so dimensionally valid
conversions (mg/dL to mg/L, kPa to mm[Hg], 10*3/uL to 10*9/L, [degF] to Cel) come
from a UCUM implementation, never from a hand-written table. What this module adds:

- **Decimal arithmetic.** pint works in floats: the conversion factor it gives is
  read back as a Decimal of 15 significant digits (what a float holds reliably) and
  the value is multiplied in Decimal. The result is rounded to the significant digits
  the value was reported with (200 mg/dL has three, so 5.17 mmol/L, not 5.172603...):
  a conversion must not invent precision. Offset scales (Cel, [degF]) keep the
  reported number of decimal places instead, since significant digits of a
  temperature depend on its zero point.
- **Mass and amount of substance.** mg/dL to mmol/L depends on the analyte: only a
  caller that knows the test passes its ``molar_mass`` (g/mol). Without one the pair
  is refused; a unit-pair factor for it would silently be wrong for every other
  analyte (glucose's factor turns cholesterol 200 mg/dL into 11.1 mmol/L).
- **Annotations.** UCUM annotations such as ``{FEU}`` carry meaning pint ignores
  (D-dimer FEU is not D-dimer DDU): units whose annotations differ are refused.
- **Identity without the library.** Some UCUM codes are not quantities ``ucumvert``
  reads (``[pH]``, ``{INR}``); converting a unit to itself needs no parsing.

Every pair that cannot be converted raises ``ConversionError``.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal
from functools import cache
from typing import Any

from adapter.errors import ConversionError

FACTOR_DIGITS = 15  # significant digits of a double; the float factor is read back with these
_ANNOTATION = re.compile(r"\{[^{}]*\}")


def convert(value: Decimal, from_unit: str, to_unit: str, *, molar_mass: Decimal | None = None) -> Decimal:
    """``value`` in UCUM unit ``from_unit`` expressed in ``to_unit``, rounded to the digits it was reported with.

    ``molar_mass`` (g/mol) is the analyte's, for a conversion between mass and amount of
    substance (mg/dL to mmol/L); other conversions ignore it.
    """
    if from_unit == to_unit:
        return value
    factor, offset = conversion(from_unit, to_unit, molar_mass=molar_mass)
    if offset is not None:
        exponent = value.as_tuple().exponent
        places = Decimal(1).scaleb(min(exponent, 0) if isinstance(exponent, int) else 0)
        return (value * factor + offset).quantize(places)
    if not value:
        # A zero has no significant digits to keep: keep its resolution instead (0.00 mg/dL is 0.0 mg/L).
        exponent = value.as_tuple().exponent
        return Decimal(0).scaleb(min((exponent if isinstance(exponent, int) else 0) + factor.adjusted(), 0))
    digits = max(len(value.as_tuple().digits), 1)
    result = Context(prec=digits).multiply(value, factor)
    # 5 g/L at one significant digit is 5E+3 mg/L: written as a plain number, FHIR readers expect that.
    exponent = result.as_tuple().exponent
    return result.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else result


def conversion(from_unit: str, to_unit: str, *, molar_mass: Decimal | None = None) -> tuple[Decimal, Decimal | None]:
    """The factor (and, for offset scales such as Cel, the offset) from ``from_unit`` to ``to_unit``.

    Raises ConversionError for a pair that cannot be converted; callers may use it to check a
    rule when a table is loaded, before any value is converted.
    """
    if from_unit == to_unit:
        return Decimal(1), None
    if _annotations(from_unit) != _annotations(to_unit):
        raise ConversionError("the units' annotations differ, so they measure different things",
                              from_unit=from_unit, to_unit=to_unit)
    import pint

    source, target = _quantity(from_unit), _quantity(to_unit)
    registry = source._REGISTRY  # the quantities' own registry: pint refuses to mix two
    if not (source._is_multiplicative and target._is_multiplicative):
        try:
            zero = registry.Quantity(0.0, source.units).to(target.units).magnitude
            one = registry.Quantity(1.0, source.units).to(target.units).magnitude
        except pint.errors.PintError as error:
            raise ConversionError(f"not convertible ({error})", from_unit=from_unit, to_unit=to_unit) from error
        return _decimal(one - zero), _decimal(zero)
    try:
        return _decimal((source / target).to("dimensionless").magnitude), None
    except pint.errors.DimensionalityError:
        pass
    per_mole = _quantity("g/mol")
    for through, scaled in ((source / per_mole, "divide"), (source * per_mole, "multiply")):
        try:
            factor = _decimal((through / target).to("dimensionless").magnitude)
        except pint.errors.DimensionalityError:
            continue
        if molar_mass is None:
            raise ConversionError("a conversion between mass and amount of substance needs the analyte's "
                                  "molar mass; give the test a molar_mass", from_unit=from_unit, to_unit=to_unit)
        return (factor / molar_mass if scaled == "divide" else factor * molar_mass), None
    raise ConversionError(f"{source.dimensionality} cannot be expressed in {target.dimensionality}",
                          from_unit=from_unit, to_unit=to_unit)


def is_ucum(unit: str) -> bool:
    """True when ``unit`` is a UCUM code the converter reads as a quantity."""
    try:
        _quantity(unit)
    except ConversionError:
        return False
    return True


def _annotations(unit: str) -> list[str]:
    return sorted(_ANNOTATION.findall(unit))


def _decimal(number: float) -> Decimal:
    return Decimal(f"{number:.{FACTOR_DIGITS}g}")


@cache
def _registry() -> Any:
    # Imported and built on first use: building the registry takes about half a second.
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


@cache
def _quantity(unit: str) -> Any:
    import pint
    from lark.exceptions import LarkError

    try:
        quantity = _registry().from_ucum(unit)
        quantity.dimensionality  # noqa: B018 - a bare annotation such as {INR} parses to a token, not a quantity
    except (LarkError, AttributeError, pint.errors.PintError) as error:
        raise ConversionError("is not a UCUM unit the converter reads as a quantity",
                              from_unit=unit, to_unit="") from error
    return quantity
