"""Collect enrolled subjects' hospital data into the trial: the whole run.

``collect`` reads the package (subjects, visits, code tables) and the links file,
checks the server's query plan and finds each subject's Patient. Then it goes through
the found subjects in subject-id order, a group of patients at a time (one search per
resource type): it fetches the group's accepted observations and administrations, turns
them into facts, merges each subject's with the last run's, derives, places and writes
that subject's rows. Only one group's resources and one subject's facts are held at a
time, so memory does not grow with the number of subjects.

The journal is ``journal.json`` (the server and its time of the last run) and
``journal-facts.ndjson`` (the facts, one a line, by subject id: values keyed by
pseudonymous subject ids and source resource ids); never the links file's identifiers.
A later run asks only for resources updated since (``_lastUpdated``), replaces the facts
of every resource that came back, and lists what changed in ``changes.csv`` with old and
new values.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapter.client import FhirClient
from adapter.collect import facts as F
from adapter.collect import output
from adapter.collect.fetch import Fetched, check_plan, fetch, groups, subject_of, tokens, url_length
from adapter.collect.links import read_links
from adapter.collect.patients import FOUND, find_patients
from adapter.collect.schedule import DERIVED, OUT_OF_WINDOW, VISIT, Participation, Placed, derive, place
from adapter.errors import ConfigError, ConversionError, InputError
from adapter.fhir.ucum import convert
from adapter.records import Subject
from adapter.sources.package import read_measurements, read_subjects
from adapter.sources.package_csv import Reject
from adapter.sources.package_descriptor import MEASUREMENTS, Package, load_package

log = logging.getLogger(__name__)
JOURNAL = "journal.json"
JOURNAL_FACTS = "journal-facts.ndjson"
JOURNAL_FORMAT = "trialfhir-collect-journal/2"
# Format 1 kept the facts in journal.json itself; a folder collected with it is read once and rewritten.
JOURNAL_FORMAT_1 = "trialfhir-collect-journal/1"
# Per resource type, the trial codes its resources are read for.
Indexes = Mapping[str, Mapping[tuple[str, str], list[F.Accepting]]]


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
    patients into one search (as many as fit in a URL of ``fetch.MAX_URL``); on HAPI's JPA
    server (H2) a search of three patients took minutes where three searches of one took
    two seconds, so one patient per search is the default.
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
    indexes: Indexes = {"Observation": F.accepting_tests(tables.tests, tables.project_systems),
                        "MedicationAdministration": F.accepting_products(tables.products)}
    zones = {s: who[s].zone for s in links}
    edc = _edc(package, set(by_patient.values()), tables.tests)
    fetched = Fetched()
    counts: dict[str, Counter[str]] = {}
    reconciliation: Counter[str] = Counter()
    changed: list[dict[str, str]] = []
    collected = _collected(client, by_patient, who, indexes, tables.tests, since=since, fetched=fetched,
                           most=patients_per_search, report=report)
    facts_tmp = out / f"{JOURNAL_FACTS}.tmp"
    with output.Folder(out, client.base_url) as folder, facts_tmp.open("w", encoding="utf-8") as journal_out:
        for subject, new, touched, previous in _merged(collected, _journal_facts(out, journal)):
            base = {k: f for k, f in previous.items() if f.source_type != DERIVED and (k[0], k[1]) not in touched}
            base.update(new)
            derived = {f.key: f for f in derive(list(base.values()), tables.tests, zones, client.base_url)}
            current = {**base, **derived}
            placed = place(current.values(), who, package.visits, package.windows)
            rows = output.reconcile(edc.get(subject, {}), {
                (p.fact.subject_id, p.visit, p.fact.code): p.fact for p in placed
                if p.placement == VISIT and p.fact.kind == "measurement" and p.fact.state == F.COLLECTED})
            folder.add(placed, (f for f in current.values() if f.state in (F.REJECTED, F.RETRACTED)), rows)
            reconciliation.update(r["result"] for r in rows)
            if journal:
                changed += output.changes(previous, current)
            _count(counts, current.values(), placed)
            for fact in sorted(current.values(), key=lambda f: f.key):
                journal_out.write(json.dumps(fact.as_json(), sort_keys=True) + "\n")
    report.requests = fetched.requests
    report.reconciliation = dict(reconciliation)
    if journal:
        changed.sort(key=lambda r: (r["source_type"], r["source_id"], r["code"]))
        output.write_changes(out, changed)
        report.changes = dict(Counter(r["change"] for r in changed))
    report.codes = {code: {k: v for k, v in sorted(c.items()) if k and v} for code, c in sorted(counts.items())}
    output.write_json(out / "report.json", report.as_json())
    # The facts first, then the header: an interruption in between leaves an older since, which only fetches more.
    facts_tmp.replace(out / JOURNAL_FACTS)
    output.write_json(out / JOURNAL, {"format": JOURNAL_FORMAT, "server": client.base_url,
                                      "since": fetched.server_time or journal.get("since")})
    log.info("collect: %s subjects, %d resources read in %d search requests",
             report.subjects, report.fetched, report.requests)
    return report


def _collected(
    client: FhirClient, by_patient: Mapping[str, str], who: Mapping[str, Participation], indexes: Indexes,
    tests: Any, *, since: str | None, fetched: Fetched, most: int, report: CollectReport,
) -> Iterator[tuple[str, dict[tuple[str, str, str], F.Fact], set[tuple[str, str]]]]:
    """Per found subject, in subject-id order: the facts of this run's resources, and those resources' keys.

    Patients are searched in groups (one search per resource type), a group's date range
    being its subjects' participation.
    """
    codes = {kind: tokens(index) for kind, index in indexes.items()}
    patients = sorted(by_patient, key=lambda p: (by_patient[p], p))
    fixed = max(url_length(client.base_url, kind, codes[kind], since) for kind in indexes)
    for group in groups(patients, most=most, fixed=fixed):
        mine = [who[by_patient[p]] for p in group]
        first = min(p.first for p in mine)
        last = None if any(p.last is None for p in mine) else max(p.last for p in mine if p.last)
        facts: dict[str, dict[tuple[str, str, str], F.Fact]] = {by_patient[p]: {} for p in group}
        touched: dict[str, set[tuple[str, str]]] = {by_patient[p]: set() for p in group}
        for kind, index in indexes.items():
            for resource in fetch(client, kind, group, codes[kind], first=first, last=last, since=since,
                                  fetched=fetched):
                subject = subject_of(resource, by_patient)
                if subject is None or subject not in facts:
                    continue
                report.fetched += 1
                touched[subject].add((kind, resource["id"]))
                made = (F.observation_facts(resource, subject, tests, index) if kind == "Observation"
                        else F.administration_facts(resource, subject, index))
                for fact in made:
                    facts[subject][fact.key] = fact
        for subject in sorted(facts):
            yield subject, facts[subject], touched[subject]


def _merged(
    collected: Iterable[tuple[str, dict[tuple[str, str, str], F.Fact], set[tuple[str, str]]]],
    journal: Iterator[tuple[str, list[F.Fact]]],
) -> Iterator[tuple[str, dict[tuple[str, str, str], F.Fact], set[tuple[str, str]], dict[tuple[str, str, str], F.Fact]]]:
    """Per subject, in subject-id order: this run's facts and touched resources beside the last run's facts.

    Both inputs come in subject-id order; a subject of only one of them gets empty others.
    """
    pending = next(journal, None)
    for subject, new, touched in collected:
        while pending is not None and pending[0] < subject:
            yield pending[0], {}, set(), {f.key: f for f in pending[1]}
            pending = next(journal, None)
        previous: list[F.Fact] = []
        if pending is not None and pending[0] == subject:
            previous = pending[1]
            pending = next(journal, None)
        yield subject, new, touched, {f.key: f for f in previous}
    while pending is not None:
        yield pending[0], {}, set(), {f.key: f for f in pending[1]}
        pending = next(journal, None)


def _journal_facts(out: Path, journal: Mapping[str, Any]) -> Iterator[tuple[str, list[F.Fact]]]:
    """The last run's facts, a subject at a time, in subject-id order."""
    if not journal:
        return
    if journal["format"] == JOURNAL_FORMAT_1:
        facts: Iterable[F.Fact] = sorted((F.Fact.from_json(f) for f in journal.get("facts", [])),
                                         key=lambda f: (f.subject_id, f.key))
        yield from _by_subject(facts)
        return
    path = out / JOURNAL_FACTS
    if not path.exists():
        raise InputError(f"the journal's facts ({JOURNAL_FACTS}) are missing; use another -o", source=str(path))
    with path.open(encoding="utf-8") as stream:
        yield from _by_subject(F.Fact.from_json(json.loads(line)) for line in stream if line.strip())


def _by_subject(facts: Iterable[F.Fact]) -> Iterator[tuple[str, list[F.Fact]]]:
    subject: str | None = None
    group: list[F.Fact] = []
    for fact in facts:
        if fact.subject_id != subject and group:
            yield str(subject), group
            group = []
        subject = fact.subject_id
        group.append(fact)
    if group:
        yield str(subject), group


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


def _edc(
    package: Package, subjects: set[str], tests: Any
) -> dict[str, dict[tuple[str, str, str], tuple[Decimal | str, str]]]:
    """Per subject, the EDC's visit values (package measurements.csv) of collected subjects, in each test's unit.

    Held whole: it is the package's input, not the hospital's.
    """
    if not package.csv_path(MEASUREMENTS).exists():
        return {}
    index: dict[str, str] = {}
    for _ in read_subjects(package, index):
        pass
    found: dict[str, dict[tuple[str, str, str], tuple[Decimal | str, str]]] = {}
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
        found.setdefault(m.subject_id, {}).setdefault((m.subject_id, m.visit.code, m.test_code),
                                                      (value, test.unit or ""))
    return found


def _count(counts: dict[str, Counter[str]], facts: Iterable[F.Fact], placed: list[Placed]) -> None:
    """Add one subject's facts to the per-code counts of report.json."""
    where = {p.fact.key: p.placement for p in placed}
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
    # Counter += False leaves a key at 0: the report keeps only what happened (collect drops zeros).


def _read_journal(path: Path, server: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") not in (JOURNAL_FORMAT, JOURNAL_FORMAT_1):
        raise InputError(f"not a collect journal ({JOURNAL_FORMAT})", source=str(path))
    if data.get("server") != server:
        raise InputError(f"this folder was collected from {data.get('server')}, not {server}; use another -o",
                         source=str(path))
    return data
