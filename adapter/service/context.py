"""The ``Service`` the views share, and how a view finds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from flask import current_app

from adapter.service.runner import JobRunner
from adapter.service.store import JobStore
from adapter.service.studies import StudyFiles
from adapter.settings import Settings


@dataclass
class Service:
    """Everything the views share: settings, the job store, the study files, the job runner."""

    settings: Settings
    store: JobStore
    studies: StudyFiles
    runner: JobRunner
    lock: IO[str]

    def close(self) -> None:
        """Stop the workers (running jobs are interrupted), close the store, release the data folder."""
        self.runner.close()
        self.store.close()
        self.lock.close()


def service() -> Service:
    """The service of the app handling the current request."""
    found: Service = current_app.extensions["trialfhir"]
    return found
