"""One Spark session for every engine test that needs one: starting it costs seconds, so it is started once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A ``local[2]`` session; skipped only where no Java is installed, and never in CI (CI has Java 17)."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")) and not os.environ.get("CI"):
        pytest.skip("Spark needs Java, and none is installed")
    from adapter.engines import spark_engine

    session = spark_engine.session("local[2]")
    yield session
    session.stop()
