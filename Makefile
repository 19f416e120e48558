# Every target sets itself up: a .venv with this package and its extras, made on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test test-all demo docs docs-serve lint bench reproduce clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@

setup: $(STAMP)

# The default suite (no `slow` tests), one worker per core (module fixtures stay on one worker;
# modules go out in the order tests/conftest.py gives them, longest first).
# pytest's exit 5 (no tests collected) is a failure here.
PYTEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder -m ''

demo: $(STAMP)
	$(BIN)/lstm-jax demo --out runs/demo

# The documentation site (mkdocs.yml, docs/): site/ by default; `make docs-serve` previews it.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

# Benchmarks (benchmarks/README.md): writes benchmarks/results/*.json and results/README.md.
# BENCH_ARGS=--quick for a smoke run (results under runs/bench-quick).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# The essay's claims as figures and tables in one report (experiments/reproduce.py): quick sizes
# by default (target ≤ 15 min on an idle 2-core CPU), FULL=1 for the sizes the README quotes
# (hours). Completed results are reused. Writes runs/report/report.md and report.html;
# DOCS=docs/figures also copies the README's figures and table there.
reproduce: $(STAMP)
	$(BIN)/python experiments/reproduce.py $(if $(FULL),--full) $(if $(DOCS),--docs $(DOCS))

lint: $(STAMP)
	$(BIN)/ruff check lstm_jax tests experiments benchmarks

clean:
	rm -rf runs site .pytest_cache
