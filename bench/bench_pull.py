"""Pull throughput and peak memory against a real FHIR server: by search, by $export, and a bare loop.

For each size (``--sizes``, in subjects; a subject is a Patient, a ResearchSubject and
``--measurements`` Observations, so 1250 and 5000 subjects give 25,002 and 100,002
resources) the synthetic trial ``NCT8<subjects>`` is pushed once (deterministic ids, a
journal under ``bench/work/``: a second run sends nothing), or ``SUBJECTS=NCT`` names a
trial of that shape already there (what ``bench_push.py`` leaves); then three measurements run,
each in a fresh subprocess that reports its seconds and its peak RSS (``VmHWM``):

- **search**: ``adapter.sync.pull.pull(mode="search")`` into a temporary folder;
- **bulk**: ``pull(mode="bulk")``: the study and its subjects by search, the
  Observations by Patient-level ``$export`` (polls, downloads, NDJSON lines);
- **bare**: the same search requests as the search pull (study, sponsor, subjects with
  their Patients, Observations and MedicationAdministrations of 50 patients at a time,
  200 a page) with a plain ``requests.Session``: each page's bytes are read and its
  ``next`` link found by a regular expression, nothing else is parsed or written.
  It sends ``Cache-Control: no-cache``, so HAPI never answers it from the search
  cache the pull before it filled: the bare loop gets no head start.

A fourth child (**floor**) only imports what a pull imports: the RSS every Python
process of this kind starts with. Usage:

    .venv/bin/python bench/bench_pull.py --server http://127.0.0.1:8091/fhir --sizes 1250 5000 \\
        --out bench/results/pull.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from measure import peak_rss_mib  # bench/ is the script's folder, so first on sys.path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work"
sys.path.insert(0, str(REPO))

NEXT_LINK = re.compile(rb'"relation"\s*:\s*"next"\s*,\s*"url"\s*:\s*"([^"]+)"')
CHUNK = 50  # patients per search, as pull.PATIENT_CHUNK
PAGE = 200  # entries per page, as pull.PAGE_SIZE


def nct_for(subjects: int) -> str:
    return f"NCT8{subjects:07d}"


# --- children: one measurement each, in a fresh process ----------------------------------------


def child(kind: str, server: str, nct: str, subjects: int, bulk_max_wait: float) -> dict[str, Any]:
    from adapter.client import FhirClient
    from adapter.sync.pull import pull

    started = time.perf_counter()
    resources, requests_made = 0, 0
    if kind in ("search", "bulk"):
        with tempfile.TemporaryDirectory() as out, FhirClient(server) as client:
            report = pull(client, nct, out, mode=kind, max_wait=bulk_max_wait)
            if not report.ok or report.mode != kind:
                raise SystemExit(f"pull by {kind} went wrong: mode {report.mode}, {report.problems}")
            resources = sum(report.counts.values())
    elif kind == "bare":
        resources, requests_made = bare_loop(server, nct, subjects)
    seconds = time.perf_counter() - started
    return {"run": kind, "resources": resources, "seconds": round(seconds, 2),
            "requests": requests_made, "peak_rss_mib": peak_rss_mib()}  # fmt: skip


def bare_loop(server: str, nct: str, subjects: int) -> tuple[int, int]:
    """The search pull's requests with plain ``requests``; (resources expected, requests sent)."""
    import requests

    from adapter.fhir.ids import resource_id

    study_id = resource_id("ResearchStudy", nct)
    patients = [resource_id("Patient", nct, "site-1", f"S{n:04d}") for n in range(1, subjects + 1)]
    queries: list[tuple[str, dict[str, str]]] = [
        ("ResearchStudy", {"identifier": f"https://clinicaltrials.gov|{nct}"}),
        ("Organization", {"_id": resource_id("Organization", f"Sponsor of {nct}")}),
        ("ResearchSubject", {"study": f"ResearchStudy/{study_id}", "_include": "ResearchSubject:individual"}),
    ]
    for kind in ("Observation", "MedicationAdministration"):
        queries += [(kind, {"patient": ",".join(patients[i : i + CHUNK])}) for i in range(0, len(patients), CHUNK)]
    sent = 0
    with requests.Session() as session:
        session.headers.update({"Accept": "application/fhir+json", "Cache-Control": "no-cache"})
        for kind, params in queries:
            response = session.get(f"{server}/{kind}", params={**params, "_count": str(PAGE)}, timeout=600)
            while True:
                sent += 1
                response.raise_for_status()
                found = NEXT_LINK.search(response.content)
                if not found:
                    break
                response = session.get(found.group(1).decode(), timeout=600)
    return -1, sent  # the parent fills in the resource count: the bare loop does not count


def floor() -> dict[str, Any]:
    import requests  # noqa: F401

    from adapter.client import FhirClient  # noqa: F401
    from adapter.sync.pull import pull  # noqa: F401

    return {"run": "floor", "peak_rss_mib": peak_rss_mib()}


# --- the parent: setup, children, load, machine ------------------------------------------------


def ensure_trial(server: str, subjects: int, measurements: int, given: str | None = None) -> str:
    """Push the synthetic trial for ``subjects`` unless the server has all of its subjects already.

    ``given`` names a trial of the same shape already on the server (say, one bench_push.py wrote); it is
    checked, never pushed.
    """
    from adapter.client import FhirClient
    from adapter.fhir.ids import resource_id
    from adapter.sync.journal import Journal
    from adapter.sync.push import push
    from tests.synthetic import trial

    nct = given or nct_for(subjects)
    journal_file = WORK / "pull-journal" / f"{nct}-{re.sub(r'[^A-Za-z0-9]+', '_', server)}.sqlite"
    journal_file.parent.mkdir(parents=True, exist_ok=True)
    with FhirClient(server) as client:
        have = client.count("ResearchSubject", {"study": f"ResearchStudy/{resource_id('ResearchStudy', nct)}"})
        if have == subjects:
            return nct
        if given:
            raise SystemExit(f"{given} has {have} subjects on {server}, not {subjects}")
        journal_file.unlink(missing_ok=True)  # the server does not have what the journal says
        print(f"pushing {nct}: {subjects} subjects", flush=True)
        with Journal(journal_file, base_url=server, study=nct) as journal:
            report = push(trial(nct, subjects, measurements), client=client, journal=journal, study=nct,
                          bundle_entries=250, concurrency=4)  # fmt: skip
        if not report.ok:
            raise SystemExit(f"setup push failed: {report.failures[:3]}")
    return nct


class LoadSampler(threading.Thread):
    """The 1-minute load average every few seconds, while measurements run."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[float] = []
        self._halt = threading.Event()  # not _stop: threading.Thread has a method of that name

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(os.getloadavg()[0])
            self._halt.wait(self.every)

    def take(self) -> dict[str, float]:
        found, self.samples = self.samples or [os.getloadavg()[0]], []
        return {"min": round(min(found), 2), "mean": round(statistics.fmean(found), 2), "max": round(max(found), 2)}

    def stop(self) -> None:
        self._halt.set()


def machine(server: str) -> dict[str, Any]:
    import requests

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))  # fmt: skip
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except (OSError, IndexError):
        java = "unknown"
    software = requests.get(f"{server}/metadata", timeout=60).json().get("software", {})
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(int(memory) / 1024**2, 1),
            "python": platform.python_version(), "java": java,
            "server": f"{software.get('name', '?')} {software.get('version', '?')} at {server}"}  # fmt: skip


def run_child(args: argparse.Namespace, kind: str, nct: str, subjects: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, "--server", args.server, "--nct", nct,
               "--subjects", str(subjects), "--measurements", str(args.measurements),
               "--bulk-max-wait", str(args.bulk_max_wait)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # Recorded, not fatal: an export the server does not finish in time is a result too.
        error = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"run": kind, "failed": error, "resources": 0, "seconds": round(time.perf_counter() - started, 2)}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="http://127.0.0.1:8080/fhir")
    parser.add_argument("--sizes", nargs="+", default=["1250", "5000"],
                        help="subjects per trial; SUBJECTS=NCT pulls that synthetic trial (already on the server, "
                             "e.g. from bench_push.py) instead of pushing NCT8<subjects>")  # fmt: skip
    parser.add_argument("--measurements", type=int, default=18, help="observations per subject")
    parser.add_argument("--runs", nargs="+", default=["search", "bulk", "bare"], choices=["search", "bulk", "bare"])
    parser.add_argument("--bulk-max-wait", type=float, default=3600.0,
                        help="seconds an export may take before the pull gives up (and cancels it): recorded as failed")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--child", choices=["search", "bulk", "bare", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--nct", help=argparse.SUPPRESS)
    parser.add_argument("--subjects", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.server = args.server.rstrip("/")
    if args.child == "floor":
        print(json.dumps(floor()))
        return
    if args.child:
        print(json.dumps(child(args.child, args.server, args.nct, args.subjects, args.bulk_max_wait)))
        return

    about = machine(args.server)
    print(json.dumps(about), flush=True)
    sizes = [(int(size.partition("=")[0]), size.partition("=")[2] or None) for size in args.sizes]
    trials = {subjects: ensure_trial(args.server, subjects, args.measurements, given) for subjects, given in sizes}
    floor_row = json.loads(subprocess.run([sys.executable, __file__, "--child", "floor"], capture_output=True,
                                          text=True, check=True).stdout)  # fmt: skip
    print(f"floor: peak RSS {floor_row['peak_rss_mib']} MiB", flush=True)
    sampler = LoadSampler()
    sampler.start()
    rows: list[dict[str, Any]] = []
    for subjects in trials:
        expected = 2 + subjects * (2 + args.measurements)
        for kind in args.runs:
            sampler.take()
            row = run_child(args, kind, trials[subjects], subjects)
            if "failed" in row:
                row.update(size=subjects, load=sampler.take())
                rows.append(row)
                print(f"{subjects:>6} subjects {kind:<7} FAILED after {row['seconds']} s: {row['failed']}", flush=True)
                continue
            if row["run"] == "bare":
                row["resources"] = expected
            elif row["resources"] != expected:
                raise SystemExit(f"{kind} pulled {row['resources']} resources, expected {expected}")
            row.update(size=subjects, per_second=round(row["resources"] / row["seconds"], 1), load=sampler.take())
            rows.append(row)
            print(f"{subjects:>6} subjects {kind:<7} {row['resources']:>8} resources {row['seconds']:>8.2f} s "
                  f"{row['per_second']:>8.1f} /s  peak RSS {row['peak_rss_mib']:>6.1f} MiB  load {row['load']}",
                  flush=True)  # fmt: skip
    sampler.stop()
    if args.out:
        settings = {k: v for k, v in vars(args).items() if k not in ("out", "child", "nct", "subjects")}
        document = {"machine": about, "settings": settings, "floor": floor_row, "runs": rows,
                    "command": " ".join([".venv/bin/python", *sys.argv])}  # fmt: skip
        args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
