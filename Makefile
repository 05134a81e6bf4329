# The two commands a new user needs:  make demo   and   make test
# Everything else here is what those two call.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FHIR_PORT ?= 8080
SERVER := $(PYTHON) tools/fhir-server/fhirserver.py
STAMP := $(VENV)/.installed

.PHONY: help demo test lint unit server server-build server-stop hospital prerequisites test-prerequisites clean

help:
	@echo "make demo          map the seed trial, push it to a local FHIR server, pull it back, write the exports"
	@echo "make test          install everything, lint, and run the whole test suite (unit, integration, e2e)"
	@echo "make server        start the local HAPI FHIR R4 server in the background (port FHIR_PORT=$(FHIR_PORT))"
	@echo "make server-stop   stop it"
	@echo "make hospital      generate a seeded Synthea COVID-19 hospital and load it into the local server (idempotent)"
	@echo "make lint          ruff and mypy"

# Java 17 and Maven build the test FHIR server; on a Debian machine where we are root
# they are installed from Debian's packages, elsewhere we say what is missing.
prerequisites:
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && apt-get install -y -q openjdk-17-jdk-headless maven; \
	  else echo "error: Java 17 and Maven are needed: install them (e.g. apt-get install openjdk-17-jdk-headless maven)"; exit 2; fi; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python >= 3.11 is needed")'

# The service's browser test drives Debian's headless Chromium (it skips, saying so,
# where Chromium cannot be installed).
test-prerequisites: prerequisites
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && apt-get install -y -q chromium; \
	  else echo "note: chromium is not installed: the status-page browser test will be skipped"; fi; }

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

server-build: prerequisites
	$(SERVER) build

server: prerequisites
	@$(SERVER) start --port $(FHIR_PORT)

server-stop:
	@$(SERVER) stop --port $(FHIR_PORT)

# A test hospital for `trialfhir collect`: Synthea patients (seed SYNTHEA_SEED, cached in
# tools/synthea/run/) loaded with PUTs, so loading twice changes nothing.
hospital: server
	$(PYTHON) tools/synthea/synthea.py load --server http://127.0.0.1:$(FHIR_PORT)/fhir

lint: $(STAMP)
	$(BIN)/ruff check adapter tests bench fixtures tools
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

# The suite starts (and stops) its own FHIR server on a free port, unless
# ADAPTER_TEST_FHIR_URL names a running one.
test: test-prerequisites $(STAMP) lint
	$(SERVER) build
	$(PYTHON) tools/synthea/synthea.py build
	$(BIN)/pytest -q

demo: prerequisites $(STAMP)
	@$(SERVER) start --port $(FHIR_PORT)
	$(BIN)/python -m adapter.demo --server http://127.0.0.1:$(FHIR_PORT)/fhir --output demo-output

clean:
	rm -rf $(VENV) tools/fhir-server/target tools/synthea/target tools/synthea/run demo-output .pytest_cache .mypy_cache .ruff_cache
