# contacts_crm: `make run` serves the admin and API, `make test` runs the whole suite.
# Both create the virtualenv ($(VENV)) and install the pinned requirements when needed.

VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run serve test worker workers lint bench deps dev-deps clean

$(VENV)/.deps: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-deps: requirements-dev.txt $(VENV)/.deps
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# The development settings the README's `manage.py` commands read (manage.py loads .env; the
# environment wins). Production sets DEBUG=0 and SECRET_KEY in the environment instead.
.env:
	@printf '# Development settings for manage.py (written by make; the environment wins).\nDEBUG=1\n' > $@
	@echo "wrote .env (DEBUG=1) so that '$(PY) manage.py …' works as the README shows"

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

run: $(VENV)/.deps .env
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py createcachetable
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo --first-run --port $(PORT)
	DEBUG=$${DEBUG:-1} $(PY) manage.py runserver 127.0.0.1:$(PORT)

# Production profile (docs/deploy.md): DEBUG off, gunicorn (gunicorn.conf.py), static files
# collected and served by WhiteNoise. Needs SECRET_KEY; set DATABASE_URL and REDIS_URL too.
serve: $(VENV)/.deps
	@test -n "$$SECRET_KEY" || { echo "make serve: set SECRET_KEY (a long random string, e.g. from" \
		"python3 -c 'import secrets; print(secrets.token_urlsafe(50))'); DEBUG is off here." >&2; exit 1; }
	DEBUG=0 $(PY) manage.py check --deploy
	DEBUG=0 $(PY) manage.py migrate --noinput
	DEBUG=0 $(PY) manage.py createcachetable
	DEBUG=0 $(PY) manage.py collectstatic --noinput --verbosity 0
	DEBUG=0 PORT=$(PORT) $(VENV)/bin/gunicorn contacts_crm.wsgi:application --config gunicorn.conf.py

test: $(VENV)/.dev-deps
	$(PY) -m pytest $(PYTEST_ARGS)

worker: $(VENV)/.deps .env
	DEBUG=$${DEBUG:-1} $(PY) manage.py rqworker default --with-scheduler --worker-class contacts_crm.jobs.CrmWorker

# N workers in one terminal (Ctrl-C stops them all): they share big imports' partitions.
N ?= 2
workers: $(VENV)/.deps .env
	@trap 'kill 0' INT TERM; for i in $$(seq $(N)); do \
		DEBUG=$${DEBUG:-1} $(PY) manage.py rqworker default --with-scheduler --worker-class contacts_crm.jobs.CrmWorker & \
	done; wait

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

bench: $(VENV)/.dev-deps
	@test -n "$$DATABASE_URL" || { echo "make bench needs DATABASE_URL=postgres://…/crm_bench (a database of its own: it is TRUNCATEd)"; exit 1; }
	$(PY) bench/contacts_bench.py --fill --measure

clean:
	rm -rf $(VENV) .test-media .pytest_cache .env
