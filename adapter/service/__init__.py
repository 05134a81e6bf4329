"""The Flask service: ``create_app(settings)`` builds it; ``trialfhir serve`` runs it under waitress."""

from adapter.service.app import close_app, create_app

__all__ = ["close_app", "create_app"]
