#!/usr/bin/env bash
# Fuzzing ocuroot-core (the crate in fuzz/; see fuzz/README.md).
#
#   scripts/fuzz.sh replay                 every corpus and reproducer through
#                                          the checks, on the default (stable)
#                                          toolchain, without libFuzzer: CI
#   scripts/fuzz.sh run <target> [secs]    fuzz one target (nightly, cargo-fuzz)
#   scripts/fuzz.sh all [secs]             each target in turn
#   scripts/fuzz.sh cmin <target> [max]    merge what `run` found into
#                                          fuzz/corpus/<target>, minimised
#                                          (at most max files, default 75)
#   scripts/fuzz.sh tmin <target> <file>   minimise a crashing input
#   scripts/fuzz.sh seeds                  rewrite the seeds (fuzz/corpus/*/seed-*)
#
# Targets: refs glob package fslog. Environment:
#   OCUROOT_FUZZ_REPLAY_TARGET_DIR  target dir of `replay` (default: the main
#                                   workspace's target/, whose dependencies
#                                   `cargo test` has built)
#   OCUROOT_FUZZ_TARGET_DIR         target dir of cargo-fuzz (default fuzz/target)
#   FUZZ_SANITIZER                  cargo-fuzz --sanitizer (default address)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzz=$root/fuzz
targets=(refs glob package fslog)

usage() {
  sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}

is_target() {
  local t
  for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done
  echo "fuzz.sh: unknown target '$1' (targets: ${targets[*]})" >&2
  exit 2
}

# The fuzz crate resolves the same versions as the main workspace (so that
# its build reuses the main target dir): its lock file is the root one,
# copied before each build (cargo adds what only the fuzz crate uses).
sync_lock() {
  cp "$root/Cargo.lock" "$fuzz/Cargo.lock"
}

# Scratch files of the checks (package files, stores) go to a directory of
# this run, in memory when there is /dev/shm, removed on exit.
scratch=""
scratch_dir() {
  [ -n "$scratch" ] && return 0
  local base=${TMPDIR:-/tmp}
  [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
  scratch=$(mktemp -d "$base/ocuroot-fuzz.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  export TMPDIR=$scratch
}

cargo_fuzz() {
  local tools=$fuzz/.tools
  if [ ! -x "$tools/bin/cargo-fuzz" ]; then
    echo "fuzz.sh: installing cargo-fuzz into $tools" >&2
    cargo install --locked --root "$tools" cargo-fuzz --version '^0.13' >&2
  fi
  export PATH=$tools/bin:$PATH
  export CARGO_TARGET_DIR=${OCUROOT_FUZZ_TARGET_DIR:-$fuzz/target}
  sync_lock
}

# libFuzzer options per target.
options() {
  local common=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
  local dict=$fuzz/dict/$1.dict
  [ -f "$dict" ] && common+=("-dict=$dict")
  case $1 in
    refs) echo "${common[@]}" -max_len=2100 ;;
    glob) echo "${common[@]}" -max_len=1024 ;;
    package) echo "${common[@]}" -max_len=4096 ;;
    fslog) echo "${common[@]}" -max_len=8192 ;;
  esac
}

run() {
  local t=$1 secs=${2:-60}
  is_target "$t"
  cargo_fuzz
  scratch_dir
  # New inputs go to a work corpus (not committed); `cmin` merges them.
  local work=$CARGO_TARGET_DIR/corpus/$t
  mkdir -p "$work" "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
  # shellcheck disable=SC2046
  cargo +nightly fuzz run --fuzz-dir "$fuzz" --sanitizer "${FUZZ_SANITIZER:-address}" "$t" \
    "$work" "$fuzz/corpus/$t" -- \
    -artifact_prefix="$fuzz/artifacts/$t/" -max_total_time="$secs" $(options "$t")
}

case ${1:-} in
  replay)
    shift
    export CARGO_TARGET_DIR=${OCUROOT_FUZZ_REPLAY_TARGET_DIR:-$root/target}
    sync_lock
    cargo build --quiet --manifest-path "$fuzz/Cargo.toml" --no-default-features --bin replay
    scratch_dir
    OCUROOT_FUZZ_DIR=$fuzz "$CARGO_TARGET_DIR/debug/replay" "$@"
    ;;
  run)
    [ $# -ge 2 ] || usage
    run "$2" "${3:-60}"
    ;;
  all)
    for t in "${targets[@]}"; do
      echo "==> fuzz $t" >&2
      run "$t" "${2:-60}"
    done
    ;;
  cmin)
    [ $# -ge 2 ] || usage
    is_target "$2"
    cargo_fuzz
    scratch_dir
    t=$2 corpus=$fuzz/corpus/$2 work=$CARGO_TARGET_DIR/corpus/$2
    if [ -d "$work" ]; then cp -n "$work"/* "$corpus/" 2> /dev/null || true; fi
    # Edges only (no hit counts): the committed corpus stays small; fuzzing
    # finds the rest again quickly.
    # shellcheck disable=SC2046
    cargo +nightly fuzz cmin --fuzz-dir "$fuzz" --sanitizer "${FUZZ_SANITIZER:-address}" "$t" \
      "$corpus" -- $(options "$t") -use_counters=0
    # Then at most <max-files> (default 75): the inputs that cover the most
    # edges, chosen greedily from the edges libFuzzer reports per input.
    max=${3:-75}
    if [ "$(find "$corpus" -type f | wc -l)" -gt "$max" ]; then
      empty=$scratch/empty ctl=$scratch/merge.ctl
      mkdir -p "$empty"
      # shellcheck disable=SC2046
      "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/$t" -merge=1 -use_counters=0 \
        -merge_control_file="$ctl" $(options "$t") "$empty" "$corpus" > "$scratch/merge.log" 2>&1
      python3 - "$ctl" "$max" << 'PY'
import os, sys
ctl, limit = sys.argv[1], int(sys.argv[2])
lines = open(ctl).read().splitlines()
n = int(lines[0])
files = lines[2:2 + n]
cov = {}
for line in lines[2 + n:]:
    parts = line.split()
    if parts and parts[0] == "COV":
        cov[int(parts[1])] = set(parts[2:])
total = set().union(*cov.values()) if cov else set()
covered, keep = set(), []
while len(keep) < limit:
    best = max(cov, key=lambda i: (len(cov[i] - covered), -os.path.getsize(files[i])), default=None)
    if best is None or not cov[best] - covered:
        break
    keep.append(best)
    covered |= cov.pop(best)
kept = {files[i] for i in keep}
for f in files:
    if f not in kept:
        os.remove(f)
print(f"fuzz.sh: kept {len(kept)} of {n} inputs, covering {len(covered)} of {len(total)} edges")
PY
    fi
    ;;
  tmin)
    [ $# -ge 3 ] || usage
    is_target "$2"
    cargo_fuzz
    scratch_dir
    file=$(realpath "$3")
    # shellcheck disable=SC2046
    cargo +nightly fuzz tmin --fuzz-dir "$fuzz" --sanitizer "${FUZZ_SANITIZER:-address}" "$2" \
      "$file" -- $(options "$2")
    ;;
  seeds)
    export CARGO_TARGET_DIR=${OCUROOT_FUZZ_REPLAY_TARGET_DIR:-$root/target}
    sync_lock
    cargo build --quiet --manifest-path "$fuzz/Cargo.toml" --no-default-features --bin seeds
    scratch_dir
    "$CARGO_TARGET_DIR/debug/seeds"
    ;;
  *) usage ;;
esac
