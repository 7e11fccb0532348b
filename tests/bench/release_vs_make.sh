#!/usr/bin/env bash
# Benchmark: `ocuroot release new` vs `make -j` on the same dependency graph.
#
# The graph is 10 phases x 100 tasks; every task runs `true`. Every task of
# phase k waits for all tasks of phase k-1. ocuroot uses the filesystem store
# (durable state, fsync on commit). Both run with 2 workers.
#
# Usage: tests/bench/release_vs_make.sh [-n RUNS] [-p PARALLEL]
#   -n RUNS      repetitions per tool, median is reported (default 3)
#   -p PARALLEL  make -j / ocuroot --parallel (default 2)
# Environment: BENCH_KEEP=1 keeps the temp dir (its path is printed).
#
# Exits 0 whatever the ratio (a measurement, not a test); non-zero if a run
# fails or the release does not complete every task.
set -euo pipefail

runs=3
par=2
phases=10
tasks=100
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="$2"; shift 2 ;;
    -p) par="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
total=$((phases * tasks))

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

echo "building ocuroot (release)..." >&2
(cd "$top" && cargo build --release -q -p ocuroot-cli)
ocuroot="$top/target/release/ocuroot"

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-bench.XXXXXX")"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  echo "keeping $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi
cd "$work"

cat > repo.ocu.star <<'STAR'
ocuroot("0.3.0")
repo_alias("bench")
store.set(store.fs(".store"))
STAR

cat > release.ocu.star <<STAR
ocuroot("0.3.0")

def work():
    host.shell("true")
    return done()

[phase("p{}".format(p), tasks=[task(work, name="t{}_{}".format(p, i)) for i in range(${tasks})]) for p in range(${phases})]
STAR

# Makefile: t<p>_<i> depends on barrier b<p-1>; b<p> depends on all t<p>_*.
{
  printf '.PHONY: all'
  for ((p = 0; p < phases; p++)); do
    printf ' b%d' "$p"
    for ((i = 0; i < tasks; i++)); do printf ' t%d_%d' "$p" "$i"; done
  done
  printf '\n\nall: b%d\n\n' $((phases - 1))
  for ((p = 0; p < phases; p++)); do
    printf 'b%d:' "$p"
    for ((i = 0; i < tasks; i++)); do printf ' t%d_%d' "$p" "$i"; done
    printf '\n\n'
    for ((i = 0; i < tasks; i++)); do
      if ((p > 0)); then
        printf 't%d_%d: b%d\n\t@true\n' "$p" "$i" $((p - 1))
      else
        printf 't%d_%d:\n\t@true\n' "$p" "$i"
      fi
    done
    printf '\n'
  done
} > Makefile

printf '.store/\n' > .gitignore
git init --quiet
git add .
git -c user.name=bench -c user.email=bench@example.invalid commit --quiet -m bench

# Sanity checks: the package evaluates; make knows every target.
if ! "$ocuroot" release lint release.ocu.star > lint.out 2>&1; then
  cat lint.out >&2; echo "lint failed" >&2; exit 1
fi
rm -f lint.out
make -n -s all > /dev/null

now_ns() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

make_times=()
ocu_times=()
ckpt_times=()
for ((r = 1; r <= runs; r++)); do
  t0=$(now_ns)
  if ! make -j"$par" -s all; then echo "make failed (run $r)" >&2; exit 1; fi
  t1=$(now_ns)
  make_times+=($(( (t1 - t0) / 1000000 )))

  rm -rf .store
  t0=$(now_ns)
  if ! "$ocuroot" release new release.ocu.star --parallel "$par" -q > release.out 2>&1; then
    cat release.out >&2; echo "ocuroot release new failed (run $r)" >&2; exit 1
  fi
  t1=$(now_ns)
  ocu_times+=($(( (t1 - t0) / 1000000 )))
  n=$("$ocuroot" state match 'bench/-/release.ocu.star/@r1/task/*/1/status/complete' | wc -l)
  if [ "$n" -ne "$total" ]; then
    echo "expected $total complete task runs, found $n (run $r)" >&2; exit 1
  fi
  # The release's state lives in the store's log until a checkpoint writes
  # the files (every 8 MiB of log, about every third release of this size).
  # Measured apart: it is not part of the release, but it is a real cost.
  t0=$(now_ns)
  "$ocuroot" state checkpoint
  t1=$(now_ns)
  ckpt_times+=($(( (t1 - t0) / 1000000 )))
  echo "run $r: make ${make_times[-1]} ms, ocuroot ${ocu_times[-1]} ms, checkpoint ${ckpt_times[-1]} ms" >&2
done

m=$(median "${make_times[@]}")
o=$(median "${ocu_times[@]}")
c=$(median "${ckpt_times[@]}")
awk -v m="$m" -v o="$o" -v c="$c" -v n="$total" -v par="$par" -v runs="$runs" -v ph="$phases" -v tk="$tasks" 'BEGIN {
  printf "\n%d phases x %d tasks (host.shell(\"true\")), parallel %d, median of %d runs\n", ph, tk, par, runs
  printf "%-28s %10s\n", "", "value"
  printf "%-28s %8d ms\n", "make -j" par " median", m
  printf "%-28s %8d ms\n", "ocuroot release new median", o
  printf "%-28s %9.2fx\n", "ratio (ocuroot/make)", (m > 0 ? o / m : 0)
  printf "%-28s %8.3f ms\n", "per-task overhead", (o - m) / n
  printf "%-28s %9s\n", "target", "<= 1.50x"
  printf "%-28s %9s\n", "meets target", ((m > 0 && o / m <= 1.5) ? "yes" : "no")
  printf "%-28s %8d ms\n", "then state checkpoint", c
  printf "%-28s %9.2fx\n", "ratio with the checkpoint", (m > 0 ? (o + c) / m : 0)
}'
