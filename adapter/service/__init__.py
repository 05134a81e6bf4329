"""The Flask service: ``create_app(settings)`` builds it; ``trialfhir serve`` runs it under waitress."""

from adapter.service.app import create_app

__all__ = ["create_app"]
