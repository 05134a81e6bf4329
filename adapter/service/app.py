"""The app factory: ``create_app(settings)`` builds the Flask service around one settings object.

The app holds one ``Service`` (job store, study files, job runner) in
``app.extensions["trialfhir"]``, attached the way Flask extensions are
(``Service.init_app``): its workers start on the first request, and it closes
at interpreter exit or when ``close_app`` is called, whichever comes first. A
lock file keeps a second service off the same data folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from flask import Flask, g, request
from werkzeug.wrappers import Response

from adapter import __version__
from adapter.service import api, pages
from adapter.service.context import Service, service
from adapter.service.keys import key_name, presented_key
from adapter.service.problems import ApiError, loggable_request, register
from adapter.service.runner import JobFunction
from adapter.settings import Settings, load_settings

log = logging.getLogger(__name__)

# Endpoints anyone may call: a load balancer or orchestrator has no API key.
PUBLIC_ENDPOINTS = frozenset({"pages.healthz", "pages.readyz"})


def create_app(settings: Settings | None = None, *, kinds: Mapping[str, JobFunction] | None = None) -> Flask:
    """The Flask app; ``kinds`` replaces the job implementations (tests), the defaults run the engine."""
    settings = settings or load_settings()
    options = settings.service
    app_service = Service.open(settings, kinds=kinds)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = options.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app_service.init_app(app, probes=PUBLIC_ENDPOINTS)
    register(app)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(api.blueprint, url_prefix="/api/v1")
    app.before_request(_authenticate)
    app.after_request(_security_headers)
    app.after_request(_log_request)
    app.config["TRIALFHIR_VERSION"] = __version__
    if not options.api_keys:
        log.warning("no API keys are configured: every request but /healthz and /readyz will be refused")
    return app


def close_app(app: Flask) -> bool:
    """Stop ``app``'s workers and release its data folder now rather than at exit; a second call does nothing.

    False when a worker would not stop in time (a job stuck in C code): only the process's exit ends it.
    """
    return service(app).close()


def _authenticate() -> None:
    g.started = time.monotonic()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    name = key_name(presented_key(request.headers.get("Authorization")), service().settings.service.api_keys)
    if name is None:
        # The same answer for a missing and a wrong key.
        raise ApiError(401, "authentication required")
    g.client = name


# The status page is server-rendered HTML with one inline stylesheet and no script at all.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Job files and job records can hold patient data: no browser or proxy may keep a copy.
    "Cache-Control": "no-store",
}


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def _log_request(response: Response) -> Response:
    # Method, path and status only: bodies and query strings may hold data we must not log.
    elapsed = time.monotonic() - g.get("started", time.monotonic())
    log.info("%s %d %.3fs %s", loggable_request(), response.status_code, elapsed, g.get("client", "-"))
    return response
