# The two commands: `make demo` runs the demo region end to end, `make test` runs the suite.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
PATIENTS ?= 300
PG ?=
ROWS ?= 2000000

.PHONY: demo test lint lock install compose-check clean bench

$(VENV)/.installed: requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(VENV)/bin/pip install --quiet uv==0.13.9
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m demo.run --patients $(PATIENTS) $(if $(PG),--postgres $(PG))

bench: install
	$(PY) -m bench.run --rows $(ROWS)

test: install lint
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

compose-check:
	docker compose config -q

lock:
	$(UV) pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf out .pytest_cache
