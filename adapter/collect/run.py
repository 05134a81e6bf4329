"""Collect enrolled subjects' hospital data into the trial: the whole run.

``collect`` reads the package (subjects, visits, code tables) and the links file,
checks the server's query plan, finds each subject's Patient, fetches the accepted
observations and administrations in batches, turns them into facts, merges them with
the last run's (``journal.json`` in the output folder), derives, places and writes.

The journal holds the facts (values keyed by pseudonymous subject ids and source
resource ids) and the server's time of the last run; never the links file's
identifiers. A later run asks only for resources updated since (``_lastUpdated``),
replaces the facts of every resource that came back, and lists what changed in
``changes.csv`` with old and new values.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapter.client import FhirClient
from adapter.collect import facts as F
from adapter.collect import output
from adapter.collect.fetch import Fetched, check_plan, fetch, subject_of
from adapter.collect.links import read_links
from adapter.collect.patients import FOUND, find_patients
from adapter.collect.schedule import DERIVED, OUT_OF_WINDOW, VISIT, Participation, derive, place
from adapter.errors import ConfigError, ConversionError, InputError
from adapter.fhir.ucum import convert
from adapter.records import Subject
from adapter.sources.package import read_measurements, read_subjects
from adapter.sources.package_csv import Reject
from adapter.sources.package_descriptor import MEASUREMENTS, Package, load_package

log = logging.getLogger(__name__)
JOURNAL = "journal.json"
JOURNAL_FORMAT = "trialfhir-collect-journal/1"


@dataclass
class CollectReport:
    """What a run did; ``as_json`` is report.json. Per code, read = collected + rejected + out_of_window."""

    server: str
    since: str | None
    subjects: dict[str, int] = field(default_factory=dict)
    codes: dict[str, dict[str, int]] = field(default_factory=dict)
    fetched: int = 0
    requests: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    reconciliation: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"server": self.server, "since": self.since, "subjects": self.subjects, "codes": self.codes,
                "resources_fetched": self.fetched, "search_requests": self.requests, "changes": self.changes,
                "reconciliation": self.reconciliation}


def collect(
    package_path: str | Path,
    client: FhirClient,
    links_path: str | Path,
    out: str | Path,
    *,
    since: str | None = None,
    patients_per_search: int = 1,
    identifiers_per_search: int = 50,
) -> CollectReport:
    """One collect run into the folder ``out``; returns its report (also written as report.json).

    Every search asks for all accepted codes at once. ``patients_per_search`` > 1 also ORs
    patients into one search; on HAPI's JPA server (H2) a search of three patients took 50
    times as long as three searches of one, so one patient per search is the default.
    """
    package = load_package(package_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    subjects = _subjects(package)
    links = {s: ids for s, ids in read_links(Path(links_path)).items()}
    unknown = sorted(set(links) - set(subjects))
    if unknown:
        raise InputError(f"{len(unknown)} subject(s) of the links file are not in subjects.csv, e.g. {unknown[0]}",
                         source=str(links_path), field="subject_id")
    journal = _read_journal(out / JOURNAL, client.base_url)
    since = since or journal.get("since")
    check_plan(client, since=since is not None)

    matches = find_patients(client, links, chunk=identifiers_per_search)
    by_patient = {m.patient_id: s for s, m in matches.items() if m.status == FOUND and m.patient_id}
    who = {s: _participation(package, subjects[s]) for s in links}
    report = CollectReport(server=client.base_url, since=since)
    report.subjects = dict(Counter(m.status for m in matches.values()))

    tables = package.tables
    test_index = F.accepting_tests(tables.tests, tables.project_systems)
    product_index = F.accepting_products(tables.products)
    fetched = Fetched()
    new: dict[tuple[str, str, str], F.Fact] = {}
    touched: set[tuple[str, str]] = set()
    found = [who[s] for s in by_patient.values()]
    first = min((p.first for p in found), default=date.today())
    last = None if any(p.last is None for p in found) else max((p.last for p in found if p.last), default=None)
    for resource_type, index in (("Observation", test_index), ("MedicationAdministration", product_index)):
        for resource in fetch(client, resource_type, sorted(by_patient), index, first=first, last=last,
                              since=since, fetched=fetched, chunk=patients_per_search):
            subject = subject_of(resource, by_patient)
            if subject is None:
                continue
            report.fetched += 1
            touched.add((resource_type, resource["id"]))
            made = (F.observation_facts(resource, subject, tables.tests, test_index)
                    if resource_type == "Observation" else F.administration_facts(resource, subject, index))
            for fact in made:
                new[fact.key] = fact
    report.requests = fetched.requests

    previous = {f.key: f for f in map(F.Fact.from_json, journal.get("facts", []))}
    base = {k: f for k, f in previous.items() if f.source_type != DERIVED and (k[0], k[1]) not in touched}
    base.update(new)
    zones = {s: who[s].zone for s in links}
    derived = {f.key: f for f in derive(list(base.values()), tables.tests, zones, client.base_url)}
    current = {**base, **derived}

    placed = place(current.values(), who, package.visits, package.windows)
    output.write_measurements(out, placed, client.base_url)
    output.write_administrations(out, placed, client.base_url)
    output.write_rejects(out, (f for f in current.values() if f.state in (F.REJECTED, F.RETRACTED)))
    rows = output.reconcile(_edc(package, set(by_patient.values()), tables.tests),
                            {(p.fact.subject_id, p.visit, p.fact.code): p.fact for p in placed
                             if p.placement == VISIT and p.fact.kind == "measurement" and p.fact.state == F.COLLECTED})
    output.write_reconciliation(out, rows)
    report.reconciliation = dict(Counter(r["result"] for r in rows))
    if journal:
        changed = output.changes(previous, current)
        output.write_changes(out, changed)
        report.changes = dict(Counter(r["change"] for r in changed))
    report.codes = _counts(current.values(), placed)
    output.write_json(out / "report.json", report.as_json())
    output.write_json(out / JOURNAL, {
        "format": JOURNAL_FORMAT, "server": client.base_url,
        "since": fetched.server_time or journal.get("since"),
        "facts": [f.as_json() for f in sorted(current.values(), key=lambda f: f.key)],
    })
    log.info("collect: %s subjects, %d resources read in %d search requests",
             report.subjects, report.fetched, report.requests)
    return report


def _subjects(package: Package) -> dict[str, Subject]:
    index: dict[str, str] = {}
    subjects = {}
    for item in read_subjects(package, index):
        if isinstance(item, Reject):
            raise InputError(item.reason, source=str(package.csv_path("subjects.csv")), line=item.line,
                             field=item.column)
        subjects[item[1].subject_id] = item[1]
    return subjects


def _participation(package: Package, subject: Subject) -> Participation:
    site = package.sites[subject.site_id]
    if site.zone is None:
        raise ConfigError(f"site {site.id} has no time_zone in package.yaml; collect reads hospital times in it")
    first = date.fromisoformat(subject.consent_date)
    day0 = date.fromisoformat(subject.start_date) if subject.start_date else first
    last = date.fromisoformat(subject.end_date) if subject.end_date else None
    return Participation(ZoneInfo(str(site.zone)), first, day0, last)


def _edc(package: Package, subjects: set[str], tests: Any) -> dict[tuple[str, str, str], tuple[Decimal | str, str]]:
    """The EDC's visit values (package measurements.csv) of collected subjects, in each test's unit."""
    if not package.csv_path(MEASUREMENTS).exists():
        return {}
    index: dict[str, str] = {}
    for _ in read_subjects(package, index):
        pass
    found: dict[tuple[str, str, str], tuple[Decimal | str, str]] = {}
    for item in read_measurements(package, index):
        if isinstance(item, Reject):
            continue
        m = item[1]
        test = tests.get(m.test_code)
        if m.subject_id not in subjects or test is None or not (test.accepts or test.derived or test.codes):
            continue
        value: Decimal | str = m.value if isinstance(m.value, Decimal) else str(m.value)
        if isinstance(value, Decimal) and m.unit and test.unit and m.unit != test.unit:
            try:
                value = convert(value, m.unit, test.unit, molar_mass=test.molar_mass)
            except ConversionError:
                continue
        found.setdefault((m.subject_id, m.visit.code, m.test_code), (value, test.unit or ""))
    return found


def _counts(facts: Any, placed: list[Any]) -> dict[str, dict[str, int]]:
    where = {p.fact.key: p.placement for p in placed}
    counts: dict[str, Counter[str]] = {}
    for fact in facts:
        count = counts.setdefault(fact.code, Counter())
        if fact.source_type == DERIVED:
            count["derived"] += 1
            continue
        count["read"] += 1
        if fact.state in (F.REJECTED, F.RETRACTED):
            count["rejected"] += 1
            count[fact.state] += fact.state == F.RETRACTED
        elif where.get(fact.key) == OUT_OF_WINDOW:
            count["out_of_window"] += 1
        else:
            count["collected"] += 1
            count[where.get(fact.key, "")] += 1
            count["not_done"] += fact.state == F.NOT_DONE
    # Counter += False leaves a key at 0: the report lists only what happened.
    return {code: {k: v for k, v in sorted(c.items()) if k and v} for code, c in sorted(counts.items())}


def _read_journal(path: Path, server: str) -> dict[str, Any]:
    import json

    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != JOURNAL_FORMAT:
        raise InputError(f"not a collect journal ({JOURNAL_FORMAT})", source=str(path))
    if data.get("server") != server:
        raise InputError(f"this folder was collected from {data.get('server')}, not {server}; use another -o",
                         source=str(path))
    return data
