"""Bulk Data ``$export`` for a pull: kick off (or resume), poll, stream the files, cancel.

The kick-off asks ``Prefer: respond-async``; the status URL is saved in
``export-status.json`` so an interrupted pull resumes by polling it; polls honour
``Retry-After`` up to ``poll_cap`` seconds (a saved job the server no longer
knows, 404 or 410, is started again); files stream to disk; on an abort the job
is cancelled with DELETE.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.client import FhirClient, retry_after_seconds
from adapter.errors import NotFound, ServerError
from adapter.fhir.references import referenced_ids
from adapter.progress import Progress
from adapter.sync.sink import Sink, belongs

log = logging.getLogger(__name__)

STATUS_FILE = "export-status.json"
SUBJECT_TYPES = ("Consent", "Observation", "MedicationAdministration")  # the Patient compartment's study data


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


class BulkExport:
    def __init__(
        self,
        client: FhirClient,
        out: Path,
        *,
        poll_interval: float,
        poll_cap: float,
        max_wait: float,
        sleep: Callable[[float], None],
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.progress = progress
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
        groups = sorted(referenced_ids(study.get("enrollment", []), "Group"))
        if "Group" in operations and len(groups) == 1 and self._has_members(groups[0]):
            return Kickoff(f"Group/{groups[0]}/$export", params)
        if "Patient" in operations and patients:
            # The study's patients as the POST-only 'patient' parameter (a _typeFilter on patient is
            # refused by HAPI, which sets that search parameter itself for Patient-level exports).
            return Kickoff("Patient/$export", params, tuple(sorted(patients)))
        return None

    def _has_members(self, group_id: str) -> bool:
        return bool(self.client.read("Group", group_id).get("member"))

    def run(self, kickoff: Kickoff, sink: Sink, *, study_id: str) -> str:
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
            # The token goes with the files only when the manifest asks for it (and the client sends it only
            # to the server's own origin or an allowed one).
            token = manifest.get("requiresAccessToken") is True
            outputs = manifest.get("output", [])
            for number, output in enumerate(outputs, 1):
                self._note(f"$export file {number} of {len(outputs)} ({output.get('type', '?')})")
                self._download(str(output["url"]), str(output.get("type", "")), sink, study_id, token)
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
            status = response.headers.get("X-Progress", "")[:60]  # a server's words, bounded for one line
            log.info("export in progress (%s); next poll in %.1f s", status, pause)
            self._note(f"$export in progress{f' ({status})' if status else ''}, waited {waited:.0f} s")
            self.sleep(pause)
            waited += pause
            delay = min(delay * 1.5, self.poll_cap)

    def _note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.note(text)

    def _download(self, url: str, kind: str, sink: Sink, study_id: str, token: bool) -> None:
        headers = {"Accept": "application/fhir+ndjson"}
        response = self.client.send("GET", url, headers=headers, stream=True, credentials=token)
        with response:
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                line = raw.decode("utf-8")
                resource = json.loads(line)
                if kind and resource.get("resourceType") != kind:
                    found = resource.get("resourceType")
                    raise ServerError(0, method="GET", url=url, text=f"a {found} in the {kind} file")
                if belongs(resource, study_id):
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
