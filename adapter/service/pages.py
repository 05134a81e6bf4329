"""Outside the API: health and readiness probes, the OpenAPI document, and the status page."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template

from adapter import __version__
from adapter.service.context import service
from adapter.service.openapi import openapi_document
from adapter.service.problems import ApiError
from adapter.service.store import FINISHED

blueprint = Blueprint("pages", __name__, template_folder="templates")

REFRESH_SECONDS = 5


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process answers."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """Ready when the job store is open and answers."""
    if not service().store.ready():
        raise ApiError(503, "the job store is not open")
    return jsonify({"status": "ready"})


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(__version__, service().settings.servers))


@blueprint.get("/")
def status_page() -> str:
    from adapter.service.api import job_files

    app_service = service()
    jobs = app_service.store.jobs(50)
    return render_template(
        "status.html",
        version=__version__,
        refresh=REFRESH_SECONDS,
        studies=app_service.store.studies(),
        jobs=[(job, job_files(job)) for job in jobs],
        finished=FINISHED,
        servers=sorted(app_service.settings.servers),
    )
