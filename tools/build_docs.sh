#!/usr/bin/env bash
# Build the documentation site and check the docstrings, as CI does:
#   1. tests/test_docstrings.py: every public name has a numpydoc docstring
#      with the Parameters / Returns / Yields sections that apply;
#   2. the doctests: every >>> example in the rendered docstrings and in the
#      guide pages (sphinx-build -b doctest);
#   3. the HTML site with sphinx-build -W (any warning fails the build; the
#      gallery runs the scripts in examples/ and numpydoc validates the
#      docstrings it renders).
#
# Usage: bash tools/build_docs.sh [--install] [OUTPUT_DIR]
#   --install     first run `python -m pip install ".[docs]"` (the only thing
#                 this script ever installs); without it the tools and an
#                 importable fastrbm must already be there (e.g. CI's venv
#                 after `pip install ".[test]"`, plus the docs extra).
#   OUTPUT_DIR    default docs/_build; the site is OUTPUT_DIR/html.
# PYTHON selects the interpreter (default: python).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python}"
if [[ "${1:-}" == "--install" ]]; then
    shift
    "$PYTHON" -m pip install ".[docs]"
fi
OUT="${1:-docs/_build}"

# The examples' logistic regressions spent 90x more CPU time with NumPy's
# OpenBLAS threads than with one thread on the busy 2-core CI machine (16 s
# against 0.18 s; fastrbm's own kernels hold BLAS to one thread anyway)
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

start=$SECONDS
step() { echo "== $1 ($((SECONDS - start)) s)"; }

step "docstring check"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_docstrings.py

# fresh builds every time: sphinx only re-reads changed sources, and a
# warning in an unchanged page would otherwise pass unnoticed
rm -rf "$OUT/html" "$OUT/doctest" "$OUT/doctrees" "$OUT/doctrees-doctest" docs/generated docs/auto_examples docs/sg_execution_times.rst

step "doctests (sphinx-build -b doctest; the gallery is not run here)"
"$PYTHON" -m sphinx -W --keep-going -q -b doctest -d "$OUT/doctrees-doctest" \
    -D plot_gallery=0 docs "$OUT/doctest"
tail -n 4 "$OUT/doctest/output.txt"

step "HTML (sphinx-build -W; runs the gallery)"
rm -rf docs/auto_examples
"$PYTHON" -m sphinx -W --keep-going -b html -d "$OUT/doctrees" docs "$OUT/html"

step "done: $OUT/html/index.html"
