"""The trial entities as frozen dataclasses: the only types mappers take.

Study-level records (top) come from a ClinicalTrials.gov record, in either of its
formats (API v2 JSON or legacy XML); the readers in ``adapter/sources/`` fill
them in the API v2 vocabulary (``"RECRUITING"``, ``"PHASE2"``, ``"2020-06"``), so
the mappers never see which format a study came from.

Enumerated values are kept as the registry spelled them, even values this code
does not know yet: the reader warns about those, and the mappers keep them as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class StudyDate:
    """A registry date: ``yyyy``, ``yyyy-MM`` or ``yyyy-MM-dd`` as given, and ACTUAL, ESTIMATED or None."""

    date: str
    type: str | None = None


@dataclass(frozen=True)
class SecondaryId:
    """Another id of the study: a grant number, a EudraCT number, another registry's id."""

    id: str
    type: str | None = None
    domain: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Agency:
    """A sponsor, collaborator or the organization that registered the study."""

    name: str
    agency_class: str | None = None


@dataclass(frozen=True)
class Intervention:
    """What a study gives or does: ``type`` is an InterventionType (DRUG, BIOLOGICAL, ...)."""

    name: str
    type: str | None = None
    description: str | None = None
    other_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arm:
    """An arm group; ``interventions`` names the interventions it receives, in study order."""

    label: str
    type: str | None = None
    description: str | None = None
    interventions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Eligibility:
    """Who may take part. Ages are the registry's text (``"18 Years"``); None means no limit."""

    criteria: str | None = None
    sex: str | None = None
    gender_based: bool | None = None
    gender_description: str | None = None
    minimum_age: str | None = None
    maximum_age: str | None = None
    healthy_volunteers: bool | None = None
    std_ages: tuple[str, ...] = ()
    study_population: str | None = None
    sampling_method: str | None = None


@dataclass(frozen=True)
class Person:
    """A central contact or a site contact; ``role`` is a ContactRole."""

    name: str | None = None
    role: str | None = None
    phone: str | None = None
    phone_ext: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Official:
    """An overall official of the study; ``role`` is an OfficialRole (PRINCIPAL_INVESTIGATOR, ...)."""

    name: str
    affiliation: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Facility:
    """A study site; ``status`` is the site's recruitment status; lat/lon only from API v2."""

    name: str | None = None
    status: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None
    contacts: tuple[Person, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """A pre-specified outcome measure; ``kind`` is PRIMARY, SECONDARY or OTHER."""

    kind: str
    measure: str
    description: str | None = None
    time_frame: str | None = None


@dataclass(frozen=True)
class Citation:
    """A literature reference; ``type`` is a ReferenceType (BACKGROUND, RESULT, DERIVED)."""

    citation: str | None = None
    pmid: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Link:
    """A web link the registry lists for the study."""

    url: str
    label: str | None = None


@dataclass(frozen=True)
class MeshTerm:
    """A MeSH heading the registry derived; the legacy XML gives the term without its id."""

    term: str
    id: str | None = None


@dataclass(frozen=True)
class Study:
    """One ClinicalTrials.gov study, as much of it as the FHIR mapping uses.

    ``phases`` is a tuple because the registry sends a combined phase as two values
    (``("PHASE1", "PHASE2")``). ``source_format`` is ``"ctgov-v2-json"`` or
    ``"ctgov-legacy-xml"``.
    """

    nct_id: str
    source_format: str
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    nct_id_aliases: tuple[str, ...] = ()
    org_study_id: str | None = None
    secondary_ids: tuple[SecondaryId, ...] = ()
    organization: Agency | None = None
    overall_status: str | None = None
    last_known_status: str | None = None
    why_stopped: str | None = None
    status_verified_date: str | None = None
    start_date: StudyDate | None = None
    primary_completion_date: StudyDate | None = None
    completion_date: StudyDate | None = None
    first_posted_date: StudyDate | None = None
    last_update_posted_date: StudyDate | None = None
    lead_sponsor: Agency | None = None
    collaborators: tuple[Agency, ...] = ()
    brief_summary: str | None = None
    detailed_description: str | None = None
    conditions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    condition_meshes: tuple[MeshTerm, ...] = ()
    intervention_meshes: tuple[MeshTerm, ...] = ()
    study_type: str | None = None
    patient_registry: bool | None = None
    phases: tuple[str, ...] = ()
    allocation: str | None = None
    intervention_model: str | None = None
    primary_purpose: str | None = None
    masking: str | None = None
    who_masked: tuple[str, ...] = ()
    observational_model: str | None = None
    time_perspective: str | None = None
    enrollment_count: int | None = None
    enrollment_type: str | None = None
    arms: tuple[Arm, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    eligibility: Eligibility | None = None
    central_contacts: tuple[Person, ...] = ()
    officials: tuple[Official, ...] = ()
    facilities: tuple[Facility, ...] = ()
    references: tuple[Citation, ...] = ()
    links: tuple[Link, ...] = ()

    def arm_labels(self) -> tuple[str, ...]:
        """The arm labels in registry order (what ResearchSubject.assignedArm may hold)."""
        return tuple(arm.label for arm in self.arms)


# --- subject-level records ---
#
# One record per row of a trial package (subjects.csv, measurements.csv,
# administrations.csv), filled by ``adapter/sources/package.py``. Codes are already
# resolved through the mapping files and values converted to their target UCUM unit,
# so the mappers only arrange them; what the site wrote travels beside the standard
# value (``Reported``, the ``*_precision`` of a time). Numbers are Decimals with the
# digits the site gave (``2.40`` stays ``2.40``). Vocabularies that the package format defines
# (sex, enrollment status) stay as the package spells them; the mappers translate them.


@dataclass(frozen=True)
class Code:
    """One coding from a mapping file: a code in a code system, with its display."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True)
class Visit:
    """A scheduled visit of the study (package.yaml ``visits``); ``day`` is the planned study day."""

    code: str
    name: str
    day: int | None = None


@dataclass(frozen=True)
class Subject:
    """One subjects.csv row: a pseudonymous participant of the study at one site.

    ``sex`` is M, F, U or UNDIFFERENTIATED (CDISC SEX); ``status`` is the package's
    enrollment state (screening, screen-failed, enrolled, on-intervention, follow-up,
    completed, withdrawn). Dates are ``yyyy-MM-dd``.
    """

    nct_id: str
    site_id: str
    subject_id: str
    sex: str
    consent_date: str
    status: str
    birth_year: int | None = None
    assigned_arm: str | None = None
    actual_arm: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    withdrawal_reason: str | None = None


@dataclass(frozen=True)
class Reported:
    """A quantity as the site wrote it, before any conversion to the test's unit.

    ``value``, ``low`` and ``high`` keep the row's digits; ``unit`` is the unit as
    spelled in the row (``ng/mL FEU``), ``ucum`` its UCUM code (``ng/mL{FEU}``).
    """

    value: Decimal
    unit: str
    ucum: str
    low: Decimal | None = None
    high: Decimal | None = None


@dataclass(frozen=True)
class Measurement:
    """One measurements.csv row, resolved: the test's codes and a value of its value type.

    ``value`` is a Decimal (quantity, in ``unit``, a UCUM code), an int (integer), a
    Code (codeable) or a str (string). ``collected_at`` is a FHIR dateTime with its UTC
    offset, or a date; ``collected_precision`` is ``minute`` when the site gave no seconds
    (FHIR needs them, so ``collected_at`` has ``:00``). ``reported`` is a quantity's value,
    unit and range as the site wrote them. ``local_system`` is the sponsor's code system
    for ``test_code``.
    """

    nct_id: str
    site_id: str
    subject_id: str
    visit: Visit
    test_code: str
    local_system: str
    display: str
    category: str
    codes: tuple[Code, ...]
    value: Decimal | int | Code | str
    collected_at: str
    collected_precision: str | None = None
    unit: str | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    reported: Reported | None = None
    interpretation: Code | None = None
    # A censored quantity (<0.3, >1000): the FHIR Quantity.comparator (<, <=, >=, >) of ``value``.
    comparator: str | None = None
    # A row written by collect: the absolute, versioned URLs of the hospital resources it came from.
    derived_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class Administration:
    """One administrations.csv row, resolved: the product's codes, dose, route and period.

    ``status`` is a FHIR R4 medication-admin-status code; ``start`` and ``end`` are FHIR
    dateTimes, ``start_precision`` and ``end_precision`` ``minute`` when the site gave no
    seconds. ``dose`` keeps the row's digits; ``dose_unit`` is its UCUM code and
    ``dose_unit_text`` the unit as the row spelled it.
    """

    nct_id: str
    site_id: str
    subject_id: str
    product_code: str
    local_system: str
    product_display: str
    product_codes: tuple[Code, ...]
    status: str
    start: str
    end: str | None = None
    start_precision: str | None = None
    end_precision: str | None = None
    dose: Decimal | None = None
    dose_unit: str | None = None
    dose_unit_text: str | None = None
    route_display: str | None = None
    route_codes: tuple[Code, ...] = ()
    not_given_reason: str | None = None
    product_form: Code | None = None
    lot: str | None = None
