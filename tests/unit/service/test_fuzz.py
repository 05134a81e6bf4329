"""Fuzzing the upload and the package readers (issue 13): hostile input gets a 4xx or a reject, never a crash.

Hypothesis generates archives and package files around the seed trial's: member names that climb,
collide or run long, bytes that are not zip, CSV text with every separator, quote, control and
formula character, package.yaml with aliases, tabs and stray bytes. Each case is bounded: a
deadline for its time, tracemalloc's peak for its memory, and a small unpacked-size limit.
"""

from __future__ import annotations

import io
import resource
import tempfile
import tracemalloc
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.errors import ConfigError, InputError
from adapter.package import map_package
from adapter.service import close_app, create_app
from tests.unit.service.conftest import AUTH, SEED_STUDY, service_settings
from tests.unit.sources.trialpackage import ADMINISTRATIONS_HEADER as ADMINISTRATIONS
from tests.unit.sources.trialpackage import MEASUREMENTS_HEADER as MEASUREMENTS
from tests.unit.sources.trialpackage import SUBJECT_ROWS, SUBJECTS_HEADER, write_package

FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=10),  # generous: the machine is shared; a hang or a blow-up takes far longer
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_PEAK = 64 * 1024 * 1024  # bytes a single case may hold at once
FILES = ("package.yaml", "study.json", "subjects.csv", "measurements.csv", "administrations.csv")
SEED = {name: (SEED_STUDY.parent / name).read_bytes() for name in FILES}

hostile_text = st.text(
    alphabet=st.sampled_from([*"abcSJMF0123456789-:T.,;\"'= +@\t\r\n\x00\\/é", "\ufeff", "\udcff"]),
    max_size=300,
)
member_names = st.one_of(
    st.sampled_from(list(SEED)),
    st.sampled_from(["../evil", "a", "a/b", "/abs", "C:/x", "dir\\x", "x" * 300, "pkg/package.yaml", "d/"]),
    st.text(alphabet="ab./_-", min_size=1, max_size=20),
)


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _mutated(data: bytes, cut: int, insert: bytes) -> bytes:
    at = cut % (len(data) + 1)
    return data[:at] + insert + data[at:]


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    """A zip near a real package (members mutated, added, renamed), or bytes near a zip."""
    members: dict[str, bytes] = {}
    for name, data in SEED.items():
        if draw(st.booleans()):
            members[name] = data if draw(st.booleans()) else _mutated(data, draw(st.integers(0, 5000)),
                                                                       draw(hostile_text).encode("utf-8", "replace"))
    for _ in range(draw(st.integers(0, 3))):
        members[draw(member_names)] = draw(st.binary(max_size=200))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    raw = buffer.getvalue()
    if draw(st.integers(0, 4)) == 0:  # sometimes damage the archive itself
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=16)) + raw[at + 1:]
    return raw


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("fuzz") / "data"
    app = create_app(service_settings(data, max_unpacked_bytes=2_000_000))
    yield app, data
    close_app(app)


@FUZZ
@given(archive=archives())
def test_an_upload_gets_a_4xx_or_is_stored_never_a_500(fuzz_app, archive: bytes) -> None:  # type: ignore[no-untyped-def]
    app, data = fuzz_app
    before = _rss()
    response = app.test_client().post("/api/v1/studies", data=archive, content_type="application/zip", headers=AUTH)
    assert response.status_code in (200, 201, 400, 409, 413), response.json
    # The process's peak resident memory: a case that blew up (an alias bomb took 1.5 GB) would raise it.
    assert _rss() - before < MAX_PEAK
    assert list((data / "studies" / ".incoming").iterdir()) == []  # nothing left behind, whatever happened


@FUZZ
@given(
    subjects=st.one_of(hostile_text, st.builds(lambda rows: "\n".join([SUBJECTS_HEADER, *SUBJECT_ROWS, rows]),
                                               hostile_text)),
    measurements=st.one_of(hostile_text, st.builds(lambda row: MEASUREMENTS + "\n" + row, hostile_text)),
    administrations=st.builds(lambda row: ADMINISTRATIONS + "\n" + row, hostile_text),
)  # fmt: skip
def test_the_package_readers_reject_or_refuse_never_crash(subjects: str, measurements: str, administrations: str) -> None:  # noqa: E501
    with tempfile.TemporaryDirectory() as folder:
        path = write_package(Path(folder), subjects=subjects.encode("utf-8", "surrogateescape"),
                             measurements=measurements.encode("utf-8", "surrogateescape"),
                             administrations=administrations.encode("utf-8", "surrogateescape"))  # fmt: skip
        tracemalloc.start()
        try:
            mapping = map_package(path)
            try:
                for _ in mapping:
                    pass
            except (InputError, ConfigError):
                return  # a whole file is wrong: refused with its name, which is the point
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < MAX_PEAK
        for name, count in mapping.report.files.items():
            assert count.read == count.mapped + count.rejected, name  # every row accounted for
