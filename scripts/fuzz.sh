#!/usr/bin/env bash
# Fuzzing ocuroot-core (the crate in fuzz/; see fuzz/README.md).
#
#   scripts/fuzz.sh replay                 every corpus and reproducer through
#                                          the checks, on the default (stable)
#                                          toolchain, without libFuzzer: CI
#   scripts/fuzz.sh run <target> [secs]    fuzz one target (nightly, cargo-fuzz)
#   scripts/fuzz.sh all [secs]             each target in turn
#   scripts/fuzz.sh cmin <target>          merge what `run` found into
#                                          fuzz/corpus/<target>, minimised
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
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
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
scratch_dir() {
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
    work=$CARGO_TARGET_DIR/corpus/$2
    if [ -d "$work" ]; then cp -n "$work"/* "$fuzz/corpus/$2/" 2> /dev/null || true; fi
    # shellcheck disable=SC2046
    cargo +nightly fuzz cmin --fuzz-dir "$fuzz" --sanitizer "${FUZZ_SANITIZER:-address}" "$2" \
      "$fuzz/corpus/$2" -- $(options "$2")
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
