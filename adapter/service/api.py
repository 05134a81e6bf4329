"""The JSON API under ``/api/v1``: studies, jobs, servers. Short views; the work is elsewhere."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, send_file

from adapter.fhir.constants import is_nct_id
from adapter.service.context import service
from adapter.service.media import FHIR_JSON, file_type
from adapter.service.problems import ApiError
from adapter.service.runner import LINKS_FILE
from adapter.service.schemas import check_job_request
from adapter.service.store import QUEUED, RUNNING, Job, StudyEntry

blueprint = Blueprint("api", __name__)

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_RECORD_TYPES = ("application/json", "application/xml", "text/xml")
_ZIP_TYPES = ("application/zip", "application/x-zip-compressed")


# --- studies -------------------------------------------------------------------------------------


@blueprint.get("/studies")
def list_studies() -> Response:
    return jsonify({"studies": [study_json(entry) for entry in service().store.studies()]})


@blueprint.post("/studies")
def add_study() -> tuple[Response, int, dict[str, str]]:
    media_type = request.mimetype
    studies = service().studies
    if media_type in _RECORD_TYPES:
        entry, created = studies.save_record(request.get_data(cache=False))
    elif media_type in _ZIP_TYPES:
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(request.stream, spool)
            spool.seek(0)
            limit = service().settings.service.max_unpacked_bytes
            entry, created = studies.save_package(spool, max_unpacked_bytes=limit)
    else:
        raise ApiError(
            415, "send a ClinicalTrials.gov record (application/json or application/xml) or a trial package zip "
            "(application/zip)"
        )  # fmt: skip
    return jsonify(study_json(entry)), 201 if created else 200, {"Location": _study_url(entry.id)}


@blueprint.get("/studies/<study_id>")
def get_study(study_id: str) -> Response:
    return jsonify(study_json(_study(study_id)))


@blueprint.get("/studies/<study_id>/bundle")
def get_study_bundle(study_id: str) -> Response:
    bundle = service().studies.bundle(_study(study_id))
    response = jsonify(bundle)
    response.mimetype = FHIR_JSON
    return response


def _study(study_id: str) -> StudyEntry:
    entry = service().store.study(study_id) if is_nct_id(study_id) else None
    if entry is None:
        raise ApiError(404, f"no study {study_id}" if is_nct_id(study_id) else "no such study")
    return entry


def _study_url(study_id: str) -> str:
    return f"/api/v1/studies/{study_id}"


def study_json(entry: StudyEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "title": entry.title,
        "source": entry.source,
        "uploaded": entry.uploaded,
        "url": _study_url(entry.id),
        "bundle": _study_url(entry.id) + "/bundle",
    }


# --- jobs ----------------------------------------------------------------------------------------


@blueprint.post("/jobs")
def submit_job() -> tuple[Response, int, dict[str, str]]:
    links = None
    try:
        if request.mimetype == "multipart/form-data":
            # A collect job: the request as the part "job", the links file (PHI) as the part "links".
            body = json.loads(request.form.get("job", "null"))
            links = request.files.get("links")
        else:
            body = request.get_json(silent=True) if request.mimetype == "application/json" else None
    except (RecursionError, ValueError):  # malformed JSON, or JSON nested a hundred thousand deep
        body = None
    if body is None:
        raise ApiError(415 if request.mimetype not in ("application/json", "multipart/form-data") else 400,
                       "send a JSON object (application/json), or for collect multipart/form-data with the parts "
                       "job (the JSON object) and links (LINKS.csv)")
    app_service = service()
    # The schema admits only configured server names: the API never takes a URL to call.
    job_request = check_job_request(body, app_service.settings.servers)
    if (job_request["kind"] == "collect") != (links is not None):
        raise ApiError(400, "a collect job sends its links file as the multipart part links (and only collect does)",
                       expression="links")
    if app_service.store.study(job_request["study"]) is None:
        message = f"no study {job_request['study']}; upload it first (POST /api/v1/studies)"
        raise ApiError(404, message, expression="study")
    job = app_service.store.add_job(
        job_request["kind"], job_request["study"], job_request["server"], job_request.get("options", {}), g.client
    )
    if links is not None:
        # Kept only for the job: the runner removes its private folder when the job ends, whatever happens.
        private = app_service.runner.private_folder(job.id)
        private.mkdir(parents=True, exist_ok=True)
        links.save(private / LINKS_FILE)
    app_service.runner.submit(job)
    return jsonify(job_json(job)), 202, {"Location": _job_url(job.id)}


@blueprint.get("/jobs")
def list_jobs() -> Response:
    raw = request.args.get("limit", "100")
    # isdigit() alone admits '²' and other digits int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "limit must be a whole number from 1 to 1000", expression="limit")
    return jsonify({"jobs": [job_json(job) for job in service().store.jobs(int(raw))]})


@blueprint.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return jsonify(job_json(_job(job_id)))


@blueprint.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> tuple[Response, int]:
    job = _job(job_id)
    if job.state not in (QUEUED, RUNNING):
        raise ApiError(409, f"job {job_id} has already ended ({job.state})")
    cancelled = service().runner.cancel(job_id)
    return jsonify(job_json(cancelled or job)), 202 if cancelled and cancelled.state == RUNNING else 200


@blueprint.get("/jobs/<job_id>/files/<name>")
def get_job_file(job_id: str, name: str) -> Response:
    job = _job(job_id)
    path = _files_folder(job) / name
    if not _FILE_NAME.match(name) or not path.is_file():
        raise ApiError(404, f"job {job_id} has no file {name}" if _FILE_NAME.match(name) else "no such file")
    return send_file(path, mimetype=file_type(name), as_attachment=False, download_name=name)


def _job(job_id: str) -> Job:
    job = service().store.job(job_id) if _JOB_ID.match(job_id) else None
    if job is None:
        raise ApiError(404, f"no job {job_id}" if _JOB_ID.match(job_id) else "no such job")
    return job


def _job_url(job_id: str) -> str:
    return f"/api/v1/jobs/{job_id}"


def _files_folder(job: Job) -> Path:
    folder: Path = service().runner.job_folder(job.id) / "files"
    return folder


def job_files(job: Job) -> list[dict[str, Any]]:
    folder = _files_folder(job)
    if not folder.is_dir():
        return []
    return [
        {"name": path.name, "size": path.stat().st_size, "url": f"{_job_url(job.id)}/files/{path.name}"}
        for path in sorted(folder.iterdir())
        if path.is_file() and _FILE_NAME.match(path.name)
    ]


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "study": job.study,
        "server": job.server,
        "options": job.options,
        "state": job.state,
        "submitted_by": job.submitted_by,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "cancel_requested": job.cancel_requested,
        "progress": job.progress,
        "summary": job.summary,
        "errors": job.errors,
        "files": job_files(job),
        "resumes": job.resumes,
        "resumed_by": job.resumed_by,
        "url": _job_url(job.id),
    }


# --- servers -------------------------------------------------------------------------------------


@blueprint.get("/servers")
def list_servers() -> Response:
    servers = service().settings.servers.values()
    return jsonify(
        {
            "servers": [
                {"name": server.name, "base_url": _without_userinfo(server.base_url), "auth": server.auth.type}
                for server in sorted(servers, key=lambda server: server.name)
            ]
        }
    )


def _without_userinfo(url: str) -> str:
    """The URL without any ``user:password@`` in it: never show a credential."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
