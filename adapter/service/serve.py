"""``trialfhir serve``: the service under waitress, a production WSGI server (never Flask's development one)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from adapter.service.app import close_app, create_app
from adapter.service.context import service
from adapter.service.keys import hash_key, new_key
from adapter.settings import Settings

log = logging.getLogger(__name__)

REQUEST_THREADS = 8


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C; running jobs are then interrupted (pushes resume at the next start)."""
    from waitress.server import create_server

    logging.getLogger("adapter.service").setLevel(logging.INFO)
    app = create_app(settings)
    service(app).start()  # resume interrupted pushes now, not at the first request
    options = settings.service
    server = create_server(
        app,
        host=host or options.host,
        port=options.port if port is None else port,
        threads=REQUEST_THREADS,
        # waitress refuses bodies past this before Flask reads them; Flask answers 413 below it.
        max_request_body_size=options.max_upload_bytes + 65536,
        ident="trialfhir",
        clear_untrusted_proxy_headers=True,
    )
    server.print_listen("trialfhir: serving on http://{}:{}/")
    sys.stdout.flush()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping")
    finally:
        server.close()
        if not close_app(app):
            # A worker stuck in C code would keep the interpreter from exiting (it joins its threads):
            # end the process; the store already holds every committed state, and the next start recovers.
            log.error("exiting with job(s) still running; they are marked interrupted at the next start")
            logging.shutdown()
            os._exit(1)


def key_instructions(name: str) -> str:
    """A new API key for ``name`` and the config lines that accept it (only the hash goes in the config)."""
    key = new_key()
    return (
        f"API key for {name} (give it to the caller; it is not stored anywhere):\n  {key}\n\n"
        f"Add to the config file:\n  service:\n    api_keys:\n      {name}: {hash_key(key)}\n"
    )
