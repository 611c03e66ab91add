# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create the stack's venv on first use and reuse it afterwards.
PYTHON ?= $(shell command -v python3.11 || command -v python3)

# Two tested stacks, each in its own venv: the default (constraints.txt: the newest working
# torch/torchaudio pair) in .venv, and torch/torchaudio 2.8 (constraints-torch28.txt) in
# .venv-torch28. `make test STACK=torch28` picks the second; `make test-stacks` runs both.
STACK ?= default
ifeq ($(STACK),torch28)
VENV := .venv-torch28
CONSTRAINTS := constraints-torch28.txt
else ifeq ($(STACK),default)
VENV := .venv
CONSTRAINTS := constraints.txt
else
$(error STACK=$(STACK): expected default or torch28)
endif

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-stacks lint docs clean system-deps

$(STAMP): setup.cfg setup.py pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[test,docs]"
	touch $@

demo: $(STAMP)
	$(BIN)/s3prl-emo demo --workdir demo

# Two workers, each test module on one of them (its module fixtures built once). The package is
# byte-compiled first: the suite starts many interpreters, and where PYTHONDONTWRITEBYTECODE is
# set each would compile it again (about a second each).
test: lint
	$(BIN)/python -m compileall -q s3prl_emo
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-stacks:
	$(MAKE) test STACK=default
	$(MAKE) test STACK=torch28

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

# The documentation site (docs/, mkdocs.yml) into build/site; `make docs SERVE=1` serves it locally.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs $(if $(SERVE),serve,build --strict --site-dir build/site)

clean:
	rm -rf .venv .venv-torch28 demo build site *.egg-info .pytest_cache

# Debian packages that the integration tests use: a single-node Slurm (slurm-wlm, munge) for
# the sweep's Slurm launcher, headless Chromium for the report. Without them, those tests skip.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends \
		slurm-wlm munge chromium chromium-driver
