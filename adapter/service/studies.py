"""The studies the service was given: files under ``<data_dir>/studies/<NCT id>/``.

A study is a ClinicalTrials.gov record (``record.json`` or ``record.xml``) or a
trial package (the folder ``package/``). An upload is unpacked and read in a
scratch folder first (a package is mapped in a dry run) and moved into place
only when it reads cleanly, so a bad upload never replaces a good study.
Reading and mapping are the engine's: ``adapter.sources.ctgov``, ``adapter.sync.inputs`` and ``adapter.studybundle``.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from adapter.errors import ConfigError, InputError
from adapter.fhir.constants import is_nct_id
from adapter.package import PackageMapping
from adapter.records import Study
from adapter.service.problems import ApiError
from adapter.service.store import JobStore, StudyEntry
from adapter.service.uploads import extract_zip
from adapter.sources.ctgov import XML_FORMAT, detect_format, parse_studies
from adapter.sources.loader import load_yaml
from adapter.sources.package_descriptor import Package, load_package
from adapter.studybundle import study_bundle
from adapter.sync.inputs import PushInput, open_input

RECORD, PACKAGE = "record", "package"
CHECK_SECONDS = 20.0  # how long an upload's dry run may read rows (its headers are always checked)
_UPLOAD_NAME = "upload"


class StudyFiles:
    """Uploaded studies on disk, listed in the job store."""

    def __init__(self, root: Path, store: JobStore) -> None:
        self.root = root
        self.store = store
        self._scratch = root / ".incoming"
        # Left by a process that died mid-upload: the data folder's lock makes this process the only user.
        shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch.mkdir(parents=True, exist_ok=True)
        self._installing = threading.Lock()  # one swap of study folders at a time

    def source(self, entry: StudyEntry) -> Path:
        """The record file or package folder of a stored study (what ``open_input`` takes)."""
        folder = self.root / entry.id
        if entry.source == PACKAGE:
            return folder / "package"
        return next(folder.glob("record.*"))

    def open(self, entry: StudyEntry) -> PushInput:
        """The study's mapped resources, streamed by the engine."""
        return open_input(self.source(entry))

    def bundle(self, entry: StudyEntry) -> dict[str, Any]:
        """The study's transaction Bundle (study-level resources), mapped without any server."""
        return study_bundle(self.record(entry))

    def record(self, entry: StudyEntry) -> Study:
        """The study's ClinicalTrials.gov record, read by the engine."""
        path = self.source(entry) if entry.source == RECORD else _package_record(self.source(entry))
        if path is None:
            raise ApiError(422, f"the trial package of {entry.id} has no ClinicalTrials.gov record to map")
        return parse_studies(path.read_bytes(), f"{entry.id}/{path.name}")[0]

    def save_record(self, data: bytes) -> tuple[StudyEntry, bool]:
        """Store a ClinicalTrials.gov record (one study); returns it and whether it is new."""
        suffix = ".xml" if detect_format(data, _UPLOAD_NAME) == XML_FORMAT else ".json"
        studies = parse_studies(data, _UPLOAD_NAME)
        if len(studies) != 1:
            raise ApiError(400, f"the record holds {len(studies)} studies; upload one at a time")
        scratch = self._new_scratch()
        (scratch / f"record{suffix}").write_bytes(data)
        return self._install(scratch, studies[0].nct_id, _title(studies[0]), RECORD)

    def save_package(self, archive: IO[bytes], *, max_unpacked_bytes: int) -> tuple[StudyEntry, bool]:
        """Store a trial package uploaded as a zip; returns it and whether it is new."""
        scratch = self._new_scratch()
        try:
            folder = scratch / "package"
            extract_zip(archive, folder, max_unpacked_bytes=max_unpacked_bytes)
            if not (folder / "package.yaml").is_file():
                raise ApiError(400, "the archive is not a trial package: it has no package.yaml")
            record = _package_record(folder)  # first: the engine would read whatever path the upload names
            package = load_package(folder)  # the engine checks the descriptor and the CSV headers' tables
            _dry_run(package)
            title = _title(parse_studies(record.read_bytes(), record.name)[0]) if record else None
        except (InputError, ConfigError) as error:
            shutil.rmtree(scratch, ignore_errors=True)
            raise _uploader_error(error, folder) from error
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return self._install(scratch, package.nct_id, title, PACKAGE)

    def _new_scratch(self) -> Path:
        scratch = self._scratch / uuid.uuid4().hex
        scratch.mkdir()
        return scratch

    def _install(self, scratch: Path, study_id: str, title: str | None, source: str) -> tuple[StudyEntry, bool]:
        """Move the checked upload into place, replacing the study's folder; the scratch folder never stays."""
        retired = self._scratch / f"old-{uuid.uuid4().hex}"
        try:
            if not is_nct_id(study_id):  # the readers check it; the folder name and the Location header depend on it
                raise ApiError(400, "the study's NCT number is not NCT followed by 8 digits")
            # Two uploads of one study at once would both move the old folder away (FileNotFoundError)
            # or find the other's folder in place: the swap and its record are one step.
            with self._installing:
                if self.store.active_jobs(study_id):
                    raise ApiError(409, f"study {study_id} has jobs queued or running; replace it when they end")
                target = self.root / study_id
                if target.exists():
                    target.rename(retired)
                scratch.rename(target)
                created = self.store.put_study(study_id, title, source)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # still there only when the install failed
            shutil.rmtree(retired, ignore_errors=True)
        entry = self.store.study(study_id)
        assert entry is not None
        return entry, created


def _uploader_error(error: InputError | ConfigError, folder: Path) -> Exception:
    """The error as the uploader sees it: files named inside the package, never the service's folders.

    A ``ConfigError`` naming a file of the upload (a mapping file the package brings) is the upload's
    fault, a 400; any other stays a ``ConfigError`` (the service's own mappings: a 500).
    """
    prefixes = {f"{folder}/", f"{folder.resolve()}/"}

    def inside(text: str) -> str:
        for prefix in prefixes:
            text = text.replace(prefix, "")
        return text

    if isinstance(error, InputError):
        return InputError(inside(error.reason), source=inside(error.source), line=error.line, field=error.field)
    if any(prefix in str(error) for prefix in prefixes):
        return InputError(inside(str(error)))
    return error


def _dry_run(package: Package, budget: float = CHECK_SECONDS) -> None:
    """Map the package as a push would, keeping nothing: a problem with a whole file raises ``InputError`` now.

    Wrong columns, the wrong delimiter, UTF-16, a missing file or a giant header would otherwise replace a
    good study with one no push can read. Bounded: the mapping streams (memory) and stops quietly after
    ``budget`` seconds (time); rows past that are still checked, one by one, when pushed.
    """
    deadline = time.monotonic() + budget
    for count, _ in enumerate(PackageMapping(package, on_reject=lambda reject: None)):
        if count % 1000 == 0 and time.monotonic() > deadline:
            return


def _package_record(package: Path) -> Path | None:
    """The ClinicalTrials.gov record a trial package names (``study.record`` in package.yaml), if any."""
    # The one strict loader: an upload's YAML may hold aliases, deep nesting or bytes that are not UTF-8.
    try:
        descriptor = load_yaml(package / "package.yaml")
    except ConfigError as error:
        raise InputError(str(error).removeprefix(f"{package / 'package.yaml'}: "), source="package.yaml") from error
    study = descriptor.get("study") if isinstance(descriptor, dict) else None
    name = study.get("record") if isinstance(study, dict) else None
    if not isinstance(name, str):
        return None
    path = (package / name).resolve()
    # The name comes from an upload: it must not lead out of the package.
    if not path.is_relative_to(package.resolve()) or not path.is_file():
        raise InputError("names a record outside the package or missing", source="package.yaml", field="study/record")
    return path


def _title(study: Study) -> str | None:
    return study.brief_title or study.official_title
