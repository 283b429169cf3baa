# Development tasks. `make help` lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       ?= .venv
PYTHON3    ?= python3
VPY        := $(VENV)/bin/python
STAMP      := $(VENV)/.stamp-test
DEV_STAMP  := $(VENV)/.stamp-dev
ARGS       ?=
TOXENV     ?= py311-django52,py312-django60,py313-django61
TOXARGS    ?=

# tox.ini finds Python 3.12.1 / 3.13.0 under $PYENV_ROOT; `pyenv` may not be on PATH.
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)

.PHONY: help venv dev test demo tox lint imports clean

help: ## List the targets
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-6s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: ARGS=\"...\" (extra pytest args for 'test'), TOXENV=a,b (envs for 'tox'),"
	@echo "           TOXARGS=\"...\" (extra tox args), VENV=.venv, PYTHON3=python3"

$(VPY):
	@$(PYTHON3) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "$(PYTHON3) is older than 3.11; run with PYTHON3=/path/to/python3.11+" >&2; exit 1; }
	$(PYTHON3) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "Could not create $(VENV). On Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
	$(VPY) -m pip install --quiet --upgrade pip

# Re-install only when a pyproject.toml changes. The default environment is
# Django 5.2 LTS whatever Python is installed; tox covers 6.0 and 6.1.
DJANGO_PIN ?= Django>=5.2,<6.0
# Both distributions of this repository, editable. The sandbox is named on the
# command line because the `sandbox` extra (which `test` includes) cannot be
# resolved from PyPI.
PROJECTS   := pyproject.toml sandbox/pyproject.toml

$(STAMP): $(PROJECTS) | $(VPY)
	$(VPY) -m pip install --quiet -e ./sandbox -e ".[test]" "$(DJANGO_PIN)"
	@touch $@

$(DEV_STAMP): $(PROJECTS) | $(VPY)
	$(VPY) -m pip install --quiet -e ./sandbox -e ".[dev]" "$(DJANGO_PIN)"
	@touch $@ $(STAMP)

venv: $(STAMP) ## Create .venv; install the project (test extras) and the sandbox, editable

dev: $(DEV_STAMP) ## Also install the dev extras (tox, ruff)

test: $(STAMP) ## Run the suite on SQLite and on PostgreSQL (ARGS="..." go to pytest)
	PATH="$(abspath $(VENV))/bin:$$PATH" PYTHON="$(abspath $(VPY))" bash scripts/test.sh $(ARGS)

demo: $(STAMP) ## Migrate the example project, start the sandbox, send the demo mail
	PYTHON="$(abspath $(VPY))" bash scripts/demo.sh

tox: $(DEV_STAMP) ## Run the tox matrix (TOXENV=a,b to pick envs)
	PYENV_ROOT="$(PYENV_ROOT)" $(VENV)/bin/tox -e $(TOXENV) $(TOXARGS)

lint: $(DEV_STAMP) ## Run ruff
	$(VENV)/bin/ruff check .

imports: $(STAMP) ## Check the layer rules (import-linter contracts in pyproject.toml)
	$(VENV)/bin/lint-imports

clean: ## Remove the venv, tox envs, build output and caches
	rm -rf $(VENV) .tox .tmp build dist *.egg-info .pytest_cache .ruff_cache test-artifacts
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
