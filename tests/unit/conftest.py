"""Fixtures shared by the offline unit tests."""

from __future__ import annotations

import pytest


class Sleeps(list[float]):
    """Records the waits instead of waiting (injected as a client's or a pull's ``sleep``)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
