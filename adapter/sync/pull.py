"""Pull a study back from a FHIR server into an NDJSON folder (Bulk Data layout).

Two ways, one result (``<Type>.ndjson`` files and ``manifest.json``):

- **search**: the ResearchStudy by its NCT identifier; its Group, Organizations,
  Locations and Practitioners by ``_id``; ``ResearchSubject?study=`` with
  ``_include`` of the Patients; then the Consents, Observations and
  MedicationAdministrations of those Patients, ``patient=`` in chunks; last, by ``_id``,
  the site Organizations the Patients name (managingOrganization) and the Medications
  the administrations give (medicationReference), which are in no Patient compartment.
  The client pages (``next`` links as opaque URLs; a link seen twice is a loop and an
  error); duplicates (same type and id) are
  dropped; where the server gives ``total``, the count of distinct matches must equal it.
- **bulk**: Bulk Data ``$export`` at Group level when the study's enrollment Group
  has members and the server offers Group ``$export``, else at Patient level with
  the study's patients as the ``patient`` parameter (a POST of Parameters), else
  search. The kick-off asks ``Prefer: respond-async``; the status URL is saved in
  ``export-status.json`` so an interrupted pull resumes by polling it; polls honour
  ``Retry-After`` up to ``poll_cap`` seconds (a saved job the server no longer
  knows, 404 or 410, is started again); files stream
  to disk (gzip transfer encoding accepted); on an abort the job is cancelled with
  DELETE. The study-level resources, the sites' Organizations and the Medications are
  not in the Patient compartment and always come by search.

``since`` (a FHIR instant) keeps only resources changed after it (``_lastUpdated=gt``
on searches, ``_since`` on exports). Memory holds one page (or one file line) and a
set of 8-byte hashes of the resources seen, for duplicate removal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.client import FhirClient
from adapter.errors import InputError, ServerError
from adapter.fhir import elements
from adapter.fhir.ndjson import NdjsonWriter, write_manifest
from adapter.fhir.references import ref_id, referenced_ids
from adapter.progress import Progress
from adapter.sync.bulk import SUBJECT_TYPES, BulkExport
from adapter.sync.modes import PULL_MODES
from adapter.sync.sink import PullReport, Sink, belongs

log = logging.getLogger(__name__)

PAGE_SIZE = 200
PATIENT_CHUNK = 50


def pull(
    client: FhirClient,
    nct_id: str,
    output: str | Path,
    *,
    mode: str = "auto",
    since: str | None = None,
    page_size: int = PAGE_SIZE,
    poll_interval: float = 1.0,
    poll_cap: float = 5.0,
    max_wait: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> PullReport:
    """Pull study ``nct_id`` from the server into the folder ``output``; see the module docstring."""
    if mode not in PULL_MODES:
        raise InputError(f"unknown pull mode {mode!r}; use one of {', '.join(PULL_MODES)}", field="mode")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    if page_size < 1:
        raise InputError(f"the page size must be at least 1, not {page_size}", field="page_size")
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    report = PullReport(out, mode)
    writer = NdjsonWriter(out)
    try:
        with writer:
            sink = Sink(writer, since, report, progress)
            searcher = _Searcher(client, sink, page_size, since)
            study = searcher.study(nct_id)
            patients = searcher.subjects(study)
            bulk = BulkExport(client, out, poll_interval=poll_interval, poll_cap=poll_cap, max_wait=max_wait,
                              sleep=sleep, progress=progress)
            kickoff = bulk.plan(study, patients, since) if mode in ("auto", "bulk") else None
            if kickoff is None:
                if mode == "bulk":
                    raise ServerError(0, method="GET", url=f"{client.base_url}/metadata",
                                      text="the server offers no Group or Patient $export")
                report.mode = "search"
                searcher.subject_resources(patients, study)
            else:
                report.mode = "bulk"
                report.transaction_time = bulk.run(kickoff, sink, study_id=str(study["id"]))
            searcher.referenced()
    except BaseException as error:
        # Files may already hold part of the study: the manifest says the pull stopped, so no export
        # takes the folder for complete (Ctrl-C included).
        report.problems.append(f"the pull stopped before it ended: {str(error) or type(error).__name__}")
        _manifest(client, nct_id, since, report, writer.counts, started)
        raise
    _manifest(client, nct_id, since, report, writer.counts, started)
    return report


def _manifest(client: FhirClient, nct_id: str, since: str | None, report: PullReport, counts: Mapping[str, int],
              started: str) -> None:
    report.counts = dict(counts)
    write_manifest(
        report.output,
        report.counts,
        transaction_time=report.transaction_time or started,
        request=f"{client.base_url}/ResearchStudy?identifier={elements.nct_search(nct_id)}",
        extension={"trialfhir": {"study": nct_id, "mode": report.mode, "since": since,
                                 "duplicates": report.duplicates, "problems": report.problems}},
    )


# --- search -----------------------------------------------------------------------------------


class _Searcher:
    def __init__(self, client: FhirClient, sink: Sink, page_size: int, since: str | None) -> None:
        self.client = client
        self.sink = sink
        self.page_size = page_size
        self.since = since

    def search(
        self, resource_type: str, params: Mapping[str, str], *, filtered: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Every entry resource of a search, all pages; checks the server's total."""
        query = {**params, "_count": str(self.page_size)}
        if self.sink.progress is not None:
            self.sink.progress.note(f"searching {resource_type}")
        if filtered and self.since:
            query["_lastUpdated"] = f"gt{self.since}"
        matches: set[str] = set()
        sent = 0  # match entries on the pages, repeats included
        total: int | None = None
        for page in self.client.search(resource_type, query):
            if total is None and isinstance(page.get("total"), int):
                total = page["total"]
            for entry in page.get("entry", []):
                resource = entry.get("resource")
                if not isinstance(resource, dict):
                    continue
                if (entry.get("search") or {}).get("mode", "match") == "match":
                    sent += 1
                    matches.add(f"{resource.get('resourceType')}/{resource.get('id')}")
                yield resource
        if total is not None and sent < total:
            # The last page had no next link (the client stops there), yet the total says more exist: some
            # servers answer only a first page and leave the link out. What arrived is a part, never a pull.
            raise ServerError(0, method="GET", url=f"{self.client.base_url}/{resource_type}",
                              text=f"{resource_type} search: the server reported {total} matches but sent {sent} "
                              "and no next link to the rest (it does not page this search). Ask for pages that "
                              "hold every match (pull --page-size, up to the server's maximum _count) or use "
                              "Bulk Data (pull --bulk)")
        if total is not None and total != len(matches):
            self.sink.report.problems.append(
                f"{resource_type} search {dict(params)}: the server said {total} matches, {len(matches)} arrived"
            )

    def study(self, nct_id: str) -> dict[str, Any]:
        """The ResearchStudy and the Group, Organizations, Locations and Practitioners it refers to."""
        found = list(self.search("ResearchStudy", {"identifier": elements.nct_search(nct_id)}, filtered=False))
        if len(found) != 1:
            raise InputError(f"the server has {len(found)} ResearchStudy resources with this NCT identifier",
                             source=self.client.base_url, field=nct_id)
        study = found[0]
        self.sink.add(study)
        for kind in ("Group", "Organization", "Location", "Practitioner"):
            ids = sorted(referenced_ids(study, kind))
            for chunk in _chunks(ids, PATIENT_CHUNK):
                for resource in self.search(kind, {"_id": ",".join(chunk)}):
                    self.sink.add(resource)
        return study

    def subjects(self, study: Mapping[str, Any]) -> list[str]:
        """Write the study's ResearchSubjects and their Patients; return the Patient ids."""
        patients: list[str] = []
        params = {"study": f"ResearchStudy/{study['id']}", "_include": "ResearchSubject:individual"}
        # Not filtered by _lastUpdated: the subject list decides which patients' data to pull.
        for resource in self.search("ResearchSubject", params, filtered=False):
            if resource.get("resourceType") == "ResearchSubject":
                patient = ref_id(resource.get("individual"), "Patient")
                if patient:
                    patients.append(patient)
            self.sink.add(resource)
        return patients

    def referenced(self) -> None:
        """The resources outside the Patient compartment that the subject data refer to (sink.FOLLOWED), by id."""
        for kind, ids in self.sink.referenced.items():
            for chunk in _chunks(sorted(ids), PATIENT_CHUNK):
                for resource in self.search(kind, {"_id": ",".join(chunk)}):
                    self.sink.add(resource)

    def subject_resources(self, patients: list[str], study: Mapping[str, Any]) -> None:
        for kind in SUBJECT_TYPES:
            for chunk in _chunks(patients, PATIENT_CHUNK):
                for resource in self.search(kind, {"patient": ",".join(chunk)}):
                    if belongs(resource, str(study["id"])):
                        self.sink.add(resource)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
