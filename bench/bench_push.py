"""Push throughput against a real FHIR server, side by side with a naive client and the server's own limit.

Four measurements in one run, each on its own fresh synthetic trial of the same shape
(one Organization, one ResearchStudy, and per subject a Patient, a ResearchSubject and
``--measurements`` Observations), so every write is a create:

- **push**: ``adapter.sync.push.push`` with a fresh journal (planning, hashing, journal
  commits and response checks included in the time);
- **limit**: the same bundles (same levels, same chunking), serialized beforehand and
  POSTed by a bare loop over one ``requests.Session`` at the same concurrency: what the
  server can take, with no client work;
- **naive**: one POST per resource with ``requests``, one after another, references
  rewritten to the ids the server assigned (what a first script does); run on a sample;
- **re-sync**: the push again, nothing changed.

    python bench/bench_push.py --server http://127.0.0.1:8080/fhir --subjects 5000 --measurements 18

Prints a table and writes it as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapter.client import FhirClient  # noqa: E402
from adapter.fhir.bundle import bundle_body, chunks, put_entry_bytes  # noqa: E402
from adapter.fhir.json import dumpb  # noqa: E402
from adapter.fhir.references import references  # noqa: E402
from adapter.sync.journal import Journal, journal_path  # noqa: E402
from adapter.sync.push import push  # noqa: E402
from tests.synthetic import trial  # noqa: E402

FHIR_JSON = "application/fhir+json"


def new_nct() -> str:
    return "NCT7" + uuid.uuid4().hex[:7]


def levels(resources: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The dependency levels push uses: one above the highest level referred to."""
    level_of: dict[str, int] = {}
    grouped: dict[int, list[dict[str, Any]]] = {}
    for resource in resources:
        key = f"{resource['resourceType']}/{resource['id']}"
        level = 1 + max((level_of.get(ref, -1) for ref in references(resource) - {key}), default=-1)
        level_of[key] = level
        grouped.setdefault(level, []).append(resource)
    return [grouped[level] for level in sorted(grouped)]


def server_limit(base_url: str, resources: list[dict[str, Any]], entries: int, max_bytes: int, workers: int) -> float:
    """POST pre-serialized transaction bundles, level by level, at ``workers`` concurrency; seconds taken."""
    prepared = []
    for level in levels(resources):
        items = [put_entry_bytes(r["resourceType"], r["id"], dumpb(r)) for r in level]
        prepared.append(
            [bundle_body(chunk) for chunk in chunks(items, max_entries=entries, max_bytes=max_bytes, size=len)]
        )
    with requests.Session() as session:
        session.headers.update({"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})

        def post(body: bytes) -> None:
            response = session.post(base_url, data=body, timeout=600)
            response.raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for bodies in prepared:
                list(pool.map(post, bodies))
        return time.perf_counter() - started


def naive(base_url: str, resources: list[dict[str, Any]]) -> float:
    """One POST per resource, in order, references rewritten to the server's ids; seconds taken."""
    server_ids: dict[str, str] = {}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (f"{v.split('/')[0]}/{server_ids[v]}" if k == "reference" and v in server_ids else rewrite(v))
                    for k, v in node.items()}  # fmt: skip
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    started = time.perf_counter()
    for resource in resources:
        body = rewrite({k: v for k, v in resource.items() if k != "id"})
        response = requests.post(f"{base_url}/{resource['resourceType']}", json=body, timeout=600)
        response.raise_for_status()
        server_ids[f"{resource['resourceType']}/{resource['id']}"] = response.json()["id"]
    return time.perf_counter() - started


def timed_push(
    base_url: str, resources: list[dict[str, Any]], folder: Path, nct: str, **options: Any
) -> tuple[float, int]:
    with FhirClient(base_url) as client, Journal(journal_path(folder, base_url, nct), base_url=base_url,
                                                  study=nct) as journal:  # fmt: skip
        started = time.perf_counter()
        report = push(iter(resources), client=client, journal=journal, study=nct, **options)
        seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"push failed: {report.failures[:3]}")
    return seconds, report.total("written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="http://127.0.0.1:8080/fhir")
    parser.add_argument(
        "--subjects", type=int, default=5000, help="subjects per trial (default 5000: 100,002 resources)"
    )
    parser.add_argument("--measurements", type=int, default=18, help="observations per subject")
    parser.add_argument("--naive-subjects", type=int, default=0, help="subjects for the naive sample (default: all)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--bundle-entries", type=int, default=250)
    parser.add_argument("--bundle-bytes", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=1, help="limit/push pairs, alternating which goes first")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    base = args.server.rstrip("/")

    def size(subjects: int) -> list[dict[str, Any]]:
        return list(trial(new_nct(), subjects, args.measurements))

    options = {
        "bundle_entries": args.bundle_entries,
        "bundle_bytes": args.bundle_bytes,
        "concurrency": args.concurrency,
    }
    rows: list[dict[str, Any]] = []

    def record(name: str, count: int, seconds: float) -> None:
        rows.append(
            {"run": name, "resources": count, "seconds": round(seconds, 2), "per_second": round(count / seconds, 1)}
        )
        print(f"{name:<10} {count:>8} resources {seconds:>9.2f} s {count / seconds:>9.1f} /s", flush=True)

    # Rounds alternate which goes first, so a server that slows as it fills (or a busy machine) favours neither.
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for run in ("limit", "push") if round_ % 2 == 0 else ("push", "limit"):
                data = size(args.subjects)
                if run == "limit":
                    limit = server_limit(base, data, args.bundle_entries, args.bundle_bytes, args.concurrency)
                    record("limit", len(data), limit)
                    continue
                nct = data[1]["identifier"][0]["value"]
                seconds, written = timed_push(base, data, Path(folder), nct, **options)
                record("push", written, seconds)
                resync, rewritten = timed_push(base, data, Path(folder), nct, **options)
                assert rewritten == 0
                record("re-sync", len(data), resync)
    naive_data = size(args.naive_subjects or args.subjects)
    record("naive", len(naive_data), naive(base, naive_data))

    totals = {}
    for run in ("limit", "push", "re-sync", "naive"):
        count = sum(row["resources"] for row in rows if row["run"] == run)
        seconds = sum(row["seconds"] for row in rows if row["run"] == run)
        totals[run] = {"resources": count, "seconds": round(seconds, 2), "per_second": round(count / seconds, 1)}
    summary = {
        "totals": totals,
        "push_vs_limit": round(totals["push"]["per_second"] / totals["limit"]["per_second"], 3),
        "push_vs_naive": round(totals["push"]["per_second"] / totals["naive"]["per_second"], 2),
        "resync_vs_push_time": round(totals["re-sync"]["seconds"] / totals["push"]["seconds"], 4),
    }
    print(json.dumps(summary))
    if args.out:
        settings = {k: v for k, v in vars(args).items() if k != "out"}
        args.out.write_text(json.dumps({"settings": settings, "runs": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
