# kore-models: `make demo` runs the main job on the local emulator, `make test` runs the checks and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The demo needs only the package; tests and benchmarks add the PEP 735 groups (pip >= 25.1).
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed-dev
DOCS_STAMP := $(VENV)/.installed-docs
# mitmproxy pins many packages, so it lives in its own venv; tests/network finds mitmdump there.
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed

.PHONY: tools demo test check lint typecheck unit docs soak bench bench-quick clean

$(BASE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e .
	touch $(BASE)

$(STAMP): $(BASE)
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

# The docs build imports the package (the settings table), so it starts from the base install.
$(DOCS_STAMP): $(BASE)
	$(BIN)/python -m pip install --quiet -e . --group docs
	touch $(DOCS_STAMP)

$(TOOLS_STAMP):
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet "mitmproxy>=11"
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

demo: $(BASE)
	$(BIN)/kore-models demo

test: check unit docs

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src benchmarks tests

# KORE_REQUIRE_TOOLS: the network tests fail (never skip) when mitmdump is missing.
unit: $(STAMP) $(TOOLS_STAMP)
	KORE_REQUIRE_TOOLS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

# Builds the site with --strict (broken links, missing pages, stale settings fail) into a temp dir.
docs: $(DOCS_STAMP)
	site="$$(mktemp -d)"; NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict \
		--site-dir "$$site"; status=$$?; rm -rf "$$site"; exit $$status

soak: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m soak -o addopts=''

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(TOOLS_VENV) build dist .mypy_cache .ruff_cache
