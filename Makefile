# The two commands a newcomer needs:  make demo   and   make test
# Both set up everything first (scripts/bootstrap.sh): uv, system packages, the locked environment.

PY ?= python3
VENV_BIN := .venv/bin
HYBRID := $(VENV_BIN)/hybrid
OUT ?= out

.PHONY: setup demo test test-all lint bench clean

setup:
	@PYTHON=$(PY) bash scripts/bootstrap.sh

demo: setup
	@bash scripts/demo.sh $(OUT)

# make test: the default suite (under 3 minutes on two cores). make test-all: the rest, the tests marked slow
# (torchrun, a killed training run, headless Chromium, the CLI transfers).
test: setup
	$(VENV_BIN)/python -m pytest -q

test-all: setup
	$(VENV_BIN)/python -m pytest -q -m slow

lint: setup
	$(VENV_BIN)/python -m ruff check hybrid tests benchmarks
	$(VENV_BIN)/python -m mypy hybrid

bench: setup
	$(VENV_BIN)/python benchmarks/bench_transcribe.py

clean:
	rm -rf $(OUT) .pytest_cache
