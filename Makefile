# Two entry points: `make demo` (the main job, offline) and `make test` (the suite).
# `make test-fast`: the tests that start no server nor subprocess (-m "not e2e"), no lint.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv report-example

venv: $(STAMP)

$(STAMP): requirements.txt requirements-deploy.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check ali1688spider tests bench
	$(PY) -m mypy ali1688spider/aop

test: lint
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e" -q

demo: $(STAMP)
	$(PY) -m ali1688spider.demo $(ARGS)

# docs/report-example.png from make demo's report, photographed in headless Chromium
report-example: $(STAMP)
	$(PY) -m tests.report_example
