"""The ``trialfhir`` command line: ``main(argv) -> int``.

Errors become one-line messages and exit codes here and nowhere else:
0 success, 1 the work ran but something was rejected or failed, 2 bad usage or
input, 3 a FHIR server error.

Why it is long: every command's parser (options, help and the examples ``--help``
shows) sits beside its short handler, which loads settings and calls one library
function; one file keeps the whole command line readable in one place.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adapter import __version__
from adapter.errors import AdapterError, ConfigError, InputError, MappingError, ServerError
from adapter.export.formats import ENGINES as EXPORT_ENGINES
from adapter.export.formats import FORMATS as EXPORT_FORMATS

log = logging.getLogger("adapter")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SERVER = 0, 1, 2, 3
SPARK_MASTER_HELP = ("--engine spark: where Spark runs, e.g. local[4] or spark://host:7077 (default: $SPARK_MASTER, "
                     "else the master spark-submit was given, else local[2])")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in each command's epilog as written."""


def _add_map(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    map_parser = commands.add_parser(
        "map",
        help="map trial data to FHIR R4 without any server",
        description="Map trial data to FHIR R4 resources. Nothing is sent anywhere.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir map study fixtures/NCT04753476/study.json -o bundle.json\n"
        "  trialfhir map package fixtures/NCT04753476 -o out/",
    )
    what = map_parser.add_subparsers(dest="what", required=True, metavar="{study,package}")
    study = what.add_parser(
        "study",
        help="a ClinicalTrials.gov record (API v2 JSON or legacy XML) to a transaction Bundle",
        description="Map a ClinicalTrials.gov record to one FHIR R4 transaction Bundle. "
        "The format (API v2 JSON, a v2 search page, or legacy XML) is detected from the content.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir map study fixtures/NCT04753476/study.json\n"
        "  curl -s .../NCT04753476 | trialfhir map study - -o bundle.json",
    )
    study.add_argument("path", metavar="PATH", help="the record file, or - for standard input")
    study.add_argument("-o", "--output", metavar="FILE", help="write the Bundle here (default: standard output)")
    study.add_argument("--json", action="store_true",
                       help="print what was mapped as JSON (the studies and the Bundle's entries); needs -o")
    study.set_defaults(handler=run_map_study)

    package = what.add_parser(
        "package",
        help="a trial package folder to NDJSON per resource type",
        description="Map a trial package (study record, package.yaml, subjects/measurements/"
        "administrations CSV) to FHIR R4 NDJSON files, a rejects file and a report.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir map package fixtures/NCT04753476 -o out/\n"
        "  trialfhir map package fixtures/NCT04753476 -o out/ --engine spark --spark-master local[4]",
    )
    package.add_argument("path", metavar="DIR", help="the trial package folder")
    package.add_argument("-o", "--output", metavar="OUTDIR", default="mapped", help="output folder (default: ./mapped)")
    package.add_argument("--strict", action="store_true", help="stop at the first bad row instead of rejecting it")
    package.add_argument("--json", action="store_true", help="print the report (report.json's content) as JSON")
    package.add_argument("--engine", choices=("python", "spark"), default="python",
                         help="python: one process (default); spark: subjects partitioned, each partition mapped by "
                         "the same mappers on Apache Spark (needs Java and pip install 'trialfhir[spark]'; "
                         "see docs/scale.md)")
    package.add_argument("--spark-master", metavar="URL", help=SPARK_MASTER_HELP)
    package.set_defaults(handler=run_map_package)


def run_map_study(args: argparse.Namespace) -> int:
    """``trialfhir map study``: a ClinicalTrials.gov record (or search page) to one transaction Bundle."""
    from pathlib import Path

    from adapter.fhir.json import dumps
    from adapter.sources.ctgov import read_studies
    from adapter.studybundle import studies_bundle

    if args.json and not args.output:
        raise InputError("--json prints a summary, so the Bundle needs a file: add -o FILE", field="--json")
    studies = read_studies(args.path)
    if not studies:
        raise InputError("holds no studies", source="<stdin>" if args.path == "-" else args.path)
    bundle = studies_bundle(studies)
    text = dumps(bundle) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot write: {error.strerror or error}", source=args.output) from error
    else:
        sys.stdout.write(text)
    log.info("mapped %d stud%s", len(studies), "y" if len(studies) == 1 else "ies")
    if args.json:
        _say(args, {"studies": [study.nct_id for study in studies], "entries": len(bundle["entry"]),
                    "output": args.output}, "")
    return EXIT_OK


def run_map_package(args: argparse.Namespace) -> int:
    """``trialfhir map package``: NDJSON per resource type, rejects.ndjson and report.json in OUTDIR."""
    from adapter.package import write_mapped_package
    from adapter.progress import terminal_progress
    from adapter.sources.package_csv import reject_summary

    if args.spark_master and args.engine != "spark":
        raise ConfigError(f"--spark-master is for --engine spark, not {args.engine}")
    if args.engine == "spark":  # no progress: the work is in Spark's tasks
        from adapter.engines import spark_package

        report = spark_package.write_mapped_package(args.path, args.output, master=args.spark_master,
                                                    strict=args.strict)
    else:
        with terminal_progress(sys.stderr, f"map {args.path}", enabled=not args.json) as progress:
            report = write_mapped_package(args.path, args.output, strict=args.strict, progress=progress)
    lines = [f"{name}: read {count.read}, mapped {count.mapped}, rejected {count.rejected}"
             for name, count in report.files.items()]
    lines.append(", ".join(f"{kind}: {n}" for kind, n in report.resources.items()) + f" -> {args.output}")
    _say(args, {**report.as_json(), "output": args.output}, "\n".join(lines))
    if report.rejected:
        print(f"trialfhir: {report.rejected} row(s) rejected; see {args.output}/rejects.ndjson; by cause:",
              file=sys.stderr)
        print("\n".join(reject_summary(report.causes)), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _add_push(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = commands.add_parser(
        "push",
        help="sync a trial to a FHIR server: idempotent, resumable",
        description="Write a trial's mapped resources to a FHIR R4 server with PUT to deterministic ids, "
        "in transaction bundles, level by level. A journal per server and study makes a re-run write only "
        "what changed and a killed run resume where it stopped. Exit code 1 when any resource failed.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir push fixtures/NCT04753476 --server http://127.0.0.1:8080/fhir --dry-run\n"
        "  trialfhir push fixtures/NCT04753476/study.json --server hospital --json\n"
        "  trialfhir push mapped/ --server hospital --config servers.yaml --full\n"
        "  trialfhir push fixtures/NCT04753476 --server hospital --engine spark --spark-master local[4]\n\n"
        "Servers, auth, bundle sizes and concurrency come from the config file (--config, ADAPTER_CONFIG or "
        "~/.config/trialfhir/config.yaml); see docs/push.md.",
    )
    push.add_argument("source", metavar="PACKAGE_OR_STUDY", help="a trial package folder, a study record, "
                      "or a folder of mapped <Type>.ndjson files")  # fmt: skip
    push.add_argument("--server", required=True, metavar="NAME_OR_URL", help="a server named in the config, or a URL")
    push.add_argument("--config", metavar="FILE", help="the config file (YAML or TOML)")
    push.add_argument("--dry-run", action="store_true", help="print the plan (create/update/unchanged); write nothing")
    push.add_argument("--json", action="store_true", help="print the summary as JSON")
    push.add_argument("--removed-keys", metavar="FILE",
                      help="write the keys of resources removed from the source to FILE, one per line "
                      "(the summary counts them)")
    push.add_argument("--full", action="store_true", help="write everything, whatever the journal says")
    push.add_argument("--delete-removed", action="store_true",
                      help="delete from the server what was pushed before but is gone from the source")  # fmt: skip
    push.add_argument("--engine", choices=("python", "spark"), default="python",
                      help="python: one process (default); spark: patients partitioned, each partition pushed by a "
                      "Spark task with its own journal (a trial package is mapped on Spark first; needs Java and "
                      "pip install 'trialfhir[spark]'; see docs/scale.md)")
    push.add_argument("--spark-master", metavar="URL", help=SPARK_MASTER_HELP)
    push.add_argument("--partitions", type=int, metavar="N",
                      help="--engine spark: how many partitions of patients (default: Spark's default parallelism); "
                      "keep N from run to run: the journals are per partition")
    push.set_defaults(handler=run_push)


def run_push(args: argparse.Namespace) -> int:
    """``trialfhir push``: plan against the journal, write what changed, report per type."""
    from pathlib import Path

    from adapter.settings import load_settings
    from adapter.sync.inputs import open_input
    from adapter.sync.push import push_source
    from adapter.sync.report import format_report, terminal_progress

    if args.engine != "spark" and (args.spark_master or args.partitions):
        raise ConfigError(f"--spark-master and --partitions are for --engine spark, not {args.engine}")
    if args.engine == "spark" and args.delete_removed:
        raise ConfigError("--delete-removed needs the whole run's order (what refers to a resource deleted first), "
                          "which partitions pushed apart do not have: delete with --engine python")
    if args.partitions is not None and args.partitions < 1:
        raise ConfigError("--partitions must be 1 or more")
    settings = load_settings(args.config)
    server = settings.server(args.server)
    if args.engine == "spark":  # no progress bar: the work is in Spark's tasks
        from adapter.sync.spark_push import push_on_spark

        report = push_on_spark(args.source, server, settings.journal_dir, config_file=settings.config_file,
                               master=args.spark_master, partitions=args.partitions, full=args.full,
                               dry_run=args.dry_run)
    else:
        source = open_input(args.source)
        with terminal_progress(sys.stderr, enabled=not args.json) as progress:
            report = push_source(
                source,
                server,
                settings.journal_dir,
                full=args.full,
                dry_run=args.dry_run,
                delete_removed=args.delete_removed,
                progress=progress.advance,
                on_planned=progress.start,
            )
    if args.removed_keys:
        report.write_removed(Path(args.removed_keys))
    print(json.dumps(report.to_json(args.removed_keys), indent=2) if args.json else format_report(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _add_pull(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = commands.add_parser(
        "pull",
        help="pull a study back from a FHIR server into NDJSON files (search or Bulk Data $export)",
        description="Find the study by its NCT number and write it, its Group, Organizations, Locations, subjects, "
        "Patients, Observations and MedicationAdministrations as <Type>.ndjson files with a manifest.json. "
        "By default Bulk Data $export is used where the server offers it, search elsewhere. An interrupted "
        "$export resumes from the status URL saved in the output folder. Exit code 1 when a count check failed.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir pull --server http://127.0.0.1:8080/fhir --study NCT04753476 -o pulled/\n"
        "  trialfhir pull --server hospital --study NCT04753476 -o pulled/ --search --since 2024-05-01T00:00:00Z\n"
        "  trialfhir pull --server hospital --study NCT04753476 -o pulled/ --cancel\n\nSee docs/export.md.",
    )
    pull.add_argument("--server", required=True, metavar="NAME_OR_URL", help="a server named in the config, or a URL")
    pull.add_argument("--study", required=True, metavar="NCT_ID", help="the study's NCT number")
    pull.add_argument("-o", "--output", required=True, metavar="DIR", help="the output folder")
    pull.add_argument("--config", metavar="FILE", help="the config file (YAML or TOML)")
    how = pull.add_mutually_exclusive_group()
    how.add_argument("--bulk", dest="mode", action="store_const", const="bulk", help="use $export or fail")
    how.add_argument("--search", dest="mode", action="store_const", const="search", help="use search only")
    how.add_argument("--cancel", dest="mode", action="store_const", const="cancel",
                     help="cancel the $export whose status URL the folder holds, and stop")  # fmt: skip
    pull.add_argument("--since", metavar="INSTANT", help="only resources changed after this FHIR instant")
    pull.add_argument("--page-size", type=int, default=200, metavar="N",
                      help="matches per search page, sent as _count (default 200); a server that sends one page "
                      "and no next link needs N at least as large as its biggest search")
    pull.add_argument("--json", action="store_true", help="print the report as JSON")
    pull.set_defaults(handler=run_pull, mode="auto")


def run_pull(args: argparse.Namespace) -> int:
    """``trialfhir pull``: the study's resources into an NDJSON folder."""
    from adapter.client import FhirClient
    from adapter.progress import terminal_progress
    from adapter.settings import load_settings
    from adapter.sync.bulk import cancel_saved_export
    from adapter.sync.pull import pull

    server = load_settings(args.config).server(args.server)
    with FhirClient.from_settings(server) as client:
        if args.mode == "cancel":
            done = cancel_saved_export(client, args.output)
            _say(args, {"cancelled": done, "output": args.output},
                 "export cancelled" if done else f"no export to cancel in {args.output}")
            return EXIT_OK
        with terminal_progress(sys.stderr, f"pull {args.study}", enabled=not args.json) as progress:
            report = pull(client, args.study, args.output, mode=args.mode, since=args.since,
                          page_size=args.page_size, progress=progress)
    _say(args, report.as_json(), "\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_FAILED


def _add_collect(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    collect = commands.add_parser(
        "collect",
        help="collect enrolled subjects' hospital data (labs, vitals, drug administrations) into the trial",
        description="Find each subject of LINKS.csv on the hospital's FHIR server, read the observations and "
        "administrations the package's tests and products accept, convert them to the trial's units, assign "
        "them to visits and write them as package rows with their sources, rejects.ndjson, report.json and "
        "reconciliation.csv (beside the package's EDC values). LINKS.csv is PHI: it is read, never copied. "
        "A second run into the same folder asks only for what changed and writes changes.csv.",
        formatter_class=_Formatter,
        epilog="example:\n  trialfhir collect trial/ --server hospital --links LINKS.csv -o collected/\n\n"
        "LINKS.csv columns: subject_id,identifier_system,identifier_value. See docs/collect.md.",
    )
    collect.add_argument("package", metavar="PACKAGE", help="the trial package folder (package.yaml, subjects.csv)")
    collect.add_argument("--server", required=True, metavar="NAME_OR_URL",
                         help="a server named in the config, or a URL")
    collect.add_argument("--links", required=True, metavar="LINKS.csv", help="the site's linkage table")
    collect.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the output folder (and its journal)")
    collect.add_argument("--since", metavar="DATETIME", help="only resources changed since this FHIR instant")
    collect.add_argument("--config", metavar="FILE", help="the config file (YAML or TOML)")
    collect.add_argument("--json", action="store_true", help="print the report as JSON")
    collect.add_argument("--patients-per-search", type=int, default=1, metavar="N",
                         help="patients ORed into one search (default 1: faster on HAPI's JPA server)")
    collect.set_defaults(handler=run_collect)


def run_collect(args: argparse.Namespace) -> int:
    """``trialfhir collect``: hospital values of enrolled subjects into package rows."""
    from adapter.client import FhirClient
    from adapter.collect.run import collect
    from adapter.settings import load_settings

    server = load_settings(args.config).server(args.server)
    with FhirClient.from_settings(server) as client:
        report = collect(args.package, client, args.links, args.output, since=args.since,
                         patients_per_search=max(1, args.patients_per_search))
    data = report.as_json()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"subjects: {data['subjects']}; {data['resources_fetched']} resources read in "
              f"{data['search_requests']} search requests; reconciliation: {data['reconciliation']}")
        print(f"written to {args.output}/ (report.json has the counts per test and product)")
    return EXIT_OK


def _add_export(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export",
        help="export a pulled NDJSON folder as NDJSON, CSV or Parquet tables, or CDISC SDTM",
        description="Write the resources of an NDJSON folder (as 'trialfhir pull' makes it) in a standard form: "
        "ndjson (Bulk Data layout with a manifest), csv or parquet (one table per resource type), or sdtm "
        "(SDTMIG 3.4: TS, TA, TE, TV, TI, DM, SE, SV, DS, EX, EC, CM, LB, VS, RS, MB, RE, PR, SUPPDM, those with "
        "records, as CSV and SAS XPORT v5, with define.xml and metadata.json).",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir export pulled/ --format sdtm -o sdtm/\n"
        "  trialfhir export pulled/ --format parquet -o tables/\n"
        "  trialfhir export pulled/ --format csv --engine spark --spark-master local[4] -o tables/\n\n"
        "See docs/export.md and docs/scale.md.",
    )
    export.add_argument("folder", metavar="DIR", help="the NDJSON folder")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the output folder")
    export.add_argument("--study", metavar="NCT_ID", help="the study, when the folder holds several")
    export.add_argument("--allow-incomplete", action="store_true",
                        help="export a pull whose manifest records problems (or whose counts do not match its files); "
                        "the output's export.json then says it is incomplete")
    export.add_argument("--raw-csv", action="store_true",
                        help="write CSV cells exactly as they are; by default a text cell starting with = + - @ "
                        "(or a tab or CR) gets a leading ' so a spreadsheet shows it instead of running it")
    export.add_argument("--terms", type=Path, metavar="FILE",
                        help="sdtm: a trial package's own sdtm-terms.yaml (tests and units in the format of "
                        "mappings/sdtm-terms.yaml) that adds to or replaces the project's; test codes and units the "
                        "CDISC CT subset lacks become sponsor-extended terms in define.xml")
    export.add_argument("--json", action="store_true", help="print the report (files, counts, left out) as JSON")
    export.add_argument("--engine", choices=EXPORT_ENGINES, default="duckdb",
                        help="what computes csv/parquet tables: the SQL on FHIR views of mappings/views on DuckDB "
                        "(default, in process), on Apache Spark (needs Java and pip install 'trialfhir[spark]'), "
                        "or the one-process Python writer (see docs/scale.md)")
    export.add_argument("--spark-master", metavar="URL", help=SPARK_MASTER_HELP)
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """``trialfhir export``: an NDJSON folder in one standard format."""
    from adapter.export.exporter import export
    from adapter.progress import terminal_progress

    # Only the ndjson format streams resource by resource; the others say what they are doing.
    unit = "res" if args.format == "ndjson" else None
    with terminal_progress(sys.stderr, f"export {args.format}", unit=unit, enabled=not args.json) as progress:
        report = export(args.folder, args.output, args.format, nct_id=args.study,
                        allow_incomplete=args.allow_incomplete, raw_csv=args.raw_csv, engine=args.engine,
                        spark_master=args.spark_master, sdtm_terms=args.terms, progress=progress)
    _say(args, report.as_json(), "\n".join(report.lines()))
    return EXIT_OK


def _add_check_sdtm(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check-sdtm",
        help="check a written SDTM folder offline: required variables, keys, --SEQ, ISO 8601, CT, XPT, define.xml",
        description="Read every .xpt of an SDTM folder back and check the rules a reviewer's first pass applies; "
        "each finding names its rule and where the rule comes from (SDTMIG 3.4, SAS XPORT v5, Define-XML 2.1). "
        "Exit status 1 when anything is found. Nothing leaves the machine.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir export pulled/ --format sdtm -o sdtm/\n  trialfhir check-sdtm sdtm/\n\n"
        "See docs/export.md.",
    )
    check.add_argument("folder", metavar="DIR", help="the SDTM folder (as 'trialfhir export --format sdtm' writes it)")
    check.add_argument("--terms", type=Path, metavar="FILE",
                       help="the package's own sdtm-terms.yaml the export was given (its terms are sponsor-extended)")
    check.add_argument("--json", action="store_true", help="print the findings and the rules they break as JSON")
    check.set_defaults(handler=run_check_sdtm)


def run_check_sdtm(args: argparse.Namespace) -> int:
    """``trialfhir check-sdtm``: the conformance rules on a written SDTM folder."""
    from adapter.export.sdtm.check import RULES, check_folder

    problems = check_folder(args.folder, args.terms)
    rules = {rule: RULES[rule] for rule in sorted({p[1 : p.index("]")] for p in problems})}
    text = [*problems, *(f"[{rule}] {source}" for rule, source in rules.items()),
            f"{len(problems)} finding(s) in {args.folder}"]
    _say(args, {"folder": args.folder, "findings": problems, "rules": rules}, "\n".join(text))
    return EXIT_FAILED if problems else EXIT_OK


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP service (API, job runner, status page) under waitress",
        description="Run the trialfhir service: a JSON API under /api/v1 to upload studies and run push, pull and "
        "export jobs against the configured FHIR servers, and a status page at /. Every endpoint but /healthz and "
        "/readyz needs an API key; keys are kept in the config file's service section as SHA-256 hashes.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir serve --new-key etl          # make a key and the config line for it\n"
        "  trialfhir serve --config service.yaml --port 8000\n\nSee docs/service.md.",
    )
    serve.add_argument("--config", metavar="FILE", help="the config file (YAML or TOML)")
    serve.add_argument("--host", help="address to listen on (default: service.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: service.port, 8000; 0 picks a free one)")
    serve.add_argument("--new-key", metavar="NAME", help="print a new API key for NAME and its config line, then exit")
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """``trialfhir serve``: the service until SIGTERM or Ctrl-C."""
    from adapter.service.serve import key_instructions, serve
    from adapter.settings import load_settings

    if args.new_key:
        print(key_instructions(args.new_key))
        return EXIT_OK
    serve(load_settings(args.config), host=args.host, port=args.port)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trialfhir",
        description="Move clinical-trial data into and out of FHIR R4 servers.",
        formatter_class=_Formatter,
        epilog="examples:\n  trialfhir map study fixtures/NCT04753476/study.json -o bundle.json\n"
        "  trialfhir map package fixtures/NCT04753476 -o out/\n"
        "  trialfhir push fixtures/NCT04753476 --server http://127.0.0.1:8080/fhir\n"
        "  trialfhir pull --server http://127.0.0.1:8080/fhir --study NCT04753476 -o pulled/\n"
        "  trialfhir export pulled/ --format sdtm -o sdtm/\n"
        "  trialfhir serve --config service.yaml\n\n"
        "Run 'trialfhir COMMAND --help' for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"trialfhir {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to standard error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_map(commands)
    _add_push(commands)
    _add_pull(commands)
    _add_collect(commands)
    _add_export(commands)
    _add_check_sdtm(commands)
    _add_serve(commands)
    return parser


def _say(args: argparse.Namespace, data: Mapping[str, Any], text: str) -> None:
    """A command's result on standard output: ``data`` as JSON with ``--json``, else ``text`` for a person."""
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)


def server_problem(error: ServerError) -> str:
    """A server error in words a user can act on: the usual ways of pointing at the wrong place first."""
    text, base = str(error), error.url.split("/metadata")[0]
    if error.status == 0 and ("WRONG_VERSION_NUMBER" in text or "wrong version number" in text):
        return f"TLS failed at {base}: the server seems to speak plain HTTP there; try http:// (or check the port)"
    if error.status == 0 and "CERTIFICATE_VERIFY_FAILED" in text:
        return f"TLS failed at {base}: its certificate is not trusted (set ca_bundle for this server in the config)"
    if error.status == 0 and ("Connection refused" in text or "Failed to establish" in text):
        return f"nothing answers at {base} (connection refused, or no such host): is the server running, the URL right?"
    if error.status == 0 and "timed out" in text:
        return f"{base} did not answer in time; the server may be overloaded, or a firewall drops the connection"
    if error.status == 404 and error.url.rstrip("/").endswith("/metadata"):
        return (f"{base} is not a FHIR base URL: GET {error.url} answered 404 (a FHIR base serves /metadata; "
                "it often ends in /fhir)")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="trialfhir: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except (InputError, MappingError, ConfigError) as error:
        return _failed(args, EXIT_USAGE, "error", str(error))
    except ServerError as error:
        return _failed(args, EXIT_SERVER, "server error", server_problem(error))
    except AdapterError as error:
        return _failed(args, EXIT_FAILED, "error", str(error))
    except KeyboardInterrupt:
        return _failed(args, 130, "interrupted", "")


def _failed(args: argparse.Namespace, code: int, kind: str, message: str) -> int:
    """The one-line message on standard error; with ``--json`` also ``{"error", "kind", "exit"}`` on standard output."""
    print(f"trialfhir: {kind}: {message}" if message else f"trialfhir: {kind}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": message or kind, "kind": kind, "exit": code}, indent=2))
    return code
