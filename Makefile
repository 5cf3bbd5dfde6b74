VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint demo bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e '.[dev]'

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check lash_streams tests bench
	$(VENV)/bin/ruff format --check lash_streams tests bench
	$(VENV)/bin/mypy lash_streams

demo: install
	$(VENV)/bin/lash-streams demo

bench: install
	$(PY) -m bench.append

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
