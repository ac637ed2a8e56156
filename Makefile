# One venv, installed from pyproject.toml; every target uses it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck imports unit bench clean cluster-up cluster-down

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## run: the main job (see README: what it runs and where the report goes)
run: $(STAMP)
	$(PY) -m harness run

## test: everything CI checks — lint, types, layering, then the test suite
test: lint typecheck imports unit

lint: $(STAMP)
	$(VENV)/bin/ruff check harness kubesim tests scenarios infra conftest.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

imports: $(STAMP)
	$(VENV)/bin/lint-imports

# pytest exits 5 when it collected nothing: that is a broken suite, never a pass.
unit: $(STAMP)
	$(PY) -m pytest tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treating as failure" >&2; exit 1; fi; \
	exit $$rc

## bench: speed figures, each printed as a ratio against a baseline measured in the same run
bench: $(STAMP)
	$(PY) -m harness bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
