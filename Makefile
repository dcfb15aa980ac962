# The two commands of the quick start: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MUJOCO_GL ?= egl

.PHONY: setup demo test lint bench
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/mobile-vla demo --out outputs/demo $(ARGS)

test: setup
	$(PY) -m ruff check src tests benchmarks clients examples
	$(PY) -m pytest $(ARGS)

lint: setup
	$(PY) -m ruff check src tests benchmarks clients examples
