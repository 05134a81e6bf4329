"""Read a legacy ClinicalTrials.gov XML record (``<clinical_study>``) into a ``Study``.

The legacy format writes display texts (``Unknown status``, ``Phase 1/Phase 2``,
``August 2015``); this reader turns them into the API v2 vocabulary through the
``aliases`` of the code tables, so a study reads the same from either format.
A text no table knows is kept as given and logged as a warning.

Differences from API v2 that the reader cannot make up for (see
docs/ctgov-field-map.md): no coordinates for sites, MeSH terms without their ids,
no secondary id types, no reference types for ``<reference>`` (only
``<results_reference>`` says RESULT), and no date type on some dates.

Parsing uses defusedxml, which refuses entity expansion and external entities.
"""

from __future__ import annotations

import logging
import re
import textwrap
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from adapter.errors import InputError
from adapter.fhir.constants import is_nct_id
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
from adapter.sources.ctgov_common import XML_FORMAT, clean_text, clean_texts, standard_ages
from adapter.sources.ctgov_tables import CtgovTables

log = logging.getLogger(__name__)

ROOT = "clinical_study"
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june",
                "july", "august", "september", "october", "november", "december")  # fmt: skip
_MONTHS = {name: f"{number:02d}" for number, name in enumerate(_MONTH_NAMES, start=1)}
_DATE = re.compile(r"^(?P<month>[A-Za-z]+)(?: (?P<day>\d{1,2}),)? (?P<year>\d{4})$")
_YEAR = re.compile(r"^\d{4}$")
# "Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)"
_MASKING = re.compile(r"^(?P<masking>[^(]+?)\s*\((?P<who>[^)]*)\)$")


def parse_clinical_study(data: bytes, source: str, tables: CtgovTables) -> Study:
    """The study in one legacy XML document."""
    try:
        root = defusedxml.ElementTree.fromstring(data)
    except ParseError as error:
        line, column = error.position
        raise InputError(
            f"malformed XML: {str(error).split(': line')[0]} (column {column + 1})", source=source, line=line
        ) from error
    except defusedxml.DefusedXmlException as error:
        raise InputError(f"refused unsafe XML: {error}", source=source) from error
    if root.tag != ROOT:
        raise InputError(f"root element is <{root.tag}>, expected <{ROOT}>", source=source)
    return _XmlReader(source, tables).study(root)


class _XmlReader:
    def __init__(self, source: str, tables: CtgovTables) -> None:
        self.source = source
        self.tables = tables

    def enum(self, text: str | None, table: str, path: str) -> str | None:
        """The API v2 code for a legacy display text; the text itself (with a warning) if unknown."""
        if text is None:
            return None
        row = self.tables[table].from_alias(text)
        if row is None:
            log.warning("%s: %s: unknown %s value %r, kept as text", self.source, path, self.tables[table].enum, text)
            return text
        return row.code

    def study(self, root: Element) -> Study:
        nct_id = clean_text(root.findtext("id_info/nct_id"))
        if nct_id is None:
            raise InputError("missing NCT id", source=self.source, field=f"{ROOT}/id_info/nct_id")
        if not is_nct_id(nct_id):
            raise InputError(f"{nct_id!r} is not an NCT number", source=self.source, field=f"{ROOT}/id_info/nct_id")
        design = root.find("study_design_info")
        masking, who_masked = self.masking(clean_text(design.findtext("masking")) if design is not None else None)
        study_type, registry = self.study_type(clean_text(root.findtext("study_type")))
        eligibility = root.find("eligibility")
        return Study(
            nct_id=nct_id,
            source_format=XML_FORMAT,
            brief_title=clean_text(root.findtext("brief_title")),
            official_title=clean_text(root.findtext("official_title")),
            acronym=clean_text(root.findtext("acronym")),
            nct_id_aliases=clean_texts([e.text or "" for e in root.findall("id_info/nct_alias")]),
            org_study_id=clean_text(root.findtext("id_info/org_study_id")),
            secondary_ids=tuple(
                SecondaryId(text) for text in clean_texts([e.text or "" for e in root.findall("id_info/secondary_id")])
            ),
            organization=Agency(source) if (source := clean_text(root.findtext("source"))) else None,
            overall_status=self.enum(
                clean_text(root.findtext("overall_status")), "ctgov-status", f"{ROOT}/overall_status"
            ),
            last_known_status=self.enum(
                clean_text(root.findtext("last_known_status")), "ctgov-status", f"{ROOT}/last_known_status"
            ),
            why_stopped=clean_text(root.findtext("why_stopped")),
            status_verified_date=self.date_text(root, "verification_date"),
            start_date=self.date(root, "start_date"),
            primary_completion_date=self.date(root, "primary_completion_date"),
            completion_date=self.date(root, "completion_date"),
            first_posted_date=self.date(root, "study_first_posted"),
            last_update_posted_date=self.date(root, "last_update_posted"),
            lead_sponsor=self.agency(root.find("sponsors/lead_sponsor"), "sponsors/lead_sponsor"),
            collaborators=tuple(
                agency
                for n, e in enumerate(root.findall("sponsors/collaborator"), start=1)
                if (agency := self.agency(e, f"sponsors/collaborator[{n}]"))
            ),
            brief_summary=_block(root.find("brief_summary/textblock")),
            detailed_description=_block(root.find("detailed_description/textblock")),
            conditions=clean_texts([e.text or "" for e in root.findall("condition")]),
            keywords=clean_texts([e.text or "" for e in root.findall("keyword")]),
            condition_meshes=_meshes(root, "condition_browse"),
            intervention_meshes=_meshes(root, "intervention_browse"),
            study_type=study_type,
            patient_registry=registry,
            phases=self.phases(clean_text(root.findtext("phase"))),
            allocation=self.design(design, "allocation", "ctgov-allocation"),
            intervention_model=self.design(design, "intervention_model", "ctgov-intervention-model"),
            primary_purpose=self.design(design, "primary_purpose", "ctgov-primary-purpose"),
            masking=masking,
            who_masked=who_masked,
            observational_model=self.design(design, "observational_model", "ctgov-observational-model"),
            time_perspective=self.design(design, "time_perspective", "ctgov-time-perspective"),
            **self.enrollment(root.find("enrollment")),
            **self.arms_and_interventions(root),
            outcomes=self.outcomes(root),
            eligibility=self.eligibility(eligibility) if eligibility is not None else None,
            central_contacts=tuple(
                self.person(e) for tag in ("overall_contact", "overall_contact_backup") for e in root.findall(tag)
            ),
            officials=tuple(self.official(e, n) for n, e in enumerate(root.findall("overall_official"), start=1)),
            facilities=tuple(self.facility(e, n) for n, e in enumerate(root.findall("location"), start=1)),
            references=tuple(
                Citation(citation=clean_text(e.findtext("citation")), pmid=clean_text(e.findtext("PMID")), type=kind)
                for tag, kind in (("reference", None), ("results_reference", "RESULT"))
                for e in root.findall(tag)
            ),
            links=tuple(
                Link(url=url, label=clean_text(e.findtext("description")))
                for e in root.findall("link")
                if (url := clean_text(e.findtext("url")))
            ),
        )

    def date_text(self, parent: Element, tag: str) -> str | None:
        """A legacy date ('August 2015', 'July 31, 2015') as an ISO partial date ('2015-08')."""
        text = clean_text(parent.findtext(tag))
        if text is None:
            return None
        if _YEAR.match(text):
            return text
        match = _DATE.match(text)
        month = _MONTHS.get(match["month"].casefold()) if match else None
        if match is None or month is None:
            raise InputError(
                f"{text!r} is not a date like 'August 2015' or 'July 31, 2015'",
                source=self.source,
                field=f"{ROOT}/{tag}",
            )
        day = f"-{int(match['day']):02d}" if match["day"] else ""
        return f"{match['year']}-{month}{day}"

    def date(self, root: Element, tag: str) -> StudyDate | None:
        value = self.date_text(root, tag)
        if value is None:
            return None
        element = root.find(tag)
        kind = element.get("type") if element is not None else None
        return StudyDate(value, self.enum(kind, "ctgov-date-type", f"{ROOT}/{tag}/@type"))

    def agency(self, element: Element | None, path: str) -> Agency | None:
        if element is None or (name := clean_text(element.findtext("agency"))) is None:
            return None
        return Agency(
            name,
            self.enum(
                clean_text(element.findtext("agency_class")), "ctgov-agency-class", f"{ROOT}/{path}/agency_class"
            ),
        )

    def study_type(self, text: str | None) -> tuple[str | None, bool | None]:
        if text is None or text == "N/A":
            return None, None
        if text.endswith("[Patient Registry]"):
            return self.enum(
                text.removesuffix("[Patient Registry]").strip(), "ctgov-study-type", f"{ROOT}/study_type"
            ), True
        return self.enum(text, "ctgov-study-type", f"{ROOT}/study_type"), None

    def phases(self, text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        row = self.tables["ctgov-phase"].from_alias(text)
        if row is None:
            log.warning("%s: %s/phase: unknown Phase value %r, kept as text", self.source, ROOT, text)
            return (text,)
        return row.codes

    def design(self, design: Element | None, tag: str, table: str) -> str | None:
        if design is None:
            return None
        return self.enum(clean_text(design.findtext(tag)), table, f"{ROOT}/study_design_info/{tag}")

    def masking(self, text: str | None) -> tuple[str | None, tuple[str, ...]]:
        path = f"{ROOT}/study_design_info/masking"
        if text is None:
            return None, ()
        if self.tables["ctgov-masking"].from_alias(text) is not None:
            return self.enum(text, "ctgov-masking", path), ()
        match = _MASKING.match(text)
        if match is None:
            return self.enum(text, "ctgov-masking", path), ()
        who = tuple(
            self.enum(part.strip(), "ctgov-who-masked", path) or part.strip()
            for part in match["who"].split(",")
            if part.strip()
        )
        return self.enum(match["masking"], "ctgov-masking", path), who

    def enrollment(self, element: Element | None) -> dict[str, Any]:
        if element is None or clean_text(element.text) is None:
            return {"enrollment_count": None, "enrollment_type": None}
        text = clean_text(element.text) or ""
        if not text.isdigit():
            raise InputError(f"{text!r} is not a whole number", source=self.source, field=f"{ROOT}/enrollment")
        return {
            "enrollment_count": int(text),
            "enrollment_type": self.enum(element.get("type"), "ctgov-date-type", f"{ROOT}/enrollment/@type"),
        }

    def arms_and_interventions(self, root: Element) -> dict[str, Any]:
        interventions = []
        labels_of: dict[str, list[str]] = {}
        for n, e in enumerate(root.findall("intervention"), start=1):
            name = clean_text(e.findtext("intervention_name"))
            if name is None:
                raise InputError("missing intervention_name", source=self.source, field=f"{ROOT}/intervention[{n}]")
            kind = self.enum(
                clean_text(e.findtext("intervention_type")),
                "ctgov-intervention-type",
                f"{ROOT}/intervention[{n}]/intervention_type",
            )
            interventions.append(
                Intervention(
                    name=name,
                    type=kind,
                    description=_block(e.find("description")),
                    other_names=clean_texts([o.text or "" for o in e.findall("other_name")]),
                )
            )
            labels_of[name] = [label for o in e.findall("arm_group_label") if (label := clean_text(o.text))]
        arms = []
        for n, e in enumerate(root.findall("arm_group"), start=1):
            label = clean_text(e.findtext("arm_group_label"))
            if label is None:
                raise InputError("missing arm_group_label", source=self.source, field=f"{ROOT}/arm_group[{n}]")
            arms.append(
                Arm(
                    label=label,
                    type=self.enum(
                        clean_text(e.findtext("arm_group_type")),
                        "ctgov-arm-type",
                        f"{ROOT}/arm_group[{n}]/arm_group_type",
                    ),
                    description=_block(e.find("description")),
                    interventions=tuple(iv.name for iv in interventions if label in labels_of[iv.name]),
                )
            )
        return {"arms": tuple(arms), "interventions": tuple(interventions)}

    def outcomes(self, root: Element) -> tuple[Outcome, ...]:
        result = []
        for tag, kind in (
            ("primary_outcome", "PRIMARY"),
            ("secondary_outcome", "SECONDARY"),
            ("other_outcome", "OTHER"),
        ):
            for e in root.findall(tag):
                if measure := clean_text(e.findtext("measure")):
                    result.append(
                        Outcome(kind, measure, _block(e.find("description")), clean_text(e.findtext("time_frame")))
                    )
        return tuple(result)

    def eligibility(self, e: Element) -> Eligibility:
        path = f"{ROOT}/eligibility"
        healthy = clean_text(e.findtext("healthy_volunteers"))
        gender_based = clean_text(e.findtext("gender_based"))
        minimum, maximum = _age(e.findtext("minimum_age")), _age(e.findtext("maximum_age"))
        return Eligibility(
            criteria=_block(e.find("criteria/textblock")),
            sex=self.enum(clean_text(e.findtext("gender")), "ctgov-sex", f"{path}/gender"),
            gender_based=None if gender_based is None else gender_based == "Yes",
            gender_description=_block(e.find("gender_description/textblock"))
            or clean_text(e.findtext("gender_description")),
            minimum_age=minimum,
            maximum_age=maximum,
            std_ages=standard_ages(minimum, maximum),  # the legacy XML has no age groups; API v2 computes them so
            healthy_volunteers=None if healthy is None else healthy in ("Accepts Healthy Volunteers", "Yes"),
            study_population=_block(e.find("study_pop/textblock")),
            sampling_method=self.enum(
                clean_text(e.findtext("sampling_method")), "ctgov-sampling-method", f"{path}/sampling_method"
            ),
        )

    def person(self, e: Element) -> Person:
        return Person(
            name=_person_name(e),
            role="CONTACT",
            phone=clean_text(e.findtext("phone")),
            phone_ext=clean_text(e.findtext("phone_ext")),
            email=clean_text(e.findtext("email")),
        )

    def official(self, e: Element, n: int) -> Official:
        name = _person_name(e)
        if name is None:
            raise InputError("missing name", source=self.source, field=f"{ROOT}/overall_official[{n}]")
        return Official(
            name=name,
            affiliation=clean_text(e.findtext("affiliation")),
            role=self.enum(clean_text(e.findtext("role")), "ctgov-official-role", f"{ROOT}/overall_official[{n}]/role"),
        )

    def facility(self, e: Element, n: int) -> Facility:
        address = e.find("facility/address")

        def part(tag: str) -> str | None:
            return clean_text(address.findtext(tag)) if address is not None else None

        return Facility(
            name=clean_text(e.findtext("facility/name")),
            status=self.enum(
                clean_text(e.findtext("status")), "ctgov-recruitment-status", f"{ROOT}/location[{n}]/status"
            ),
            city=part("city"),
            state=part("state"),
            zip=part("zip"),
            country=part("country"),
            contacts=tuple(self.person(c) for tag in ("contact", "contact_backup") for c in e.findall(tag)),
        )


def _block(element: Element | None) -> str | None:
    """A legacy text block without its XML indentation and carriage returns; None if blank."""
    if element is None or element.text is None:
        return None
    text = element.text.replace("\r\n", "\n").replace("\r", "\n")
    return clean_text(textwrap.dedent(text.strip("\n")))


def _age(text: str | None) -> str | None:
    """A legacy age limit; 'N/A' means no limit, as an absent value does in API v2."""
    value = clean_text(text)
    return None if value in (None, "N/A") else value


def _person_name(e: Element) -> str | None:
    """'First Middle Last, Degrees' from the legacy name parts (old records put the whole name in last_name)."""
    name = " ".join(p for tag in ("first_name", "middle_name", "last_name") if (p := clean_text(e.findtext(tag))))
    degrees = clean_text(e.findtext("degrees"))
    if degrees and name:
        name = f"{name}, {degrees}"
    return name or None


def _meshes(root: Element, tag: str) -> tuple[MeshTerm, ...]:
    return tuple(MeshTerm(term) for term in clean_texts([e.text or "" for e in root.findall(f"{tag}/mesh_term")]))
