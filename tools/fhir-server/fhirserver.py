#!/usr/bin/env python3
"""Build, start and stop the test HAPI FHIR server (standard library only).

    python3 tools/fhir-server/fhirserver.py build
    python3 tools/fhir-server/fhirserver.py start [--port 8080] [--db mem|file]
    python3 tools/fhir-server/fhirserver.py stop [--port 8080]

``start`` builds on first use, starts the server in the background, waits until
``/fhir/metadata`` answers and prints the base URL. Log and PID files live in
``tools/fhir-server/run/`` (ignored by git), one pair per port.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE / "target"
RUN = HERE / "run"
CLASSPATH_FILE = TARGET / "classpath.txt"
MAIN_CLASS = "org.trialfhir.server.TestFhirServer"
START_TIMEOUT_S = 600

# Servers this process started, by port: kept so the Popen object outlives start()
# (dropping it while the server runs is a ResourceWarning) and stop() can reap it.
_started: dict[int, subprocess.Popen[bytes]] = {}


def build(force: bool = False) -> None:
    """Compile the launcher and write its classpath (downloads jars on first run)."""
    sources = [*sorted(p for p in (HERE / "src").rglob("*") if p.is_file()), HERE / "pom.xml"]
    if not force and CLASSPATH_FILE.exists():
        built = CLASSPATH_FILE.stat().st_mtime
        if all(p.stat().st_mtime <= built for p in sources):
            return
    print("fhir-server: building with Maven (the first build downloads ~400 MB of jars)", file=sys.stderr)
    subprocess.run(["mvn", "-B", "-q", "-f", str(HERE / "pom.xml"), "package", "-DskipTests"], check=True)


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/fhir"


def answers(port: int) -> bool:
    """True when /fhir/metadata answers with an R4 CapabilityStatement."""
    try:
        with urllib.request.urlopen(base_url(port) + "/metadata", timeout=5) as response:  # noqa: S310 (loopback)
            return bool(json.load(response).get("fhirVersion", "").startswith("4.0"))
    except (OSError, ValueError):
        return False


def pid_file(port: int) -> Path:
    return RUN / f"server-{port}.pid"


def log_file(port: int) -> Path:
    return RUN / f"server-{port}.log"


def start(port: int, db: str, heap: str, max_page_size: int = 0) -> str:
    """Start the server in the background unless one already answers; return its base URL."""
    if answers(port):
        return base_url(port)
    build()
    RUN.mkdir(exist_ok=True)
    classpath = str(TARGET / "classes") + os.pathsep + CLASSPATH_FILE.read_text().strip()
    command = [
        "java", f"-Xmx{heap}", "-XX:+UseSerialGC",
        "-cp", classpath, MAIN_CLASS, "--port", str(port), "--db", db, "--data-dir", str(RUN / f"h2-{port}"),
    ]
    if max_page_size:
        command += ["--max-page-size", str(max_page_size)]
    with log_file(port).open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(port).write_text(str(process.pid))
    _started[port] = process
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            raise SystemExit(f"fhir-server: exited with code {process.returncode}; see {log_file(port)}")
        if answers(port):
            print(f"fhir-server: ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
            return base_url(port)
        time.sleep(1)
    stop(port)
    raise SystemExit(f"fhir-server: no answer after {START_TIMEOUT_S} s; see {log_file(port)}")


def stop(port: int) -> None:
    """Stop the server started on ``port``; a no-op when none runs."""
    path = pid_file(port)
    if not path.exists():
        return
    pid = int(path.read_text())
    process = _started.pop(port, None)
    try:
        os.killpg(pid, signal.SIGTERM)
        if process is not None:
            # Our own child: wait() reaps it (a reaped child cannot linger as a zombie).
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                process.wait()
        else:
            for _ in range(60):
                os.kill(pid, 0)
                time.sleep(0.5)
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["build", "start", "stop"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("FHIR_PORT", "8080")))
    parser.add_argument("--db", choices=["mem", "file"], default=os.environ.get("FHIR_DB", "mem"),
                        help="in-memory H2 (default) or a file-backed H2 database in run/")
    parser.add_argument("--heap", default=os.environ.get("FHIR_HEAP", "4g"))
    parser.add_argument("--max-page-size", type=int, default=0, metavar="N",
                        help="the most resources a search page may hold (default: HAPI's, 50)")
    args = parser.parse_args()
    if args.action == "build":
        build(force=True)
    elif args.action == "start":
        print(start(args.port, args.db, args.heap, args.max_page_size))
    else:
        stop(args.port)


if __name__ == "__main__":
    main()
