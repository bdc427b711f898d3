# `make serve` and `make test` are all a new machine needs (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test venv system-packages bench

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# Hashed, compressed static files (optsite/staticstorage.py), collected again when a source changes.
staticfiles/staticfiles.json: $(VENV)/.installed $(shell find runs/static -type f)
	$(PY) manage.py collectstatic --noinput --clear --verbosity 0

serve: venv staticfiles/staticfiles.json
	$(PY) manage.py migrate --noinput
	@echo "optsite: open http://$(HOST):$(PORT)/ and sign up"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) optsite.asgi:application

# Debian's Chromium and its driver for the browser tests; Redis and PostgreSQL for the scale-out tests.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing$$missing"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: venv system-packages
	$(PY) -m pytest

bench: venv staticfiles/staticfiles.json
	$(PY) bench/bench_core.py
	$(PY) bench/bench_expressions.py --quick
	$(PY) bench/bench_live.py
	$(PY) bench/bench_workers.py
	$(PY) bench/bench_storage.py
	$(PY) bench/bench_browser.py
	$(PY) bench/bench_study.py --page
