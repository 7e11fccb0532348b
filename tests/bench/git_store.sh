#!/usr/bin/env bash
# Benchmark: one release of 100 tasks with the git store (a bare remote on
# disk) beside the same release with the fs store, and the commits and
# pushes the git store made.
#
# The release is 4 phases x 25 tasks; every task runs `true`. Each timed run
# starts from an empty store (a fresh bare remote and OCUROOT_HOME for git).
#
# Usage: tests/bench/git_store.sh [-n RUNS] [-p PARALLEL]
#   -n RUNS      repetitions per store, the median is reported (default 5)
#   -p PARALLEL  ocuroot --parallel (default 2)
# Environment: OCUROOT_BIN=path uses that binary instead of building
# target/release/ocuroot; BENCH_KEEP=1 keeps the temp dir.
#
# Exits 0 whatever the figures; non-zero if a run fails or a task did not
# complete.
set -euo pipefail

runs=5
par=2
phases=4
tasks=25
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="$2"; shift 2 ;;
    -p) par="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
total=$((phases * tasks))

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
if [ -z "${OCUROOT_BIN:-}" ]; then
  echo "building ocuroot (release)..." >&2
  (cd "$top" && cargo build --release -q -p ocuroot-cli)
  OCUROOT_BIN="$top/target/release/ocuroot"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-gitbench.XXXXXX")"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  echo "keeping $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi

make_repo() { # dir store-call
  mkdir -p "$1"
  cat > "$1/repo.ocu.star" <<STAR
ocuroot("0.3.0")
repo_alias("bench")
store.set($2)
STAR
  cat > "$1/release.ocu.star" <<STAR
ocuroot("0.3.0")

def work():
    host.shell("true")
    return done()

[phase("p{}".format(p), tasks=[task(work, name="t{}_{}".format(p, i)) for i in range(${tasks})]) for p in range(${phases})]
STAR
  git -C "$1" init -q
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@example.com commit -qm init
}

make_repo "$work/fs" 'store.fs(".store")'
make_repo "$work/git" "store.git(\"$work/remote.git\", branch=\"state\")"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

check() { # dir env...
  local n
  n=$(cd "$1" && env "${@:2}" "$OCUROOT_BIN" state match 'bench/-/release.ocu.star/@r1/task/*/1/status/complete' | wc -l)
  if [ "$n" != "$total" ]; then
    echo "only $n of $total tasks complete in $1" >&2
    exit 1
  fi
}

fs_times=()
git_times=()
commits=0
pushes=0
for i in $(seq "$runs"); do
  rm -rf "$work/fs/.store"
  t0=$(now)
  (cd "$work/fs" && "$OCUROOT_BIN" release new release.ocu.star --parallel "$par" -q >/dev/null)
  t1=$(now)
  fs_times+=("$(echo "$t1 - $t0" | bc)")
  check "$work/fs"

  rm -rf "$work/remote.git" "$work/home"
  git init -q --bare "$work/remote.git"
  git -C "$work/remote.git" config core.logAllRefUpdates always
  t0=$(now)
  (cd "$work/git" && OCUROOT_HOME="$work/home" "$OCUROOT_BIN" release new release.ocu.star --parallel "$par" -q >/dev/null)
  t1=$(now)
  git_times+=("$(echo "$t1 - $t0" | bc)")
  check "$work/git" OCUROOT_HOME="$work/home"
  commits=$(git -C "$work/remote.git" rev-list --count state)
  pushes=$(git -C "$work/remote.git" reflog show state | wc -l)
  git -C "$work/remote.git" fsck --strict --no-dangling 2>/dev/null
  if [ -n "$(git -C "$work/remote.git" rev-list --merges state)" ]; then
    echo "merge commits on the state branch" >&2
    exit 1
  fi
done

fs_med=$(printf '%s\n' "${fs_times[@]}" | median)
git_med=$(printf '%s\n' "${git_times[@]}" | median)
ratio=$(echo "scale=2; $git_med / $fs_med" | bc)
echo "release of $total tasks ($phases phases x $tasks), --parallel $par, median of $runs runs"
printf 'fs store:  %.3f s\n' "$fs_med"
printf 'git store: %.3f s  (%sx the fs store)\n' "$git_med" "$ratio"
echo "git store: $commits commits, $pushes pushes (a commit per transaction; outcomes share pushes with the next claim)"
