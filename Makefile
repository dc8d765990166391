# The README's commands. System packages first (scripts/setup-system: apt when root or
# passwordless sudo, else one message with the apt line), then everything runs inside
# .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 8
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg

.PHONY: reproduce test lint bench report lab venv lock system system-test clean

system:
	bash scripts/setup-system paper

system-test:
	bash scripts/setup-system test

venv: $(STAMP)

# Installs the exact versions and files of requirements.lock (hash-checked; nothing is
# resolved), then this package without dependencies. `make lock` re-resolves.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Re-resolve pyproject.toml's dev and model extras into requirements.lock (needs an index).
# pip lock writes an editable project's path relative to the lock file, so the file sits
# in the project folder (it refuses one under .venv) until it is converted.
lock: $(STAMP)
	$(BIN)/python -m pip lock --quiet -e '.[dev,model]' -o pylock.toml
	$(BIN)/python -c "from harmtrace.envlock import requirements_from_pylock as r; \
	open('requirements.lock', 'w').write(r(open('pylock.toml').read()))"
	rm pylock.toml

reproduce: system $(STAMP)
	SNAKEMAKE=$(BIN)/snakemake bash scripts/unlock-stale
	$(BIN)/snakemake --cores $(CORES)

# Two workers (pytest-xdist): the tests of the pilot build on one, the rest beside them
# (tests/conftest.py).
# TEST_WORKERS=0 runs everything in this process, in collection order.
TEST_WORKERS ?= 2
test: system-test $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

report: reproduce
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=. notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_embedded_grader.py --output results/benchmarks/embedded_grader.json
	$(BIN)/python benchmarks/bench_moderation.py --output results/benchmarks/moderation.json
	$(BIN)/python benchmarks/bench_llm_client.py --output results/benchmarks/llm_client.json
	$(BIN)/python benchmarks/bench_grade_shards.py --output results/benchmarks/grade_shards.json
	$(BIN)/python benchmarks/bench_respond.py --output results/benchmarks/respond.json

clean:
	rm -rf results .snakemake
