"""Medication from a trial package administration: the product given, one per product and lot.

Natural key: (NCT id, source product code), plus the lot when the row gives one, so
every dose of one batch points at the same Medication and a re-run writes the same
id. ``code`` carries the products table's codings (ATC for standard drugs, the
project code system for an investigational product without one), then the sponsor's
product code in the package's local code system, with the product's display as text.
``form`` is the table's dose form when it has one; ``batch.lotNumber`` the row's lot.
MedicationAdministration refers to it with ``medicationReference``.
"""

from __future__ import annotations

from adapter.fhir.datatypes import JSON, codeable_concept, coding, compact
from adapter.fhir.ids import resource_id
from adapter.records import Administration, Code


def medication_id(administration: Administration) -> str:
    """The id of the Medication an administration gives (the same for every dose of a product and lot)."""
    a = administration
    return resource_id("Medication", a.nct_id, a.product_code, *((a.lot,) if a.lot else ()))


def medication(administration: Administration) -> JSON:
    """The Medication resource of the product (and lot) an administration gives."""
    a = administration
    return compact(
        {
            "resourceType": "Medication",
            "id": medication_id(a),
            "code": codeable_concept(
                *(_coding(c) for c in a.product_codes), coding(a.local_system, a.product_code), text=a.product_display
            ),
            "form": codeable_concept(_coding(a.product_form)) if a.product_form else None,
            "batch": {"lotNumber": a.lot} if a.lot else None,
        }
    )


def _coding(code: Code) -> JSON:
    return coding(code.system, code.code, code.display)
