"""``push --engine spark`` (local[2]) against the real HAPI server: what the one-machine push writes, stage by stage."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections import Counter
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import pytest
import requests

from adapter.cli import main
from adapter.errors import AdapterError, ConfigError, InputError
from adapter.fhir.datatypes import reference
from adapter.fhir.ids import resource_id
from adapter.fhir.json import dumps
from adapter.package import map_package
from adapter.settings import Secret, ServerSettings, load_settings
from adapter.sources.ctgov import read_study
from adapter.studybundle import study_resources
from adapter.sync.journal import Journal, journal_path
from adapter.sync.spark_push import SHARED, STUDY, push_on_spark, stage_of
from tests.integration.sync.test_push import new_nct, server_state
from tests.synthetic import trial

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[3] / "fixtures" / "NCT04753476"


def _folder(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.mkdir()
    for resource in resources:
        with (path / f"{resource['resourceType']}.ndjson").open("a", encoding="utf-8") as out:
            out.write(dumps(resource) + "\n")
    return path


def _with_a_group_of_everyone(nct: str) -> list[dict[str, Any]]:
    """The synthetic trial, and a Group naming all its patients: it refers to several, so it is pushed last."""
    resources = list(trial(nct, subjects=7, measurements=3))
    patients = [r["id"] for r in resources if r["resourceType"] == "Patient"]
    group = {"resourceType": "Group", "id": resource_id("Group", nct, "enrolled"), "type": "person",
             "actual": True, "member": [{"entity": reference("Patient", p)} for p in patients]}  # fmt: skip
    return [*resources, group]


def test_partitions_push_what_the_one_machine_push_writes_and_a_rerun_writes_nothing(
    spark: SparkSession, fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path
) -> None:
    nct = new_nct()
    resources = _with_a_group_of_everyone(nct)
    folder = _folder(tmp_path / "mapped", resources)
    server = ServerSettings(name="test", base_url=fhir_base_url, bundle_entries=4, concurrency=2)
    stages = Counter(stage_of(r, 2) for r in resources)
    assert stages[STUDY] == 2 and stages[SHARED] == 1 and stages[0] > 0 and stages[1] > 0  # every stage used

    first = push_on_spark(folder, server, tmp_path / "journal", spark=spark, partitions=2)
    assert first.ok, first.failures
    assert {k: (s.create, s.written) for k, s in first.types.items()} == {
        kind: (n, n) for kind, n in Counter(r["resourceType"] for r in resources).items()}  # fmt: skip
    state = server_state(fhir_http, fhir_base_url, resources)
    for resource in resources:  # everything there, as sent, written once (the Group after every Patient)
        version, stored = state[f"{resource['resourceType']}/{resource['id']}"]
        assert (version, stored) == ("1", resource)

    journals = journal_path(tmp_path / "journal", fhir_base_url, nct).with_suffix(".spark")
    recorded = {}
    for path in sorted(journals.glob("*.sqlite")):
        with Journal(path, base_url=fhir_base_url, study=nct) as journal:
            recorded[path.stem] = journal.count()
    assert recorded == {"part-00000-of-00002": stages[0], "part-00001-of-00002": stages[1],
                        "shared": stages[SHARED], "study": stages[STUDY]}  # fmt: skip

    again = push_on_spark(folder, server, tmp_path / "journal", spark=spark, partitions=2)
    assert again.ok and again.total("written") == 0 and again.bundles == 0
    assert again.total("unchanged") == len(resources)
    assert server_state(fhir_http, fhir_base_url, resources) == state


def test_a_failed_partition_fails_the_run_and_the_same_push_resumes(
    spark: SparkSession, fhir_base_url: str, tmp_path: Path
) -> None:
    nct = new_nct()
    resources = list(trial(nct, subjects=6, measurements=2))
    folder = _folder(tmp_path / "mapped", resources)
    server = ServerSettings(name="test", base_url=fhir_base_url)
    journals = journal_path(tmp_path / "journal", fhir_base_url, nct).with_suffix(".spark")
    # A journal of another study where partition 1's is: that task stops before writing anything.
    with Journal(journals / "part-00001-of-00002.sqlite", base_url=fhir_base_url, study="NCT00000000"):
        pass
    with pytest.raises(AdapterError, match=r"part-00001-of-00002 failed: .* is the journal of study"):
        push_on_spark(folder, server, tmp_path / "journal", spark=spark, partitions=2)

    (journals / "part-00001-of-00002.sqlite").unlink()
    resumed = push_on_spark(folder, server, tmp_path / "journal", spark=spark, partitions=2)
    in_one = sum(1 for r in resources if stage_of(r, 2) == 1)
    assert resumed.ok and resumed.total("written") == in_one  # only the partition that had stopped
    assert resumed.total("unchanged") == len(resources) - in_one


class _Guard(BaseHTTPRequestHandler):
    """A reverse proxy to the real server: the CapabilityStatement for anyone, the rest with the bearer token."""

    upstream = ""
    token = ""
    counts: ClassVar[Counter[str]] = Counter()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        public = urlsplit(self.path).path.endswith("/metadata")
        if not public and self.headers.get("Authorization") != f"Bearer {self.token}":
            self.counts["refused"] += 1
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.counts["metadata" if public else "forwarded"] += 1
        passed = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "content-type", "prefer")}
        answer = requests.request(self.command, self.upstream + self.path, data=body, headers=passed, timeout=120)
        self.send_response(answer.status_code)
        for name in ("Content-Type", "Location", "ETag"):
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = _forward

    def log_message(self, *args: Any) -> None:
        pass


def test_stages_read_the_credentials_themselves_from_the_config_file(
    spark: SparkSession, fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path
) -> None:
    root, path = fhir_base_url.rsplit("/", 1)
    token = "t-" + uuid.uuid4().hex
    (tmp_path / "token").write_text(token + "\n")
    guard = type("Guard", (_Guard,), {"upstream": root, "token": token, "counts": Counter()})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), guard)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}/{path}"
        config = tmp_path / "config.yaml"
        config.write_text(f"servers:\n  guarded:\n    base_url: {url}\n"
                          f"    auth: {{type: bearer, token_file: {tmp_path / 'token'}}}\n")  # fmt: skip
        # The driver's own settings hold a wrong token: every write must use what the config file gives.
        configured = load_settings(config, env={}).server("guarded")
        server = replace(configured, auth=replace(configured.auth, token=Secret("wrong")))
        nct = new_nct()
        resources = list(trial(nct, subjects=4, measurements=2))
        folder = _folder(tmp_path / "mapped", resources)
        report = push_on_spark(folder, server, tmp_path / "journal", config_file=config, spark=spark, partitions=2)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert report.ok and report.total("written") == len(resources), report.failures
    assert guard.counts["refused"] == 0 and guard.counts["forwarded"] > 0
    assert all(found is not None for found in server_state(fhir_http, fhir_base_url, resources).values())


def test_the_seed_package_pushed_on_spark_reports_the_one_machine_counts(
    spark: SparkSession, fhir_base_url: str, cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study_level = {(r["resourceType"], r["id"]) for r in study_resources(read_study(SEED / "study.json"))}
    mapping = map_package(SEED)
    assert sum(1 for _ in mapping) and mapping.report.rejected == 0
    expected = Counter(mapping.report.resources) + Counter(kind for kind, _ in study_level)

    command = ["push", str(SEED), "--server", fhir_base_url, "--engine", "spark", "--partitions", "2", "--json"]
    assert main(command) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] and first["failures"] == [] and first["sourceRejects"] == 0
    assert {name: t["create"] for name, t in first["types"].items()} == dict(expected)
    assert {name: t["written"] for name, t in first["types"].items()} == dict(expected)
    journals = journal_path(cli_home, fhir_base_url, "NCT04753476").with_suffix(".spark")
    assert not (journals / "mapped").exists()  # the mapped patient data is gone with the push

    assert main(command) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(t["written"] for t in again["types"].values()) == 0 and again["bundles"] == 0
    assert {name: t["unchanged"] for name, t in again["types"].items()} == dict(expected)


def test_rejected_package_rows_are_reported_and_fail_the_run(
    spark: SparkSession, fhir_base_url: str, tmp_path: Path, cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "package"
    shutil.copytree(SEED, package)
    with (package / "measurements.csv").open("a", encoding="utf-8") as out:
        out.write("06-0048,D28,IL6,abc,pg/mL,2021-02-26T07:15,,,\n")
    command = ["push", str(package), "--server", fhir_base_url, "--engine", "spark", "--dry-run", "--json"]
    assert main(command) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["dryRun"] and report["sourceRejects"] == 1 and report["failures"] == []
    assert sum(report["sourceRejectsByCause"].values()) == 1


def test_a_bad_line_names_its_file_and_line_and_nothing_is_written(
    spark: SparkSession, fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path
) -> None:
    nct = new_nct()
    resources = list(trial(nct, subjects=2, measurements=2))
    folder = _folder(tmp_path / "mapped", resources)
    with (folder / "Observation.ndjson").open("a", encoding="utf-8") as out:
        out.write('{"resourceType": "Observation", "id": \n')
    server = ServerSettings(name="test", base_url=fhir_base_url)
    with pytest.raises(InputError, match=r"Observation\.ndjson:5: not JSON"):
        push_on_spark(folder, server, tmp_path / "journal", spark=spark, partitions=2)
    assert all(found is None for found in server_state(fhir_http, fhir_base_url, resources).values())


@pytest.mark.parametrize("options, message", [
    (["--delete-removed"], "--delete-removed needs the whole run's order"),
    (["--partitions", "0"], "--partitions must be 1 or more"),
])  # fmt: skip
def test_what_spark_push_refuses(options: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["push", str(SEED), "--server", "http://127.0.0.1:9/fhir", "--engine", "spark", *options]
    assert main(command) == 2
    assert message in capsys.readouterr().err


def test_spark_options_need_the_spark_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(SEED), "--server", "http://127.0.0.1:9/fhir", "--partitions", "2"]) == 2
    assert "are for --engine spark" in capsys.readouterr().err


def test_a_study_record_is_pushed_on_one_machine(tmp_path: Path) -> None:
    server = ServerSettings(name="test", base_url="http://127.0.0.1:9/fhir")
    with pytest.raises(ConfigError, match="push it without --engine spark"):
        push_on_spark(SEED / "study.json", server, tmp_path / "journal")
