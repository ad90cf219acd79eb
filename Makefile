# The two commands: `make demo` runs the demo region end to end, `make test` runs the suite.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
PATIENTS ?= 300
PG ?=
ROWS ?= 2000000
# make bench MODE=distributed: also the DAG on two Celery workers with S3 staging (Redis, s3rver)
MODE ?= embedded

.PHONY: demo ui test lint lock install compose-check clean bench bench-distributed bench-package eark-venv s3-server

$(VENV)/.installed: requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(VENV)/bin/pip install --quiet uv==0.13.9
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	# the project itself, as Airflow and the image see it (plugins/ and the repository on the path), so that
	# `python -m decommission ...` works from the venv as the README writes it
	printf '%s\n' "$(CURDIR)/plugins" "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/decommission-repo.pth"
	touch $@

install: $(VENV)/.installed

# The E-ARK reference validator pins lxml 5.1.0: it gets a venv of its own (tests run it as a subprocess).
EARK_VENV := .venv-eark
$(EARK_VENV)/.installed: tests/eark/requirements.txt
	test -x $(EARK_VENV)/bin/python || $(PYTHON) -m venv $(EARK_VENV)
	$(EARK_VENV)/bin/pip install --quiet --no-deps -r tests/eark/requirements.txt
	touch $@

eark-venv: $(EARK_VENV)/.installed

# The distributed tests' object storage: s3rver (npm; keeps objects on disk, so it survives a restart).
S3RVER := tests/s3/node_modules/.bin/s3rver
$(S3RVER): tests/s3/package-lock.json
	npm ci --prefix tests/s3 --silent --no-audit --no-fund
	touch $@

s3-server: $(S3RVER)

demo: install
	$(PY) -m demo.run --patients $(PATIENTS) $(if $(PG),--postgres $(PG))

# The Airflow UI on the last demo's home (the programme overview under Programöversikt); Ctrl-C stops it.
ui: install
	$(PY) -m demo.ui

ifeq ($(filter $(MODE),embedded distributed),)
$(error MODE=$(MODE): make bench knows MODE=embedded (the default) and MODE=distributed)
endif

bench: install $(if $(filter distributed,$(MODE)),s3-server)
	$(PY) -m bench.run --rows $(ROWS) $(if $(filter distributed,$(MODE)),--distributed)

bench-distributed:
	$(MAKE) bench MODE=distributed

bench-package: install
	$(PY) -m bench.packaging

test: install eark-venv s3-server lint
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=plugins $(VENV)/bin/lint-imports --no-cache

compose-check:
	docker compose config -q

lock:
	$(UV) pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf out .pytest_cache
