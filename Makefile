# kore-models: `make demo` runs the main job on the local emulator, `make test` runs the checks and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test check lint typecheck unit docs soak bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

# The docs group needs pip >= 25.1 (PEP 735 groups); the stamp above upgrades pip first.
$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --group docs
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/kore-models demo

test: check unit docs

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Each test folder has its own conftest.py, so mypy checks them one folder at a time.
typecheck: $(STAMP)
	$(BIN)/mypy src benchmarks tests/test_architecture.py
	for dir in tests/*/; do $(BIN)/mypy "$$dir" || exit 1; done

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

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
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache
