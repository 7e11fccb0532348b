#!/usr/bin/env bash
# Build the `ocuroot` wheel, install it into a fresh virtual environment and
# test it there: the pytest suite (warnings are errors; it also runs the
# README's Python example and examples/python), mypy --strict over the
# package, the tests and the examples, and mypy's stubtest (the .pyi stubs
# against the native module). PYTHON picks the interpreter (default: python3;
# the wheel is abi3, for CPython 3.9 and later).
set -euo pipefail
cd "$(dirname "$0")/.."
top="$(pwd)"
python="${PYTHON:-python3}"
tools="$top/target/py-tools"   # maturin; kept between runs
venv="$top/target/py-venv"     # made afresh on every run
wheels="$top/target/py-wheels"
start=$SECONDS

step() { printf -- '--> %s\n' "$*"; }
pip_install() { "$1/bin/python" -m pip install --quiet --disable-pip-version-check "${@:2}"; }

step "maturin ($tools)"
[ -x "$tools/bin/python" ] || "$python" -m venv "$tools"
pip_install "$tools" "maturin>=1.16,<2"

# maturin gets its own target directory: it builds pyo3 for an extension
# module (and ocuroot-py's dependencies with one package's features), which
# would otherwise rebuild those crates in target/ on every switch between it
# and cargo. A one-off run on a fresh machine (CI) sets
# OCUROOT_MATURIN_TARGET=target instead: most dependencies are built there
# already, and nothing runs cargo after it. The dev profile optimises the
# dependencies (Starlark) already and compiles much faster than --release.
maturin_target="${OCUROOT_MATURIN_TARGET:-$top/target/maturin}"
step "wheel (dev profile, CARGO_TARGET_DIR=$maturin_target)"
rm -rf "$wheels"
(cd ocuroot-py && CARGO_TARGET_DIR="$maturin_target" "$tools/bin/maturin" build --quiet --out "$wheels")
wheel=("$wheels"/ocuroot-*.whl)

# What PyPI would be handed: the wheel and a source distribution (which
# carries the Rust crates it builds from, the patched Starlark included),
# checked with twine as an upload would be.
step "sdist, and twine check of the wheel and the sdist"
(cd ocuroot-py && "$tools/bin/maturin" sdist --out "$wheels" > /dev/null)
sdist=("$wheels"/ocuroot-*.tar.gz)
pip_install "$tools" "twine>=6.1"
"$tools/bin/twine" check --strict "${wheel[0]}" "${sdist[0]}"

step "fresh virtual environment ($venv) with ${wheel[0]##*/}"
rm -rf "$venv"
"$python" -m venv "$venv"
pip_install "$venv" "pytest>=8,<10" "mypy>=1.11,<3" "${wheel[0]}"
# The tests must import the installed wheel, not the sources.
(cd ocuroot-py/tests && "$venv/bin/python" -c \
  'import ocuroot, sys; sys.exit(0 if "site-packages" in ocuroot.__file__ else f"ocuroot from {ocuroot.__file__}")')

step "pytest"
(cd ocuroot-py && "$venv/bin/python" -m pytest -W error -p no:cacheprovider -q)

step "mypy --strict"
(cd ocuroot-py && "$venv/bin/python" -m mypy --cache-dir "$top/target/py-mypy-cache" \
  python/ocuroot tests ../examples/python)

# stubtest checks the native module's stubs (_ocuroot.pyi) against the
# module; mypy above checks the pure-Python modules from their sources.
step "stubtest ocuroot._ocuroot"
(cd "$top/target" && "$venv/bin/python" -m mypy.stubtest ocuroot._ocuroot)

echo "python: ok in $((SECONDS - start)) s"
