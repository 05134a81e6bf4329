"""ResearchStudy (FHIR R4) from a ClinicalTrials.gov ``Study``.

Follows HL7's clinicaltrials-gov mapping on the R4 ResearchStudy definition; the
choices it leaves open are made here and listed in docs/ctgov-field-map.md:

- ``identifier``: the NCT number (official, system http://clinicaltrials.gov, HL7's registration), old
  NCT numbers (use old), the sponsor's protocol id (assigner = the registering
  organization) and secondary ids, typed with the registry's id types.
- ``status``: from mappings/ctgov-status.yaml. UNKNOWN is the registry's state for a
  study whose completion date passed without its status being verified: with a
  completion date it maps the UNKNOWN row (closed-to-accrual-and-intervention, so an R4
  reader does not see a study past its end as ``active``); without one it maps
  lastKnownStatus. The registry's values always travel in the extensions
  ctgov-overall-status and ctgov-last-known-status. A value the table does not know, or
  no status at all, maps like WITHHELD (in-review: the state is not known).
- ``phase``: the whole phases array is one row of mappings/ctgov-phase.yaml
  (["PHASE1","PHASE2"] is phase-1-phase-2).
- ``category``: study type first, then the design facets HL7's map lists under
  category (allocation, intervention model, masking and who is masked, observational
  model, time perspective), each in the registry's own code system.
- ``focus``: one concept per intervention, text "<Type>: <name>" as the registry
  writes it, plus the MeSH coding whose term is the intervention's name.
- ``condition``: each condition's text, with the standard codings mappings/conditions.yaml
  lists for it (SNOMED CT, ICD-10) and the MeSH coding whose term matches it; MeSH
  conditions the registry derived that match no condition text follow as coded entries
  of their own.
- ``arm``: name, type (the R5 research-study-arm-type code, since R4 has no
  arm-type codes, plus the registry's own coding) and description; the
  interventions an arm receives are the extension arm-intervention, one per
  intervention, holding the same concept as ``focus``.
- ``description``: brief summary, then detailed description under headings.
- ``period``: start date to completion date, precision as given; every date with its
  ACTUAL/ESTIMATED type (and the primary completion, first posted and last update
  posted dates, which R4 lacks) in the extension ctgov-study-date.
- ``objective``: one per outcome measure (primary, secondary, other = exploratory);
  its description and time frame in extensions.
- ``principalInvestigator``: the first overall official whose role is principal
  investigator, else the first official; every official with role and affiliation
  in the extension study-official.
- Extensions also keep the official title, the acronym and the collaborators.
"""

from __future__ import annotations

from adapter.fhir.constants import NCT_SYSTEM
from adapter.fhir.datatypes import JSON, codeable_concept, coding, compact, extension, identifier, period, reference
from adapter.fhir.ids import resource_id
from adapter.mappers.group import group_id, has_enrollment
from adapter.mappers.location import site_ids
from adapter.mappers.organization import organization_id
from adapter.mappers.practitioner import practitioner_id
from adapter.records import MeshTerm, Official, Study, StudyDate
from adapter.sources.ctgov_tables import (
    MESH_SYSTEM,
    CodeTable,
    CtgovTables,
    complex_extension,
    project_extension,
)

# Which of the study's dates fill ctgov-study-date, in this order.
_DATES = (
    ("start", "start_date"),
    ("primary-completion", "primary_completion_date"),
    ("completion", "completion_date"),
    ("first-posted", "first_posted_date"),
    ("last-update-posted", "last_update_posted_date"),
)


def research_study_id(study: Study) -> str:
    """The deterministic id of the study's ResearchStudy."""
    return resource_id("ResearchStudy", study.nct_id)


def research_study(study: Study, tables: CtgovTables) -> JSON:
    """The ResearchStudy resource for ``study``."""
    pi = principal_investigator(study)
    return compact(
        {
            "resourceType": "ResearchStudy",
            "id": research_study_id(study),
            "extension": _extensions(study, tables),
            "identifier": _identifiers(study, tables),
            "title": study.brief_title,
            "status": study_status(study, tables),
            "primaryPurposeType": _primary_purpose(study, tables),
            "phase": _phase(study, tables),
            "category": _categories(study, tables),
            "focus": [_intervention_concept(study, name, tables) for name in (iv.name for iv in study.interventions)],
            "condition": _conditions(study, tables),
            "contact": [_contact_detail(c.name, c.phone, c.phone_ext, c.email) for c in study.central_contacts],
            "relatedArtifact": _related_artifacts(study, tables),
            "keyword": [codeable_concept(text=k) for k in study.keywords],
            "description": _description(study),
            "enrollment": [reference("Group", group_id(study))] if has_enrollment(study) else None,
            "period": period(_date(study.start_date), _date(study.completion_date)),
            "sponsor": reference("Organization", organization_id(study.lead_sponsor)) if study.lead_sponsor else None,
            "principalInvestigator": reference("Practitioner", practitioner_id(study.nct_id, pi)) if pi else None,
            "site": [reference("Location", site) for site in site_ids(study)],
            "reasonStopped": codeable_concept(text=study.why_stopped) if study.why_stopped else None,
            "arm": [_arm(study, n, tables) for n in range(len(study.arms))],
            "objective": [_objective(o.kind, o.measure, o.description, o.time_frame, tables) for o in study.outcomes],
        }
    )


def study_status(study: Study, tables: CtgovTables) -> str:
    """The R4 ResearchStudy.status code: overallStatus; lastKnownStatus for an UNKNOWN study with no end date."""
    table = tables["ctgov-status"]
    code = study.overall_status
    if code == "UNKNOWN" and study.completion_date is None:
        code = study.last_known_status  # its period is not known to have ended
    row = table.row(code) if code else None
    if row is None or row.target is None:
        row = table.row("WITHHELD")  # the registry's "state not known" value
    assert row is not None and row.target is not None  # the status table is checked to have WITHHELD
    return row.target


def principal_investigator(study: Study) -> Official | None:
    """The official for ``principalInvestigator``: the first principal investigator, else the first official."""
    for official in study.officials:
        if official.role == "PRINCIPAL_INVESTIGATOR":
            return official
    return study.officials[0] if study.officials else None


def _extensions(study: Study, tables: CtgovTables) -> list[JSON]:
    status = tables["ctgov-status"]
    result = [
        project_extension("study-official-title", valueString=study.official_title) if study.official_title else None,
        project_extension("study-acronym", valueString=study.acronym) if study.acronym else None,
        project_extension("ctgov-overall-status", valueCodeableConcept=status.concept(study.overall_status))
        if study.overall_status
        else None,
        project_extension("ctgov-last-known-status", valueCodeableConcept=status.concept(study.last_known_status))
        if study.last_known_status
        else None,
    ]
    for kind, attribute in _DATES:
        date: StudyDate | None = getattr(study, attribute)
        if date is not None:
            result.append(
                complex_extension(
                    "ctgov-study-date",
                    extension("kind", valueCode=kind),
                    extension("date", valueDate=date.date),
                    extension("type", valueCodeableConcept=tables["ctgov-date-type"].concept(date.type))
                    if date.type
                    else None,
                )
            )
    for agency in study.collaborators:
        result.append(
            project_extension("study-collaborator", valueReference=reference("Organization", organization_id(agency)))
        )
    roles = tables["ctgov-official-role"]
    for official in study.officials:
        result.append(
            complex_extension(
                "study-official",
                extension(
                    "practitioner", valueReference=reference("Practitioner", practitioner_id(study.nct_id, official))
                ),
                extension("role", valueCodeableConcept=roles.concept(official.role)) if official.role else None,
                extension("affiliation", valueString=official.affiliation) if official.affiliation else None,
            )
        )
    return [e for e in result if e is not None]


def _identifiers(study: Study, tables: CtgovTables) -> list[JSON]:
    result = [identifier(NCT_SYSTEM, study.nct_id, use="official")]
    result += [identifier(NCT_SYSTEM, alias, use="old") for alias in study.nct_id_aliases]
    if study.org_study_id:
        assigner = study.organization or study.lead_sponsor
        result.append(
            compact(
                {
                    "use": "secondary",
                    "type": codeable_concept(text="Organization's Unique Protocol ID"),
                    "value": study.org_study_id,
                    "assigner": {"display": assigner.name} if assigner else None,
                }
            )
        )
    types = tables["ctgov-secondary-id-type"]
    for secondary in study.secondary_ids:
        result.append(
            compact(
                {
                    "use": "secondary",
                    "type": types.concept(secondary.type) if secondary.type else codeable_concept(text="Secondary ID"),
                    "value": secondary.id,
                    "assigner": {"display": secondary.domain} if secondary.domain else None,
                }
            )
        )
    return result


def _primary_purpose(study: Study, tables: CtgovTables) -> JSON | None:
    if not study.primary_purpose:
        return None
    return tables["ctgov-primary-purpose"].target_concept(study.primary_purpose)


def _phase(study: Study, tables: CtgovTables) -> JSON | None:
    if not study.phases:
        return None
    table = tables["ctgov-phase"]
    row = table.row(*study.phases)
    standard = table.target_coding(row) if row else None
    if row is None or standard is None:
        return codeable_concept(text=", ".join(study.phases))
    return codeable_concept(standard, text=row.display)


def _labelled(table: CodeTable, code: str, label: str) -> JSON:
    row = table.row(code)
    return table.concept(code, text=f"{label}: {row.display if row else code}")


def _categories(study: Study, tables: CtgovTables) -> list[JSON]:
    result = []
    if study.study_type:
        types = tables["ctgov-study-type"]
        row = types.row(study.study_type)
        text = row.display if row else study.study_type
        result.append(
            types.concept(study.study_type, text=f"{text} [Patient Registry]" if study.patient_registry else text)
        )
    facets: list[tuple[str, str | None, str]] = [
        ("ctgov-allocation", study.allocation, "Allocation"),
        ("ctgov-intervention-model", study.intervention_model, "Intervention Model"),
        ("ctgov-masking", study.masking, "Masking"),
        *(("ctgov-who-masked", who, "Masked") for who in study.who_masked),
        ("ctgov-observational-model", study.observational_model, "Observational Model"),
        ("ctgov-time-perspective", study.time_perspective, "Time Perspective"),
    ]
    result += [_labelled(tables[name], code, label) for name, code, label in facets if code]
    return result


def _mesh_for(term: str, meshes: tuple[MeshTerm, ...]) -> MeshTerm | None:
    wanted = term.casefold()
    return next((m for m in meshes if m.id and m.term.casefold() == wanted), None)


def _intervention_concept(study: Study, name: str, tables: CtgovTables) -> JSON:
    """The concept for one intervention, shared by ``focus`` and the arms' arm-intervention extension."""
    intervention = next((iv for iv in study.interventions if iv.name == name), None)
    if intervention is None:
        return codeable_concept(text=name)
    text = name
    if intervention.type:
        row = tables["ctgov-intervention-type"].row(intervention.type)
        text = f"{row.display if row else intervention.type}: {name}"
    mesh = _mesh_for(name, study.intervention_meshes)
    codings = [coding(MESH_SYSTEM, mesh.id, mesh.term)] if mesh and mesh.id else []
    return codeable_concept(*codings, text=text)


def _conditions(study: Study, tables: CtgovTables) -> list[JSON]:
    result, used = [], set()
    for condition in study.conditions:
        codings = list(tables.condition_codings(condition))
        mesh = _mesh_for(condition, study.condition_meshes)
        if mesh and mesh.id:
            used.add(mesh.id)
            codings.append(coding(MESH_SYSTEM, mesh.id, mesh.term))
        result.append(codeable_concept(*codings, text=condition))
    for mesh in study.condition_meshes:
        if mesh.id and mesh.id not in used:
            used.add(mesh.id)
            result.append(codeable_concept(coding(MESH_SYSTEM, mesh.id, mesh.term), text=mesh.term))
    return result


def _contact_detail(name: str | None, phone: str | None, phone_ext: str | None, email: str | None) -> JSON:
    telecom = []
    if phone:
        telecom.append({"system": "phone", "value": f"{phone} ext. {phone_ext}" if phone_ext else phone, "use": "work"})
    if email:
        telecom.append({"system": "email", "value": email, "use": "work"})
    return compact({"name": name, "telecom": telecom})


def _related_artifacts(study: Study, tables: CtgovTables) -> list[JSON]:
    types = tables["ctgov-reference-type"]
    result = []
    for ref in study.references:
        kind = (
            project_extension("ctgov-reference-type", valueCodeableConcept=types.concept(ref.type))
            if ref.type
            else None
        )
        result.append(
            compact(
                {
                    "extension": [kind] if kind else None,
                    "type": "citation",
                    "citation": ref.citation,
                    "url": f"https://pubmed.ncbi.nlm.nih.gov/{ref.pmid}/" if ref.pmid else None,
                }
            )
        )
    result += [compact({"type": "documentation", "display": link.label, "url": link.url}) for link in study.links]
    return result


def _description(study: Study) -> str | None:
    if study.brief_summary and study.detailed_description:
        return f"## Brief Summary\n\n{study.brief_summary}\n\n## Detailed Description\n\n{study.detailed_description}"
    return study.brief_summary or study.detailed_description


def _date(date: StudyDate | None) -> str | None:
    return date.date if date else None


def _arm(study: Study, n: int, tables: CtgovTables) -> JSON:
    arm = study.arms[n]
    return compact(
        {
            "extension": [
                project_extension("arm-intervention", valueCodeableConcept=_intervention_concept(study, name, tables))
                for name in arm.interventions
            ],
            "name": arm.label,
            "type": _arm_type(arm.type, tables) if arm.type else None,
            "description": arm.description,
        }
    )


def _arm_type(code: str, tables: CtgovTables) -> JSON:
    return tables["ctgov-arm-type"].target_concept(code)


def _objective(kind: str, measure: str, description: str | None, time_frame: str | None, tables: CtgovTables) -> JSON:
    table = tables["ctgov-objective-type"]
    row = table.row(kind)
    standard = table.target_coding(row) if row else None
    return compact(
        {
            "extension": [
                e
                for e in (
                    project_extension("objective-description", valueMarkdown=description) if description else None,
                    project_extension("objective-time-frame", valueString=time_frame) if time_frame else None,
                )
                if e is not None
            ],
            "name": measure,
            "type": codeable_concept(standard, text=row.display) if row and standard else None,
        }
    )
