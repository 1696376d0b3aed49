# kore-models: `make demo` runs the main job on the local emulator, `make test` runs the checks and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# mitmproxy pins many packages, so it lives in its own venv; tests/network finds mitmdump there.
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed

.PHONY: tools demo test check lint typecheck unit soak bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

$(TOOLS_STAMP):
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet "mitmproxy>=11"
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

demo: $(STAMP)
	$(BIN)/kore-models demo

test: check unit

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Each test folder has its own conftest.py, so mypy checks them one folder at a time.
typecheck: $(STAMP)
	$(BIN)/mypy src benchmarks tests/test_architecture.py
	for dir in tests/*/; do $(BIN)/mypy "$$dir" || exit 1; done

# KORE_REQUIRE_TOOLS: the network tests fail (never skip) when mitmdump is missing.
unit: $(STAMP) $(TOOLS_STAMP)
	KORE_REQUIRE_TOOLS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

soak: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m soak -o addopts=''

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(TOOLS_VENV) build dist .mypy_cache .ruff_cache
