# bindwatch: everything installs itself. `make demo` and `make test` work on a fresh clone
# with only Python 3.11, make and Node.js 20 on the machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-deps
NODE_STAMP := node_modules/.stamp-deps

.PHONY: demo test test-pure lint format bench eval-detect samples clean infra-check card report-png package bench-storage bench-scale

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

# Azurite (storage emulator) and the Adaptive Cards SDK for the tests, pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

# Debian's Chromium renders the Teams card and the readiness report in the tests (headless, offline).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

demo: $(STAMP)
	$(PY) -m shared replay samples

test: $(STAMP) $(NODE_STAMP) $(CHROMIUM) lint infra-check
	$(PY) -m pytest -q

# The pure suite: no Azurite, no browser (seconds, not minutes).
test-pure: $(STAMP)
	$(PY) -m pytest -q -m "not azurite and not browser"

# Checkov over infra/ (Bicep), offline, in its own venv: it pins pycep-parser 0.5.1, the tests use 0.7.1.
infra-check:
	scripts/checkov.sh

# ruff, and the import contract (pyproject.toml [tool.importlinter]): the layers of shared/ as the design says.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The deployment zip: the project less .funcignore, refused if it would hold anything the app does not need
# (docs/deploy.md; azd runs the same check before it packs: azure.yaml's prepackage hook).
package: $(STAMP)
	$(PY) -m scripts.package app.zip

samples: $(STAMP)
	$(PY) -m scripts.make_samples

# Speed and cost against the limit (decoding the JSON at all), measured side by side in one run.
bench: $(STAMP) $(NODE_STAMP)
	$(PY) -m bench.bench

# Scaling out: 1, 2 and 4 function instances (processes) on one Azurite, the hub's partitions split between them,
# batches redelivered; throughput, ETag conflicts and storage requests per 1,000 records, and the verdicts against a
# clean replay (docs/scale-figures.md; a few minutes on 2 cores).
bench-scale: $(STAMP) $(NODE_STAMP)
	$(PY) -m bench.scale

# What retention keeps per sign-in, sized as Table Storage bills it (docs/deploy.md "What it costs").
bench-storage: $(STAMP) $(NODE_STAMP)
	$(PY) -m bench.storage_size

# Detection quality, measured: synthetic tenants of 1k, 10k and 100k people over four days, with and without
# incidents, through the shipped rules (a few minutes on 2 cores; the table is in docs/rules.md).
eval-detect: $(STAMP)
	$(PY) -m bench.eval_detect

# Regenerate the pictures README shows.
card: $(STAMP) $(NODE_STAMP) $(CHROMIUM)
	$(PY) -m scripts.render_card --out docs/teams-card.png

report-png: $(STAMP) $(CHROMIUM)
	$(PY) -m scripts.render_report

clean:
	rm -rf $(VENV) .venv-checkov node_modules .pytest_cache .ruff_cache .hypothesis .azurite
