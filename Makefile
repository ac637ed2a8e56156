# One venv, installed from pyproject.toml; every target uses it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck imports unit bench clean cluster-up cluster-down fuse

# Installed with uv (from PyPI, into the venv): the same packages pip resolves, in ~15 s where pip
# takes ~65 s on a fresh machine -- a minute of every fresh `make test` and `make run`.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'uv>=0.5,<1'
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'
	touch $(STAMP)

# libfuse 3 for kubesim/lazyfs (the power-loss file system): Debian's fuse3 + libfuse3-3
# (~0.4 MB), installed once when missing and root; elsewhere its tests skip saying what is missing.
fuse:
	@ldconfig -p 2>/dev/null | grep -q 'libfuse3\.so\.3' || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing fuse3 libfuse3-3 (kubesim/lazyfs)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 libfuse3-3 >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 libfuse3-3 >/dev/null 2>&1; } || \
	    echo "could not install fuse3 libfuse3-3: the lazyfs tests will skip" >&2; \
	  else echo "libfuse 3 missing and not root (or no apt-get): the lazyfs tests will skip" >&2; fi; }

## run: the main job — the default durability scenarios, a run folder per scenario under reports/
## (every scenario: `pytest scenarios -m "extended or not extended"`; the rest: `-m extended`)
run: $(STAMP) fuse
	$(PY) -m pytest scenarios -s -m "not extended" --html=reports/scenarios.html --self-contained-html \
	  --junitxml=reports/junit.xml; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no scenario collected: treating as failure" >&2; exit 1; fi; \
	echo "reports: reports/scenarios.html (verdicts), reports/index.html (every run), reports/latest/report.html," \
	  "reports/junit.xml"; exit $$rc

## test: everything CI checks — lint, types, layering, then the test suite
test: lint typecheck imports unit

lint: $(STAMP)
	$(VENV)/bin/ruff check harness kubesim tests scenarios infra conftest.py
	$(VENV)/bin/actionlint -shellcheck=$(VENV)/bin/shellcheck .github/workflows/*.yml

typecheck: $(STAMP)
	$(VENV)/bin/mypy

imports: $(STAMP)
	$(VENV)/bin/lint-imports

# pytest exits 5 when it collected nothing: that is a broken suite, never a pass. The slowest 15
# tests are printed at the end of every run, so the suite's growth stays visible. Four workers
# (pytest-xdist), a module per worker at a time: the suite mostly waits on real processes.
TEST_WORKERS ?= 4
unit: $(STAMP) fuse
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadscope --durations=15; rc=$$?; \
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
