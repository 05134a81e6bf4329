"""Pull a study back from a FHIR server into an NDJSON folder (Bulk Data layout).

Two ways, one result (``<Type>.ndjson`` files and ``manifest.json``):

- **search**: the ResearchStudy by its NCT identifier; its Group, Organizations,
  Locations and Practitioners by ``_id``; ``ResearchSubject?study=`` with
  ``_include`` of the Patients; then the Observations and MedicationAdministrations
  of those Patients, ``patient=`` in chunks. The client pages (``next`` links as opaque
  URLs; a link seen twice is a loop and an error); duplicates (same type and id) are
  dropped; where the server gives ``total``, the count of distinct matches must equal it.
- **bulk**: Bulk Data ``$export`` at Group level when the study's enrollment Group
  has members and the server offers Group ``$export``, else at Patient level with
  the study's patients as the ``patient`` parameter (a POST of Parameters), else
  search. The kick-off asks ``Prefer: respond-async``; the status URL is saved in
  ``export-status.json`` so an interrupted pull resumes by polling it; polls honour
  ``Retry-After`` up to ``poll_cap`` seconds (a saved job the server no longer
  knows, 404 or 410, is started again); files stream
  to disk (gzip transfer encoding accepted); on an abort the job is cancelled with
  DELETE. The study-level resources are not in the Patient compartment and always
  come by search.

``since`` (a FHIR instant) keeps only resources changed after it (``_lastUpdated=gt``
on searches, ``_since`` on exports). Memory holds one page (or one file line) and a
set of 8-byte hashes of the resources seen, for duplicate removal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.client import FhirClient, retry_after_seconds
from adapter.errors import InputError, NotFound, ServerError
from adapter.fhir import elements
from adapter.fhir.constants import NCT_SYSTEM
from adapter.fhir.ndjson import NdjsonWriter, write_manifest
from adapter.fhir.references import ref_id

log = logging.getLogger(__name__)

MODES = ("auto", "search", "bulk")
STATUS_FILE = "export-status.json"
PAGE_SIZE = 200
PATIENT_CHUNK = 50
SUBJECT_TYPES = ("Observation", "MedicationAdministration")


@dataclass
class PullReport:
    """What a pull wrote: resources per type, how, duplicates dropped, and any count mismatch."""

    output: Path
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    transaction_time: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        found = [f"{kind}: {count}" for kind, count in sorted(self.counts.items())]
        return [f"pulled by {self.mode} into {self.output}", *found, *self.problems]


class _Sink:
    """The output folder: writes each resource once (by type and id) and counts."""

    def __init__(self, writer: NdjsonWriter, since: str | None, report: PullReport) -> None:
        self.writer = writer
        self.since = _instant(since) if since else None
        self.report = report
        self._seen: set[int] = set()

    def add(self, resource: Mapping[str, Any], line: str | None = None) -> bool:
        """Write the resource unless it was written already; True when it is new."""
        kind, rid = str(resource.get("resourceType")), str(resource.get("id"))
        key = int.from_bytes(hashlib.blake2b(f"{kind}/{rid}".encode(), digest_size=8).digest(), "big")
        if key in self._seen:
            self.report.duplicates += 1
            return False
        self._seen.add(key)
        if self.since and not _changed_after(resource, self.since):
            return True
        if line is None:
            self.writer.write(resource)
        else:
            self.writer.write_line(kind, line)
        return True


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
) -> PullReport:
    """Pull study ``nct_id`` from the server into the folder ``output``; see the module docstring."""
    if mode not in MODES:
        raise InputError(f"unknown pull mode {mode!r}; use one of {', '.join(MODES)}", field="mode")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    report = PullReport(out, mode)
    with NdjsonWriter(out) as writer:
        sink = _Sink(writer, since, report)
        searcher = _Searcher(client, sink, page_size, since)
        study = searcher.study(nct_id)
        patients = searcher.subjects(study)
        bulk = _Bulk(client, out, poll_interval=poll_interval, poll_cap=poll_cap, max_wait=max_wait, sleep=sleep)
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
    report.counts = dict(writer.counts)
    write_manifest(
        out,
        report.counts,
        transaction_time=report.transaction_time or started,
        request=f"{client.base_url}/ResearchStudy?identifier={NCT_SYSTEM}|{nct_id}",
        extension={"trialfhir": {"study": nct_id, "mode": report.mode, "since": since,
                                 "duplicates": report.duplicates, "problems": report.problems}},
    )
    return report


# --- search -----------------------------------------------------------------------------------


class _Searcher:
    def __init__(self, client: FhirClient, sink: _Sink, page_size: int, since: str | None) -> None:
        self.client = client
        self.sink = sink
        self.page_size = page_size
        self.since = since

    def search(
        self, resource_type: str, params: Mapping[str, str], *, filtered: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Every entry resource of a search, all pages; checks the server's total."""
        query = {**params, "_count": str(self.page_size)}
        if filtered and self.since:
            query["_lastUpdated"] = f"gt{self.since}"
        matches: set[str] = set()
        total: int | None = None
        for page in self.client.search(resource_type, query):
            if total is None and isinstance(page.get("total"), int):
                total = page["total"]
            for entry in page.get("entry", []):
                resource = entry.get("resource")
                if not isinstance(resource, dict):
                    continue
                if (entry.get("search") or {}).get("mode", "match") == "match":
                    matches.add(f"{resource.get('resourceType')}/{resource.get('id')}")
                yield resource
        if total is not None and total != len(matches):
            self.sink.report.problems.append(
                f"{resource_type} search {dict(params)}: the server said {total} matches, {len(matches)} arrived"
            )

    def study(self, nct_id: str) -> dict[str, Any]:
        """The ResearchStudy and the Group, Organizations, Locations and Practitioners it refers to."""
        found = list(self.search("ResearchStudy", {"identifier": f"{NCT_SYSTEM}|{nct_id}"}, filtered=False))
        if len(found) != 1:
            raise InputError(f"the server has {len(found)} ResearchStudy resources with this NCT identifier",
                             source=self.client.base_url, field=nct_id)
        study = found[0]
        self.sink.add(study)
        for kind in ("Group", "Organization", "Location", "Practitioner"):
            ids = sorted(_references(study, kind))
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

    def subject_resources(self, patients: list[str], study: Mapping[str, Any]) -> None:
        for kind in SUBJECT_TYPES:
            for chunk in _chunks(patients, PATIENT_CHUNK):
                for resource in self.search(kind, {"patient": ",".join(chunk)}):
                    if _belongs(resource, str(study["id"])):
                        self.sink.add(resource)


def _belongs(resource: Mapping[str, Any], study_id: str) -> bool:
    """A resource with no study link belongs to its patient's study; one linked elsewhere does not."""
    linked = elements.study_id(resource)
    return linked is None or linked == study_id


def _references(resource: Any, kind: str) -> set[str]:
    """Ids of every ``kind`` reference anywhere in a resource."""
    found: set[str] = set()
    if isinstance(resource, Mapping):
        if isinstance(resource.get("reference"), str) and (rid := ref_id(resource, kind)):
            found.add(rid)
        for value in resource.values():
            found |= _references(value, kind)
    elif isinstance(resource, list):
        for item in resource:
            found |= _references(item, kind)
    return found


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _instant(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError("not a FHIR instant (e.g. 2024-05-01T00:00:00Z)", field="since") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _changed_after(resource: Mapping[str, Any], since: datetime) -> bool:
    updated = (resource.get("meta") or {}).get("lastUpdated")
    return updated is None or _instant(updated) > since


# --- Bulk Data $export ------------------------------------------------------------------------


@dataclass(frozen=True)
class Kickoff:
    """How to start the export: a GET with query parameters, or a POST of a Parameters resource."""

    path: str
    params: dict[str, str]
    patients: tuple[str, ...] = ()  # sent as Parameters.patient (POST-only in Bulk Data 2.0)

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "params": self.params, "patients": list(self.patients)}

    def body(self) -> dict[str, Any] | None:
        if not self.patients:
            return None
        parameters: list[dict[str, Any]] = [{"name": k, "valueString": v} for k, v in self.params.items()]
        parameters += [{"name": "patient", "valueReference": {"reference": f"Patient/{p}"}} for p in self.patients]
        return {"resourceType": "Parameters", "parameter": parameters}


class _Bulk:
    def __init__(
        self,
        client: FhirClient,
        out: Path,
        *,
        poll_interval: float,
        poll_cap: float,
        max_wait: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.client = client
        self.poll_cap = poll_cap
        self.out = out
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.sleep = sleep

    def plan(self, study: Mapping[str, Any], patients: list[str], since: str | None) -> Kickoff | None:
        """The kick-off for the study's subject data, or None when the server has no usable $export."""
        # Not require_r4: pull has never refused a server for its FHIR version.
        operations = self.client.capabilities(require_r4=False).export_levels
        params = {"_type": ",".join(SUBJECT_TYPES), "_outputFormat": "application/fhir+ndjson"}
        if since:
            params["_since"] = since
        groups = sorted(_references(study.get("enrollment", []), "Group"))
        if "Group" in operations and len(groups) == 1 and self._has_members(groups[0]):
            return Kickoff(f"Group/{groups[0]}/$export", params)
        if "Patient" in operations and patients:
            # The study's patients as the POST-only 'patient' parameter (a _typeFilter on patient is
            # refused by HAPI, which sets that search parameter itself for Patient-level exports).
            return Kickoff("Patient/$export", params, tuple(sorted(patients)))
        return None

    def _has_members(self, group_id: str) -> bool:
        return bool(self.client.read("Group", group_id).get("member"))

    def run(self, kickoff: Kickoff, sink: _Sink, *, study_id: str) -> str:
        """Kick off (or resume) the export, wait for it, stream its files into the sink; the transaction time."""
        status_url = self._saved_status(kickoff)
        resumed = status_url is not None
        if status_url is None:
            status_url = self._kick_off(kickoff)
        try:
            try:
                manifest = self._wait(status_url)
            except NotFound as error:
                if not resumed:
                    raise
                # Servers keep a job for a while only; one that expired is no reason to fail: start it again.
                log.warning("the saved export at %s is gone (HTTP %s); starting a new one", status_url, error.status)
                status_url = self._kick_off(kickoff)
                manifest = self._wait(status_url)
            for output in manifest.get("output", []):
                self._download(str(output["url"]), str(output.get("type", "")), sink, study_id)
        except KeyboardInterrupt:
            # Interrupted, not failed: keep the job and the saved status URL so the next pull resumes.
            log.warning("pull interrupted; the export stays at %s and the next pull resumes it", status_url)
            raise
        except BaseException:
            self._abort(status_url)
            raise
        for error_file in manifest.get("error", []):
            sink.report.problems.append(f"the export reported errors in {error_file.get('url')}")
        # Done: a DELETE after completion tells the server it may drop the files.
        self._abort(status_url)
        return str(manifest.get("transactionTime", ""))

    def _abort(self, status_url: str) -> None:
        """Cancel (or release) the job and forget its status URL."""
        try:
            self.client.send("DELETE", status_url)
        except ServerError as error:
            log.info("export job %s: DELETE answered %s", status_url, error.status)
        (self.out / STATUS_FILE).unlink(missing_ok=True)

    def _saved_status(self, kickoff: Kickoff) -> str | None:
        path = self.out / STATUS_FILE
        if not path.exists():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("kickoff") != kickoff.describe():
            log.warning("%s is for another export; starting a new one", path)
            return None
        log.info("resuming the export at %s", saved["status"])
        return str(saved["status"])

    def _kick_off(self, kickoff: Kickoff) -> str:
        body = kickoff.body()
        response = self.client.send(
            "POST" if body else "GET", kickoff.path, params=None if body else kickoff.params, body=body,
            headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
        )
        status_url = response.headers.get("Content-Location")
        if response.status_code != 202 or not status_url:
            raise ServerError(response.status_code, method="GET", url=response.url,
                              text="the $export kick-off did not answer 202 with a Content-Location")
        (self.out / STATUS_FILE).write_text(
            json.dumps({"status": status_url, "kickoff": kickoff.describe(),
                        "started": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2) + "\n",
            encoding="utf-8",
        )
        return status_url

    def _wait(self, status_url: str) -> dict[str, Any]:
        waited, delay = 0.0, self.poll_interval
        while True:
            response = self.client.send("GET", status_url, headers={"Accept": "application/json"})
            if response.status_code == 200:
                return dict(response.json())
            if waited >= self.max_wait:
                raise ServerError(response.status_code, method="GET", url=status_url,
                                  text=f"the export did not finish within {self.max_wait:.0f} s")
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            # Retry-After is honoured up to poll_cap: HAPI advertises 120 s even for exports done in seconds.
            pause = min(wait if wait is not None else delay, self.poll_cap)
            log.info("export in progress (%s); next poll in %.1f s", response.headers.get("X-Progress", ""), pause)
            self.sleep(pause)
            waited += pause
            delay = min(delay * 1.5, self.poll_cap)

    def _download(self, url: str, kind: str, sink: _Sink, study_id: str) -> None:
        response = self.client.send("GET", url, headers={"Accept": "application/fhir+ndjson"}, stream=True)
        with response:
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                line = raw.decode("utf-8")
                resource = json.loads(line)
                if kind and resource.get("resourceType") != kind:
                    found = resource.get("resourceType")
                    raise ServerError(0, method="GET", url=url, text=f"a {found} in the {kind} file")
                if _belongs(resource, study_id):
                    sink.add(resource, line)

def cancel_saved_export(client: FhirClient, output: str | Path) -> bool:
    """Cancel the export whose status URL a pull saved in ``output``; False when there is none."""
    path = Path(output) / STATUS_FILE
    if not path.exists():
        return False
    status = json.loads(path.read_text(encoding="utf-8"))["status"]
    with contextlib.suppress(NotFound):  # the server no longer has the job: nothing left to cancel
        client.send("DELETE", status)
    path.unlink()
    return True
