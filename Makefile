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

## run: the main job — the default durability scenarios, a run folder per scenario under reports/
## (every scenario: `pytest scenarios -m "extended or not extended"`; the rest: `-m extended`)
run: $(STAMP)
	$(PY) -m pytest scenarios -s -m "not extended" --html=reports/scenarios.html --self-contained-html; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no scenario collected: treating as failure" >&2; exit 1; fi; \
	echo "report: reports/scenarios.html, run folder: reports/latest"; exit $$rc

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
	$(PY) -m kubesim bench

## cluster-up / cluster-down: the kind cluster for real runs (needs kind and a Docker daemon)
KIND_CLUSTER ?= ckpt-chaos
cluster-up: $(STAMP)
	@command -v kind >/dev/null || { echo "kind is not installed: see https://kind.sigs.k8s.io (the embedded cluster needs nothing)" >&2; exit 2; }
	kind create cluster --name $(KIND_CLUSTER) --config infra/kind/cluster.yaml
	$(VENV)/bin/harness image build --kind $(KIND_CLUSTER)

cluster-down:
	@command -v kind >/dev/null || { echo "kind is not installed: nothing to delete" >&2; exit 2; }
	kind delete cluster --name $(KIND_CLUSTER)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
