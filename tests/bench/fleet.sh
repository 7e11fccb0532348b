#!/usr/bin/env bash
# Benchmark: a fleet of agents releasing at the same moment, sharing one
# store: the fs store (one directory) beside the git store (one bare remote
# on the same disk, reached as a path; the same served by git daemon; with
# -L also through a delay proxy).
#
# One source repository holds environments.ocu.star (4 environments) and a
# package per agent, pkg<i>.ocu.star: a build task, then a phase of 4
# deploys, one per environment; every task, up and down runs `true`. Each
# run starts from an empty store: the environments are registered first
# (`release new environments.ocu.star`, untimed), then every agent, with its
# own OCUROOT_HOME, waits for one go-file and runs
# `release new pkg<i>.ocu.star`. The time is from the go-file until the last
# agent exits. Checked: every agent exits 0, and every package's release has
# its build and its 4 deploys complete. Also reported: when the first agent
# exited, the pushes the fleet made (the remote's reflog of `state`, with
# core.logAllRefUpdates), the pushes refused because another agent pushed
# first (the agents' `push rejected` lines at
# OCUROOT_LOG=ocuroot_core::store::git::publish=debug), and with -L the
# proxy's TCP connections.
#
# Usage: tests/bench/fleet.sh [-a AGENTS] [-n RUNS] [-p PARALLEL] [-L] [-r RTT_MS]
#   -a AGENTS    agents, one package each (default 16)
#   -n RUNS      repetitions per store, the median is reported (default 3)
#   -p PARALLEL  ocuroot --parallel of each agent (default 2)
#   -L           also the git store through the delay proxy (delay_proxy.py)
#   -r RTT_MS    round trip the proxy adds, half each way (default 50)
# Environment: OCUROOT_BIN=path uses that binary instead of building
# target/release/ocuroot; BENCH_KEEP=1 keeps the temp dir.
#
# Exits 0 whatever the figures; non-zero if an agent fails or a release is
# not complete.
set -euo pipefail

agents=16
runs=3
par=2
latency=0
rtt=50
envs=4
while [ $# -gt 0 ]; do
  case "$1" in
    -a) agents="$2"; shift 2 ;;
    -n) runs="$2"; shift 2 ;;
    -p) par="$2"; shift 2 ;;
    -L) latency=1; shift ;;
    -r) rtt="$2"; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
one_way=$(awk -v r="$rtt" 'BEGIN {print r / 2}')

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
if [ -z "${OCUROOT_BIN:-}" ]; then
  echo "building ocuroot (release)..." >&2
  (cd "$top" && cargo build --release -q -p ocuroot-cli)
  OCUROOT_BIN="$top/target/release/ocuroot"
fi
OCUROOT_BIN="$(cd "$(dirname "$OCUROOT_BIN")" && pwd)/$(basename "$OCUROOT_BIN")"

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-fleet.XXXXXX")"

# --- processes -----------------------------------------------------------

bg_pids=()   # servers and agents, each the leader of its own session

# The pids given, the members of their process groups, and all their
# descendants.
tree() {
  ps -eo pid=,ppid=,pgid=,stat= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) root[r[i]] = 1 }
    $4 ~ /^Z/ { next }
    { parent[$1] = $2; if (($1 in root) || ($3 in root)) keep[$1] = 1 }
    END {
      do { more = 0
        for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 }
      } while (more)
      for (p in keep) print p
    }'
}

cleanup() {
  local rc=$? pids i left
  set +e
  exec 3>&2 2>/dev/null   # no "Killed" notices from bash
  if [ ${#bg_pids[@]} -gt 0 ]; then
    for i in 1 2 3; do
      pids=$(tree "${bg_pids[@]}")
      [ -z "$pids" ] && break
      # shellcheck disable=SC2086
      kill -STOP $pids
      for p in "${bg_pids[@]}"; do kill -KILL -- "-$p"; done
      # shellcheck disable=SC2086
      kill -KILL $pids
      sleep 0.1
    done
  fi
  wait
  exec 2>&3 3>&-
  if [ ${#bg_pids[@]} -gt 0 ]; then
    left=$(tree "${bg_pids[@]}")
    if [ -n "$left" ]; then
      echo "processes left behind:" >&2
      # shellcheck disable=SC2086
      ps -o pid,ppid,pgid,stat,cmd -p $(echo $left | tr ' ' ',') >&2
      rc=1
    fi
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "$0: line $LINENO failed: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port what log
  local i
  for i in $(seq 400); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "$2 does not listen on $1" >&2
  tail -20 "$3" >&2
  exit 1
}

# --- servers -------------------------------------------------------------

mkdir -p "$work/daemon"
daemon_port=$(free_port)
setsid git daemon --reuseaddr --export-all --enable=receive-pack --informative-errors \
  --listen=127.0.0.1 --port="$daemon_port" --base-path="$work/daemon" "$work/daemon" \
  </dev/null >>"$work/daemon.log" 2>&1 &
bg_pids+=($!)
wait_port "$daemon_port" "git daemon" "$work/daemon.log"

cases=(fs path daemon)
declare -A label url remote
label[fs]="fs (one directory)"
label[path]="git, one path remote"
remote[path]="$work/path.git"
url[path]="$work/path.git"
label[daemon]="git daemon, direct"
remote[daemon]="$work/daemon/direct.git"
url[daemon]="git://127.0.0.1:$daemon_port/direct.git"
if [ "$latency" = 1 ]; then
  setsid python3 "$here/delay_proxy.py" --listen 127.0.0.1:0 --target "127.0.0.1:$daemon_port" \
    --delay-ms "$one_way" --stats "$work/proxy.stats" --port-file "$work/proxy.port" \
    </dev/null >>"$work/proxy.log" 2>&1 &
  bg_pids+=($!)
  for i in $(seq 400); do
    [ -s "$work/proxy.port" ] && [ -s "$work/proxy.stats" ] && break
    sleep 0.05
  done
  [ -s "$work/proxy.port" ] || { echo "the proxy did not start" >&2; cat "$work/proxy.log" >&2; exit 1; }
  cases+=(proxy)
  label[proxy]="git daemon, ${rtt} ms RTT"
  remote[proxy]="$work/daemon/proxy.git"
  url[proxy]="git://127.0.0.1:$(cat "$work/proxy.port")/proxy.git"
fi

# --- the repositories ----------------------------------------------------

make_repo() { # dir store-call
  local i
  mkdir -p "$1"
  cat > "$1/repo.ocu.star" <<STAR
ocuroot("0.3.0")
repo_alias("fleet")
store.set($2)
STAR
  {
    echo 'ocuroot("0.3.0")'
    echo
    for e in $(seq 0 $((envs - 1))); do
      echo "register_environment(environment(\"env$e\", {}))"
    done
  } > "$1/environments.ocu.star"
  for i in $(seq 0 $((agents - 1))); do
    cat > "$1/pkg$i.ocu.star" <<'STAR'
ocuroot("0.3.0")

def build():
    host.shell("true")
    return done()

def up(environment):
    host.shell("true")
    return done()

def down(environment):
    host.shell("true")
    return done()

task(build, name="build")
phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
STAR
  done
  git -C "$1" init -q
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@example.com commit -qm init
}

make_repo "$work/r/fs" 'store.fs(".store")'
for c in "${cases[@]}"; do
  [ "$c" = fs ] && continue
  make_repo "$work/r/$c" "store.git(\"${url[$c]}\", branch=\"state\")"
done

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minmax() { sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }

# count case home glob: how many refs `state match` lists.
count() {
  (cd "$work/r/$1" && OCUROOT_HOME="$2" "$OCUROOT_BIN" state match "$3" | wc -l)
}

check() { # case home run
  local builds deploys i b d bad=0
  builds=$(count "$1" "$2" 'fleet/-/*/@r1/task/build/1/status/complete')
  deploys=$(count "$1" "$2" 'fleet/-/*/@r1/deploy/*/1/status/complete')
  if [ "$builds" != "$agents" ] || [ "$deploys" != $((agents * envs)) ]; then
    echo "${label[$1]}, run $3: $builds of $agents builds and $deploys of $((agents * envs)) deploys complete" >&2
    for i in $(seq 0 $((agents - 1))); do
      b=$(count "$1" "$2" "fleet/-/pkg$i.ocu.star/@r1/task/build/1/status/complete")
      d=$(count "$1" "$2" "fleet/-/pkg$i.ocu.star/@r1/deploy/*/1/status/complete")
      [ "$b" = 1 ] && [ "$d" = "$envs" ] || echo "  pkg$i: build $b, deploys $d" >&2
    done
    bad=1
  fi
  return "$bad"
}

declare -A times firsts pushes commits conns rejected
for c in "${cases[@]}"; do
  times[$c]=""; firsts[$c]=""; pushes[$c]=""; commits[$c]=""; conns[$c]=""; rejected[$c]=""
done
# The git store's publishing, at debug level: one line per rejected push.
log_filter="warn,ocuroot_core::store::git::publish=debug"

for run in $(seq "$runs"); do
  for c in "${cases[@]}"; do
    dir="$work/r/$c"
    # The last run's store, homes and remote are moved aside, not removed:
    # removing thousands of files just before the timed part makes creating
    # files slow for a while on some file systems (ext4 skips inodes freed
    # in the last 30 s), which would charge one run's clean-up to the next.
    # They are removed at exit.
    mkdir -p "$work/old"
    [ -e "$dir/.store" ] && mv "$dir/.store" "$work/old/store.$c.$run"
    [ -e "$work/homes" ] && mv "$work/homes" "$work/old/homes.$c.$run"
    mkdir -p "$work/homes"
    if [ "$c" != fs ]; then
      [ -e "${remote[$c]}" ] && mv "${remote[$c]}" "$work/old/remote.$c.$run"
      git init -q --bare "${remote[$c]}"
      git -C "${remote[$c]}" config core.logAllRefUpdates always
    fi
    # The environments, before the fleet (untimed).
    if ! (cd "$dir" && OCUROOT_HOME="$work/homes/setup" "$OCUROOT_BIN" release new environments.ocu.star -q \
        >"$work/setup.out" 2>&1); then
      echo "${label[$c]}: registering the environments failed:" >&2
      cat "$work/setup.out" >&2
      exit 1
    fi
    pushes_before=0
    [ "$c" != fs ] && pushes_before=$(git -C "${remote[$c]}" reflog show state | wc -l)
    [ "$c" = proxy ] && conns_before=$(cat "$work/proxy.stats")

    # The agents, each in its own session, waiting for the go-file.
    go="$work/go.$c.$run"
    agent_pids=()
    first=${#bg_pids[@]}
    for i in $(seq 0 $((agents - 1))); do
      out="$work/agent.$c.$run.$i"
      (cd "$dir" && exec setsid sh -c '
          out=$1
          touch "$out.ready"
          while [ ! -e "$2" ]; do sleep 0.005; done
          shift 2
          "$@"
          rc=$?
          date +%s.%N > "$out.end"
          exit $rc' sh "$out" "$go" \
        env OCUROOT_HOME="$work/homes/agent$i" OCUROOT_LOG="$log_filter" \
        timeout -k 5 600 "$OCUROOT_BIN" release new "pkg$i.ocu.star" --parallel "$par" -q \
        </dev/null >"$out.out" 2>"$out.err") &
      agent_pids+=($!)
      bg_pids+=($!)
    done
    for t in $(seq 2000); do
      ready=$(find "$work" -maxdepth 1 -name "agent.$c.$run.*.ready" | wc -l)
      [ "$ready" = "$agents" ] && break
      sleep 0.01
    done
    if [ "$ready" != "$agents" ]; then
      echo "only $ready of $agents agents got ready" >&2
      exit 1
    fi
    t0=$(now)
    touch "$go"
    failed=0
    for i in $(seq 0 $((agents - 1))); do
      if ! wait "${agent_pids[$i]}"; then
        echo "${label[$c]}, run $run: agent $i failed:" >&2
        tail -20 "$work/agent.$c.$run.$i.err" >&2
        failed=1
      fi
    done
    t1=$(now)
    bg_pids=("${bg_pids[@]:0:$first}")
    [ "$failed" = 0 ] || exit 1
    times[$c]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') "
    firsts[$c]+="$(cat "$work"/agent."$c.$run".*.end | sort -n | head -1 |
      awk -v a="$t0" '{printf "%.3f", $1 - a}') "
    # Pushes the remote refused because another agent pushed first (the
    # store's debug log says so; then it fetches, re-applies and retries).
    rejected[$c]+="$(cat "$work"/agent."$c.$run".*.err | grep -c 'push rejected' || true) "
    if [ "$c" != fs ]; then
      p=$(git -C "${remote[$c]}" reflog show state | wc -l)
      pushes[$c]+="$((p - pushes_before)) "
      commits[$c]+="$(git -C "${remote[$c]}" rev-list --count state) "
      if [ -n "$(git -C "${remote[$c]}" rev-list --merges state)" ]; then
        echo "${label[$c]}: merge commits on the state branch" >&2
        exit 1
      fi
    fi
    [ "$c" = proxy ] && conns[$c]+="$(( $(cat "$work/proxy.stats") - conns_before )) "
    check "$c" "$work/homes/check" "$run" || exit 1
  done
  echo "run $run of $runs done" >&2
done

col() { tr ' ' '\n' | awk 'NF'; }
fs_med=$(printf '%s' "${times[fs]}" | col | median)
echo
echo "$agents agents at once, each releasing its own package (a build, then $envs deploys),"
echo "--parallel $par each, median of $runs runs (each from an empty store and OCUROOT_HOMEs)"
echo
row='| %-24s | %8s | %11s | %7s | %8s | %6s | %8s | %7s | %11s |\n'
# shellcheck disable=SC2059
printf "$row" store "median s" "min-max s" "x fs" "1st done" pushes rejected commits connections
echo "|--------------------------|---------:|------------:|--------:|---------:|-------:|---------:|--------:|------------:|"
for c in "${cases[@]}"; do
  med=$(printf '%s' "${times[$c]}" | col | median)
  mm=$(printf '%s' "${times[$c]}" | col | minmax)
  ratio=$(awk -v a="$med" -v b="$fs_med" 'BEGIN {printf "%.2fx", a / b}')
  f=$(printf '%s' "${firsts[$c]}" | col | median)
  p=""; k=""; n=""; j=""
  if [ "$c" != fs ]; then
    p=$(printf '%s' "${pushes[$c]}" | col | median)
    k=$(printf '%s' "${commits[$c]}" | col | median)
    j=$(printf '%s' "${rejected[$c]}" | col | median)
  fi
  [ "$c" = proxy ] && n=$(printf '%s' "${conns[$c]}" | col | median)
  # shellcheck disable=SC2059
  printf "$row" "${label[$c]}" "$(printf %.3f "$med")" "$mm" "$ratio" "$f" "$p" "$j" "$k" "$n"
done
echo
echo "per run:"
for c in "${cases[@]}"; do
  echo "  ${label[$c]}: times ${times[$c]}| first done ${firsts[$c]}| pushes ${pushes[$c]}|" \
    "rejected ${rejected[$c]}| connections ${conns[$c]}"
done
echo "(1st done: when the first agent exited; pushes: the fleet's, after the environments;"
echo " rejected: pushes refused because another agent pushed first; commits: all on the branch)"
echo
path_med=$(printf '%s' "${times[path]}" | col | median)
daemon_med=$(printf '%s' "${times[daemon]}" | col | median)
awk -v a="$path_med" -v d="$daemon_med" -v b="$fs_med" 'BEGIN {
  r = a / b
  printf "target: git/fs at most 3x; one path remote: %.2fx, %s; git daemon direct: %.2fx\n", r, (r <= 3 ? "met" : "NOT met"), d / b }'
