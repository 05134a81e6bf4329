"""Read ClinicalTrials.gov records into ``Study`` records.

Three shapes are accepted, told apart by their content, not their file name:

- an API v2 study object (``{"protocolSection": ..., "derivedSection": ...}``);
- an API v2 search page (``{"studies": [...], "nextPageToken": ...}``);
- a legacy XML ``<clinical_study>`` (see ``ctgov_xml``).

JSON is checked against ``schemas/ctgov-v2-study.schema.json`` first: a missing
NCT id or a value of the wrong type is an ``InputError`` that names the file and
the path in the document. Fields the registry adds later pass through unread. An
enum value that no code table knows (a status the registry adds tomorrow) is
kept as given and logged as a warning naming the file and path.

Public functions: ``read_study(path)`` for a file holding one study,
``read_studies(path)`` for any of the shapes, ``parse_studies(data, source)`` for
bytes already in memory. ``path`` may be ``"-"`` for standard input.

Why it is long: ``_V2Reader`` reads the whole API v2 study structure, one method
per module of the record; split across files, the field map would be harder to
check against the registry's data structure page.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from adapter.errors import InputError
from adapter.records import (
    Agency,
    Arm,
    Citation,
    Eligibility,
    Facility,
    Intervention,
    Link,
    MeshTerm,
    Official,
    Outcome,
    Person,
    SecondaryId,
    Study,
    StudyDate,
)
from adapter.sources.ctgov_common import V2_FORMAT, XML_FORMAT, clean_text, clean_texts, detect_format
from adapter.sources.ctgov_tables import CtgovTables, default_tables
from adapter.sources.ctgov_xml import parse_clinical_study
from adapter.sources.loader import Validator, json_path, schema_problem, unique_keys

# The format names and detect_format live in ctgov_common (ctgov_xml needs them too);
# callers may keep importing them from here.
__all__ = ["V2_FORMAT", "XML_FORMAT", "detect_format", "parse_studies", "read_studies", "read_study"]

log = logging.getLogger(__name__)


def read_study(path: str | Path, *, tables: CtgovTables | None = None) -> Study:
    """The one study in the file at ``path`` (API v2 JSON, a one-study page, or legacy XML)."""
    source = _source_name(path)
    studies = parse_studies(_read_bytes(path), source, tables=tables)
    if len(studies) != 1:
        raise InputError(f"holds {len(studies)} studies, expected one (use read_studies)", source=source)
    return studies[0]


def read_studies(path: str | Path, *, tables: CtgovTables | None = None) -> list[Study]:
    """Every study in the file at ``path``, in document order."""
    return parse_studies(_read_bytes(path), _source_name(path), tables=tables)


def parse_studies(data: bytes, source: str, *, tables: CtgovTables | None = None) -> list[Study]:
    """Every study in ``data``; ``source`` names it in errors and warnings."""
    tables = tables or default_tables()
    if detect_format(data, source) == XML_FORMAT:
        return [parse_clinical_study(data, source, tables)]
    document = _load_json(data, source)
    if isinstance(document, dict) and "studies" in document:
        studies = document["studies"]
        if not isinstance(studies, list):
            raise InputError(f"expected an array, got {type(studies).__name__}", source=source, field="studies")
        return [_V2Reader(source, tables, f"studies[{n}]").study(item) for n, item in enumerate(studies)]
    return [_V2Reader(source, tables, "").study(document)]


@functools.cache
def study_schema_validator() -> Any:
    """The checker for one API v2 study object (the packaged JSON Schema, read by the loader's ``Validator``)."""
    text = resources.files("adapter.sources").joinpath("schemas/ctgov-v2-study.schema.json").read_text("utf-8")
    return Validator(json.loads(text))


def _source_name(path: str | Path) -> str:
    return "<stdin>" if str(path) == "-" else str(path)


def _read_bytes(path: str | Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror or error}", source=str(path)) from error


def _load_json(data: bytes, source: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"), object_pairs_hook=unique_keys)
    except UnicodeDecodeError as error:
        raise InputError(f"is not UTF-8 text ({error.reason} at byte {error.start})", source=source) from error
    except json.JSONDecodeError as error:
        raise InputError(
            f"malformed JSON: {error.msg} (column {error.colno})", source=source, line=error.lineno
        ) from error
    except ValueError as error:  # a duplicate key (unique_keys)
        raise InputError(f"malformed JSON: {error}", source=source) from error
    except RecursionError as error:  # [[[[... a few hundred thousand deep: no record nests like that
        raise InputError("malformed JSON: nested too deeply", source=source) from error


class _V2Reader:
    """Builds one ``Study`` from one API v2 study object; ``prefix`` locates it in a page."""

    def __init__(self, source: str, tables: CtgovTables, prefix: str) -> None:
        self.source = source
        self.tables = tables
        self.prefix = prefix

    def path(self, *parts: str | int) -> str:
        where = json_path(parts)
        if not self.prefix:
            return where
        return self.prefix + (where if where.startswith("[") else "." + where)

    def study(self, document: Any) -> Study:
        if not isinstance(document, dict):
            where = self.prefix or "(document)"
            raise InputError(f"expected a study object, got {type(document).__name__}", source=self.source, field=where)
        problem = schema_problem(document, study_schema_validator())
        if problem is not None:
            parts, message = problem
            raise InputError(message, source=self.source, field=self.path(*parts))
        protocol = document["protocolSection"]
        ident = protocol["identificationModule"]
        status = protocol.get("statusModule", {})
        sponsors = protocol.get("sponsorCollaboratorsModule", {})
        description = protocol.get("descriptionModule", {})
        conditions = protocol.get("conditionsModule", {})
        design = protocol.get("designModule", {})
        design_info = design.get("designInfo", {})
        masking = design_info.get("maskingInfo", {})
        enrollment = design.get("enrollmentInfo", {})
        derived = document.get("derivedSection", {})
        s, d, di = (
            "protocolSection.statusModule",
            "protocolSection.designModule",
            "protocolSection.designModule.designInfo",
        )
        phases = tuple(self.enum(p, "ctgov-phase", d, "phases", n) or p for n, p in enumerate(design.get("phases", [])))
        if phases and all(self.tables["ctgov-phase"].knows(p) for p in phases):
            self.combination(phases, "ctgov-phase", d, "phases")
        return Study(
            nct_id=ident["nctId"],
            source_format=V2_FORMAT,
            brief_title=clean_text(ident.get("briefTitle")),
            official_title=clean_text(ident.get("officialTitle")),
            acronym=clean_text(ident.get("acronym")),
            nct_id_aliases=tuple(ident.get("nctIdAliases", [])),
            org_study_id=clean_text(ident.get("orgStudyIdInfo", {}).get("id")),
            secondary_ids=tuple(self.secondary_id(n, item) for n, item in enumerate(ident.get("secondaryIdInfos", []))),
            organization=self.agency(
                ident.get("organization"), "fullName", "protocolSection.identificationModule.organization"
            ),
            overall_status=self.enum(status.get("overallStatus"), "ctgov-status", s, "overallStatus"),
            last_known_status=self.enum(status.get("lastKnownStatus"), "ctgov-status", s, "lastKnownStatus"),
            why_stopped=clean_text(status.get("whyStopped")),
            status_verified_date=status.get("statusVerifiedDate"),
            start_date=self.date(status.get("startDateStruct"), s, "startDateStruct"),
            primary_completion_date=self.date(
                status.get("primaryCompletionDateStruct"), s, "primaryCompletionDateStruct"
            ),
            completion_date=self.date(status.get("completionDateStruct"), s, "completionDateStruct"),
            first_posted_date=self.date(status.get("studyFirstPostDateStruct"), s, "studyFirstPostDateStruct"),
            last_update_posted_date=self.date(
                status.get("lastUpdatePostDateStruct"), s, "lastUpdatePostDateStruct"
            ),
            lead_sponsor=self.agency(
                sponsors.get("leadSponsor"), "name", "protocolSection.sponsorCollaboratorsModule.leadSponsor"
            ),
            collaborators=tuple(
                agency
                for n, item in enumerate(sponsors.get("collaborators", []))
                if (
                    agency := self.agency(
                        item, "name", f"protocolSection.sponsorCollaboratorsModule.collaborators[{n}]"
                    )
                )
            ),
            brief_summary=clean_text(description.get("briefSummary")),
            detailed_description=clean_text(description.get("detailedDescription")),
            conditions=clean_texts(conditions.get("conditions", [])),
            keywords=clean_texts(conditions.get("keywords", [])),
            condition_meshes=_meshes(derived.get("conditionBrowseModule", {})),
            intervention_meshes=_meshes(derived.get("interventionBrowseModule", {})),
            study_type=self.enum(design.get("studyType"), "ctgov-study-type", d, "studyType"),
            patient_registry=design.get("patientRegistry"),
            phases=phases,
            allocation=self.enum(design_info.get("allocation"), "ctgov-allocation", di, "allocation"),
            intervention_model=self.enum(
                design_info.get("interventionModel"), "ctgov-intervention-model", di, "interventionModel"
            ),
            primary_purpose=self.enum(design_info.get("primaryPurpose"), "ctgov-primary-purpose", di, "primaryPurpose"),
            masking=self.enum(masking.get("masking"), "ctgov-masking", di, "maskingInfo", "masking"),
            who_masked=tuple(
                self.enum(w, "ctgov-who-masked", di, "maskingInfo", "whoMasked", n) or w
                for n, w in enumerate(masking.get("whoMasked", []))
            ),
            observational_model=self.enum(
                design_info.get("observationalModel"), "ctgov-observational-model", di, "observationalModel"
            ),
            time_perspective=self.enum(
                design_info.get("timePerspective"), "ctgov-time-perspective", di, "timePerspective"
            ),
            enrollment_count=enrollment.get("count"),
            enrollment_type=self.enum(enrollment.get("type"), "ctgov-date-type", d, "enrollmentInfo", "type"),
            **self.arms_and_interventions(protocol.get("armsInterventionsModule", {})),
            outcomes=self.outcomes(protocol.get("outcomesModule", {})),
            eligibility=self.eligibility(protocol.get("eligibilityModule")),
            **self.contacts_and_locations(protocol.get("contactsLocationsModule", {})),
            **self.references(protocol.get("referencesModule", {})),
        )

    def enum(self, value: str | None, table: str, *path: str | int) -> str | None:
        """``value`` as given; warns if the code table does not know it."""
        if value is None:
            return None
        if not self.tables[table].knows(value):
            log.warning(
                "%s: %s: unknown %s value %r, kept as text",
                self.source,
                self.path(*path),
                self.tables[table].enum,
                value,
            )
        return value

    def combination(self, codes: tuple[str, ...], table: str, *path: str | int) -> None:
        """Warns if known values form a combination the table does not map (e.g. PHASE1 with PHASE3)."""
        if self.tables[table].row(*codes) is None:
            log.warning("%s: %s: unknown combination %s, kept as text", self.source, self.path(*path), ",".join(codes))

    def date(self, struct: dict[str, Any] | None, *path: str) -> StudyDate | None:
        if not struct:
            return None
        return StudyDate(struct["date"], self.enum(struct.get("type"), "ctgov-date-type", *path, "type"))

    def agency(self, item: dict[str, Any] | None, name_key: str, path: str) -> Agency | None:
        name = clean_text((item or {}).get(name_key))
        if item is None or name is None:
            return None
        return Agency(name, self.enum(item.get("class"), "ctgov-agency-class", path, "class"))

    def secondary_id(self, n: int, item: dict[str, Any]) -> SecondaryId:
        path = ("protocolSection.identificationModule.secondaryIdInfos", n, "type")
        return SecondaryId(
            id=item["id"].strip(),
            type=self.enum(item.get("type"), "ctgov-secondary-id-type", *path),
            domain=clean_text(item.get("domain")),
            link=clean_text(item.get("link")),
        )

    def arms_and_interventions(self, module: dict[str, Any]) -> dict[str, Any]:
        path = "protocolSection.armsInterventionsModule"
        interventions = []
        for n, item in enumerate(module.get("interventions", [])):
            interventions.append(
                Intervention(
                    name=item["name"].strip(),
                    type=self.enum(item.get("type"), "ctgov-intervention-type", path, "interventions", n, "type"),
                    description=clean_text(item.get("description")),
                    other_names=clean_texts(item.get("otherNames", [])),
                )
            )
        raw_interventions = module.get("interventions", [])
        types = self.tables["ctgov-intervention-type"]
        # interventionNames are display strings "<Type display>: <name>"; find each one's intervention.
        by_display = {}
        for iv in interventions:
            row = types.row(iv.type) if iv.type else None
            by_display[f"{row.display if row else iv.type}: {iv.name}"] = iv.name
        arms = []
        for n, item in enumerate(module.get("armGroups", [])):
            label = item["label"]
            names = [
                iv.name
                for iv, raw in zip(interventions, raw_interventions, strict=True)
                if label in raw.get("armGroupLabels", [])
            ]
            for m, shown in enumerate(item.get("interventionNames", [])):
                name = by_display.get(shown.strip())
                if name is None:
                    log.warning(
                        "%s: %s: %r matches no intervention, kept as given",
                        self.source,
                        self.path(path, "armGroups", n, "interventionNames", m),
                        shown,
                    )
                    name = shown.strip()
                if name not in names:
                    names.append(name)
            order = {iv.name: k for k, iv in enumerate(interventions)}
            names.sort(key=lambda name: order.get(name, len(order)))
            arms.append(
                Arm(
                    label=label.strip(),
                    type=self.enum(item.get("type"), "ctgov-arm-type", path, "armGroups", n, "type"),
                    description=clean_text(item.get("description")),
                    interventions=tuple(names),
                )
            )
        return {"arms": tuple(arms), "interventions": tuple(interventions)}

    def outcomes(self, module: dict[str, Any]) -> tuple[Outcome, ...]:
        result = []
        for kind, key in (
            ("PRIMARY", "primaryOutcomes"),
            ("SECONDARY", "secondaryOutcomes"),
            ("OTHER", "otherOutcomes"),
        ):
            for item in module.get(key, []):
                result.append(
                    Outcome(
                        kind,
                        item["measure"].strip(),
                        clean_text(item.get("description")),
                        clean_text(item.get("timeFrame")),
                    )
                )
        return tuple(result)

    def eligibility(self, module: dict[str, Any] | None) -> Eligibility | None:
        if not module:
            return None
        path = "protocolSection.eligibilityModule"
        return Eligibility(
            criteria=clean_text(module.get("eligibilityCriteria")),
            sex=self.enum(module.get("sex"), "ctgov-sex", path, "sex"),
            gender_based=module.get("genderBased"),
            gender_description=clean_text(module.get("genderDescription")),
            minimum_age=clean_text(module.get("minimumAge")),
            maximum_age=clean_text(module.get("maximumAge")),
            healthy_volunteers=module.get("healthyVolunteers"),
            std_ages=tuple(
                self.enum(a, "ctgov-standard-age", path, "stdAges", n) or a
                for n, a in enumerate(module.get("stdAges", []))
            ),
            study_population=clean_text(module.get("studyPopulation")),
            sampling_method=self.enum(module.get("samplingMethod"), "ctgov-sampling-method", path, "samplingMethod"),
        )

    def person(self, item: dict[str, Any], *path: str | int) -> Person:
        return Person(
            name=clean_text(item.get("name")),
            role=self.enum(item.get("role"), "ctgov-contact-role", *path, "role"),
            phone=clean_text(item.get("phone")),
            phone_ext=clean_text(item.get("phoneExt")),
            email=clean_text(item.get("email")),
        )

    def contacts_and_locations(self, module: dict[str, Any]) -> dict[str, Any]:
        path = "protocolSection.contactsLocationsModule"
        facilities = []
        for n, item in enumerate(module.get("locations", [])):
            geo = item.get("geoPoint") or {}
            facilities.append(
                Facility(
                    name=clean_text(item.get("facility")),
                    status=self.enum(item.get("status"), "ctgov-recruitment-status", path, "locations", n, "status"),
                    city=clean_text(item.get("city")),
                    state=clean_text(item.get("state")),
                    zip=clean_text(item.get("zip")),
                    country=clean_text(item.get("country")),
                    lat=geo.get("lat"),
                    lon=geo.get("lon"),
                    contacts=tuple(
                        self.person(c, path, "locations", n, "contacts", m)
                        for m, c in enumerate(item.get("contacts", []))
                    ),
                )
            )
        return {
            "central_contacts": tuple(
                self.person(c, path, "centralContacts", n) for n, c in enumerate(module.get("centralContacts", []))
            ),
            "officials": tuple(
                Official(
                    name=o["name"].strip(),
                    affiliation=clean_text(o.get("affiliation")),
                    role=self.enum(o.get("role"), "ctgov-official-role", path, "overallOfficials", n, "role"),
                )
                for n, o in enumerate(module.get("overallOfficials", []))
            ),
            "facilities": tuple(facilities),
        }

    def references(self, module: dict[str, Any]) -> dict[str, Any]:
        path = "protocolSection.referencesModule.references"
        return {
            "references": tuple(
                Citation(
                    citation=clean_text(r.get("citation")),
                    pmid=clean_text(r.get("pmid")),
                    type=self.enum(r.get("type"), "ctgov-reference-type", path, n, "type"),
                )
                for n, r in enumerate(module.get("references", []))
            ),
            "links": tuple(
                Link(url=link["url"].strip(), label=clean_text(link.get("label")))
                for link in module.get("seeAlsoLinks", [])
            ),
        }


def _meshes(module: dict[str, Any]) -> tuple[MeshTerm, ...]:
    return tuple(
        MeshTerm(term=term, id=clean_text(mesh.get("id")))
        for mesh in module.get("meshes", [])
        if (term := clean_text(mesh.get("term")))
    )
