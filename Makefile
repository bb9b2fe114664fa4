# ClassLens: `make run` starts the app, `make test` runs the tests. Both set everything up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.classlens-installed
export CLASSLENS_DB ?= data/classlens.duckdb
PORT ?= 8501

.PHONY: setup run test lint bench train-emotion clean-venv sysdeps

## setup: create/update .venv with every dependency (idempotent: seconds when up to date)
setup: $(STAMP) sysdeps

$(STAMP): requirements.txt requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	# facenet-pytorch pins torch<2.3 / numpy<2 / Pillow<10.3; it runs fine on ours (tested).
	$(PIP) install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m core.setup_assets
	@touch $@

## sysdeps: Debian packages the browser tests need (Chromium); skipped when present or not root
sysdeps:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; \
	else echo "note: Chromium not installed (needs root); browser tests will be skipped"; fi

## run: start the app on the embedded DuckDB file ($(CLASSLENS_DB))
run: setup
	@mkdir -p $(dir $(CLASSLENS_DB))
	$(PY) -m streamlit run Home.py --server.port=$(PORT) --browser.gatherUsageStats=false

## test: the whole suite (unit, pipeline on real media, app and browser tests)
test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check core models training bench tests Home.py pages app

## bench: speed and memory figures (never part of the tests)
bench: setup
	$(PY) -m bench.speed --minutes 1

## train-emotion: retrain the shipped emotion models from ../shared/data (a GPU run; see training/README.md)
train-emotion: setup
	$(PY) -m training.reproduce

clean-venv:
	rm -rf $(VENV)
