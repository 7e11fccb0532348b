#!/usr/bin/env bash
# Build the `ocuroot` wheel for manylinux2014 (glibc 2.17 or newer), check
# its tag with auditwheel, install it into a fresh virtual environment and
# test it there: the pytest suite (warnings are errors; it also runs the
# README's Python example and examples/python), mypy --strict over the
# package, the tests and the examples, and mypy's stubtest (the .pyi stubs
# against the native module). PYTHON picks the interpreter (default: python3;
# the wheel is abi3, for CPython 3.9 and later).
set -euo pipefail
cd "$(dirname "$0")/.."
top="$(pwd)"
python="${PYTHON:-python3}"
tools="$top/target/py-tools"   # maturin, zig, auditwheel, twine; kept between runs
venv="$top/target/py-venv"     # made afresh on every run
wheels="$top/target/py-wheels"
start=$SECONDS

step() { printf -- '--> %s\n' "$*"; }
pip_install() { "$1/bin/python" -m pip install --quiet --disable-pip-version-check "${@:2}"; }

# What the wheel promises: manylinux2014, glibc 2.17 or newer (Ubuntu 20.04,
# RHEL/Rocky 8 and Amazon Linux 2 included). Linked by the system's linker
# against this machine's glibc, the module would need that glibc (on Debian
# 12: pthread_create@GLIBC_2.34, stat@GLIBC_2.33, ..., a manylinux_2_34 wheel
# that pip refuses on those systems). maturin --zig links it with zig against
# glibc 2.17's symbol versions and compiles the bundled C (libgit2, zlib)
# with zig cc for the same glibc. zig comes from PyPI (ziglang), pinned to
# the minor version tested: zig releases have broken maturin builds before.
policy=manylinux2014
tag="manylinux_2_17_$(uname -m)"

step "maturin, zig and auditwheel ($tools)"
[ -x "$tools/bin/python" ] || "$python" -m venv "$tools"
pip_install "$tools" "maturin>=1.16,<2" "ziglang>=0.17,<0.18" "auditwheel>=6.1,<7"

# maturin gets its own target directory. With --zig it builds for an
# explicit --target with zig as the linker, and cargo's builds in target/
# share nothing with that: another linker makes every unit dirty, build
# scripts and proc macros included, so sharing a directory would only make
# the next cargo build redo them. OCUROOT_MATURIN_TARGET picks another one.
# The dev profile optimises the dependencies (Starlark) already and compiles
# much faster than --release. maturin's zig wrappers and zig's cache are kept
# under target/ too, not in ~/.cache; CARGO_ZIGBUILD_PYTHON_PATH makes it
# use the pinned zig above, whatever `zig` or `python3` is on PATH.
maturin_target="${OCUROOT_MATURIN_TARGET:-$top/target/maturin}"
step "wheel for $policy (zig, dev profile, CARGO_TARGET_DIR=$maturin_target)"
rm -rf "$wheels"
(cd ocuroot-py && CARGO_TARGET_DIR="$maturin_target" \
  CARGO_ZIGBUILD_PYTHON_PATH="$tools/bin/python" CARGO_ZIGBUILD_CACHE_DIR="$top/target/zig-cache" \
  ZIG_GLOBAL_CACHE_DIR="$top/target/zig-cache/zig" \
  "$tools/bin/maturin" build --quiet --zig --compatibility "$policy" --auditwheel check --out "$wheels")
wheel=("$wheels"/ocuroot-*.whl)

# pip reads the tag from the file name; auditwheel reads the module: the
# highest glibc symbol version it needs, and that it loads no library outside
# the manylinux policy (maturin's --auditwheel check above refuses that too).
step "auditwheel show ${wheel[0]##*/}"
platforms="${wheel[0]##*-}"   # manylinux2014_x86_64.manylinux_2_17_x86_64.whl
case ".${platforms%.whl}." in
  *".$tag."*) ;;
  *) echo "the wheel's file name does not carry the tag $tag: ${wheel[0]##*/}" >&2; exit 1 ;;
esac
"$tools/bin/auditwheel" show --json "${wheel[0]}" > "$top/target/py-auditwheel.json"
"$tools/bin/python" - "$top/target/py-auditwheel.json" "$tag" << 'PY'
import json, sys

report, tag = json.load(open(sys.argv[1])), sys.argv[2]
glibc = max(
    (v for vs in report["versioned_symbols"].values() for v in vs if v.startswith("GLIBC_")),
    key=lambda v: tuple(int(n) for n in v[len("GLIBC_"):].split(".")),
)
problems = []
if report["overall_tag"] != tag:
    problems.append(f"auditwheel says {report['overall_tag']}, the wheel promises {tag}")
if report["external_libs"]:
    problems.append(f"it needs libraries outside the policy: {sorted(report['external_libs'])}")
if problems:
    sys.exit("auditwheel show: " + "; ".join(problems) + f" (highest symbol version: {glibc})")
print(f"auditwheel: {report['overall_tag']}, highest symbol version {glibc}, no outside libraries")
PY

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
