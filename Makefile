# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint ui bench clean
UI = dashboards/runstream_dashboards/static/index.html

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.server-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'
	touch $@

# visdom 0.2.4 (the unchanged Visdom client the tests and bench/visdom.py drive) is an sdist whose build
# needs pkg_resources: built without isolation beside an old setuptools, before the dev extra (whose torch
# and grpcio-tools then bring setuptools back up to date).
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet 'setuptools<70' wheel
	$(BIN)/pip install --quiet --no-build-isolation visdom==0.2.4
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The web UI: npm fetches uPlot and esbuild by name and version (package-lock.json), then builds
# into the Python package.
$(UI): $(wildcard dashboards/web/src/*) dashboards/web/package.json dashboards/web/package-lock.json
	cd dashboards/web && npm ci --no-audit --no-fund --loglevel=error && npm run build

ui: $(UI)

# Runs the service on 127.0.0.1 (gRPC 50051, HTTP 8080) and streams demo runs into it.
demo: $(VENV)/.server-installed $(UI)
	$(BIN)/runstream serve --demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint $(UI)
	cd dashboards/web && npm test
	$(BIN)/pytest

bench: $(VENV)/.dev-installed $(UI)
	for script in bench/sdk_overhead.py bench/ingest.py bench/histograms.py bench/images.py bench/query.py \
		bench/first_chart.py bench/tensorboard_compat.py bench/outage.py bench/chaos.py bench/overload.py; do \
		$(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) runstream-data
