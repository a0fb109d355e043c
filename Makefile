# bindwatch: everything installs itself. `make demo` and `make test` work on a fresh clone
# with only Python 3.11, make and Node.js 20 on the machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-deps

.PHONY: demo test lint format bench samples clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m shared replay samples

test: $(STAMP) lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

samples: $(STAMP)
	$(PY) scripts/make_samples.py

clean:
	rm -rf $(VENV) .venv-checkov node_modules .pytest_cache .ruff_cache .hypothesis .azurite
