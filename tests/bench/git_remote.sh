#!/usr/bin/env bash
# Benchmark: one release of 100 tasks with the git store on network remotes
# (git daemon and a private sshd on 127.0.0.1, through a proxy that adds
# latency, and sshd direct) beside the same release with the fs store.
#
# The release is 4 phases x 25 tasks, every task runs `true` (the package of
# git_store.sh). Each timed run starts from an empty store (a fresh bare
# remote and a fresh OCUROOT_HOME). Stores:
#   fs          store.fs(".store")
#   local       a bare remote given by path, no network (git_store.sh's)
#   daemon+rtt  git://127.0.0.1:<proxy>/remote.git, git daemon behind the
#               delay proxy (delay_proxy.py)
#   ssh+rtt     ssh://<user>@127.0.0.1:<proxy>/<abs path>, sshd behind the proxy
#   ssh direct  ssh://<user>@127.0.0.1:<sshd port>/<abs path> (loopback)
# For each: the median wall time, the pushes (lines of the remote's reflog of
# `state`), the commits, and the TCP connections (the proxy's count; for
# sshd direct, the "Accepted publickey" lines of its log, LogLevel VERBOSE)
# and, for ssh, the sessions (its "Starting session" lines: one per push or
# fetch over the shared connection).
#
# Usage: tests/bench/git_remote.sh [-n RUNS] [-p PARALLEL] [-r RTT_MS]
#   -n RUNS      repetitions per store, the median is reported (default 5)
#   -p PARALLEL  ocuroot --parallel (default 2)
#   -r RTT_MS    round trip the proxy adds, half each way (default 50)
# Environment: OCUROOT_BIN=path uses that binary instead of building
# target/release/ocuroot; BENCH_KEEP=1 keeps the temp dir.
#
# Needs git daemon, /usr/sbin/sshd (and /run/sshd, made when run as root),
# ssh, ssh-keygen and python3. Every server runs in its own session and is
# killed with its process group and descendants at exit.
# Exits 0 whatever the figures; non-zero if a run fails or a task did not
# complete.
set -euo pipefail

runs=5
par=2
rtt=50
phases=4
tasks=25
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="$2"; shift 2 ;;
    -p) par="$2"; shift 2 ;;
    -r) rtt="$2"; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
total=$((phases * tasks))
target_pushes=$((2 * phases + 2))
one_way=$(awk -v r="$rtt" 'BEGIN {print r / 2}')

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
if [ -z "${OCUROOT_BIN:-}" ]; then
  echo "building ocuroot (release)..." >&2
  (cd "$top" && cargo build --release -q -p ocuroot-cli)
  OCUROOT_BIN="$top/target/release/ocuroot"
fi
OCUROOT_BIN="$(cd "$(dirname "$OCUROOT_BIN")" && pwd)/$(basename "$OCUROOT_BIN")"
for tool in git ssh ssh-keygen python3 setsid; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
[ -x /usr/sbin/sshd ] || { echo "needs /usr/sbin/sshd" >&2; exit 1; }

# Short: ssh's control sockets go to <work>/h/ssh/<40 hex digits>.
work="$(mktemp -d "${TMPDIR:-/tmp}/ocu-rem.XXXXXX")"
if [ $((${#work} + 70)) -gt 104 ]; then
  echo "the temp dir $work is too long for ssh's control sockets; set TMPDIR" >&2
  exit 1
fi
case "$work" in *[[:space:]\'\"\\\#\$\`]*)
  echo "the temp dir $work must be a plain path" >&2; exit 1 ;;
esac

# --- processes -----------------------------------------------------------

server_pids=()   # each the leader of its own session (setsid)
run_pid=""       # the release being timed, if any

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

# Stop shared ssh connections (ControlPersist masters detach from their
# parent): `ssh -O exit` on every control socket under $1.
close_masters() {
  local sock
  for sock in "$1"/ssh/*; do
    [ -S "$sock" ] || continue
    ssh -o ControlPath="$sock" -O exit ocuroot-bench >/dev/null 2>&1 || true
  done
}

# Processes whose command line names the temp dir (a detached ssh master
# whose socket could not be reached, a server's child), other than this
# shell.
named_here() {
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = $$ ] && continue
    if tr '\0' ' ' 2>/dev/null < "$d/cmdline" | grep -qF "$work/"; then
      echo "$pid"
    fi
  done
}

cleanup() {
  local rc=$? pids i
  set +e
  close_masters "$work/h"
  # No "Killed" notices from bash for the servers.
  exec 3>&2 2>/dev/null
  for i in 1 2 3; do
    pids=$( { tree "${server_pids[@]}" $run_pid; named_here; } | sort -u)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill -STOP $pids 2>/dev/null
    for p in "${server_pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.1
  done
  wait
  exec 2>&3 3>&-
  left=$( { tree "${server_pids[@]}" $run_pid; named_here; } | sort -u)
  if [ -n "$left" ]; then
    echo "processes left behind:" >&2
    # shellcheck disable=SC2086
    ps -o pid,ppid,pgid,stat,cmd -p $(echo $left | tr ' ' ',') >&2
    rc=1
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
  [ -n "${3:-}" ] && tail -20 "$3" >&2
  exit 1
}

# start_proxy target-port name: starts the delay proxy; sets proxy_port.
start_proxy() {
  local stats="$work/$2.stats" portf="$work/$2.port"
  setsid python3 "$here/delay_proxy.py" --listen 127.0.0.1:0 --target "127.0.0.1:$1" \
    --delay-ms "$one_way" --stats "$stats" --port-file "$portf" \
    </dev/null >>"$work/$2.log" 2>&1 &
  server_pids+=($!)
  local i
  for i in $(seq 400); do
    [ -s "$portf" ] && [ -s "$stats" ] && break
    sleep 0.05
  done
  [ -s "$portf" ] || { echo "the proxy $2 did not start" >&2; cat "$work/$2.log" >&2; exit 1; }
  proxy_port=$(cat "$portf")
}

proxy_count() { cat "$work/$1.stats"; }

# --- servers -------------------------------------------------------------

# git daemon serving $work/daemon, behind a proxy.
mkdir -p "$work/daemon"
daemon_port=$(free_port)
setsid git daemon --reuseaddr --export-all --enable=receive-pack --informative-errors \
  --listen=127.0.0.1 --port="$daemon_port" --base-path="$work/daemon" "$work/daemon" \
  </dev/null >>"$work/daemon.log" 2>&1 &
server_pids+=($!)
wait_port "$daemon_port" "git daemon" "$work/daemon.log"
start_proxy "$daemon_port" daemon-proxy
daemon_proxy=$proxy_port

# sshd with its own host key, authorised key and configuration.
if [ ! -d /run/sshd ]; then
  if [ "$(id -u)" = 0 ]; then
    mkdir -p /run/sshd && chmod 755 /run/sshd
  else
    echo "sshd needs /run/sshd (run as root, or make it)" >&2
    exit 1
  fi
fi
s="$work/sshd"
mkdir -p "$s" "$work/ssh-repos"
user=$(whoami)
ssh-keygen -q -t ed25519 -N '' -C host -f "$s/host_key"
ssh-keygen -q -t ed25519 -N '' -C client -f "$s/client_key"
cp "$s/client_key.pub" "$s/authorized_keys"
chmod 600 "$s/authorized_keys"
sshd_port=$(free_port)
cat > "$s/sshd_config" <<EOF
ListenAddress 127.0.0.1:$sshd_port
AddressFamily inet
HostKey $s/host_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
MaxStartups 100:30:200
MaxSessions 100
UseDNS no
PrintMotd no
X11Forwarding no
LogLevel VERBOSE
# Root's ~/.bashrc may run slow things for every command unless bash sees
# it is nested.
SetEnv SHLVL=1
EOF
chmod 600 "$s/sshd_config"
if /usr/sbin/sshd -t -o PerSourcePenalties=no -f "$s/sshd_config" 2>/dev/null; then
  echo "PerSourcePenalties no" >> "$s/sshd_config"
fi
/usr/sbin/sshd -t -f "$s/sshd_config"
setsid /usr/sbin/sshd -D -f "$s/sshd_config" -E "$s/sshd.log" </dev/null >>"$s/sshd.out" 2>&1 &
server_pids+=($!)
wait_port "$sshd_port" sshd "$s/sshd.log"
start_proxy "$sshd_port" ssh-proxy
ssh_proxy=$proxy_port
read -r kind blob _ < "$s/host_key.pub"
{
  echo "[127.0.0.1]:$sshd_port $kind $blob"
  echo "[127.0.0.1]:$ssh_proxy $kind $blob"
} > "$s/known_hosts"
cat > "$s/ssh_config" <<EOF
Host *
  UserKnownHostsFile $s/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  IdentitiesOnly yes
  BatchMode yes
  LogLevel ERROR
EOF
chmod 600 "$s/ssh_config"
ssh_cmd="ssh -F $s/ssh_config -o UserKnownHostsFile=$s/known_hosts -i $s/client_key -o IdentitiesOnly=yes"
# Fail early (and say why) if ssh cannot log in.
if ! $ssh_cmd -p "$sshd_port" "$user@127.0.0.1" true </dev/null >/dev/null 2>"$work/probe.err"; then
  echo "ssh to the private sshd failed:" >&2
  cat "$work/probe.err" >&2
  tail -20 "$s/sshd.log" >&2
  exit 1
fi

# --- repositories --------------------------------------------------------

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

cases=(fs local daemon ssh-proxy ssh-direct)
declare -A label remote url
label[fs]="fs"
label[local]="git, local path"
remote[local]="$work/local.git"
url[local]="$work/local.git"
label[daemon]="git daemon, ${rtt} ms RTT"
label[ssh-proxy]="ssh, ${rtt} ms RTT"
label[ssh-direct]="ssh, loopback"
remote[daemon]="$work/daemon/remote.git"
url[daemon]="git://127.0.0.1:$daemon_proxy/remote.git"
remote[ssh-proxy]="$work/ssh-repos/proxy.git"
url[ssh-proxy]="ssh://$user@127.0.0.1:$ssh_proxy$work/ssh-repos/proxy.git"
remote[ssh-direct]="$work/ssh-repos/direct.git"
url[ssh-direct]="ssh://$user@127.0.0.1:$sshd_port$work/ssh-repos/direct.git"

make_repo "$work/r/fs" 'store.fs(".store")'
for c in local daemon ssh-proxy ssh-direct; do
  make_repo "$work/r/$c" "store.git(\"${url[$c]}\", branch=\"state\")"
done

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minmax() { sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }

check() { # case home
  local n
  n=$(cd "$work/r/$1" && env OCUROOT_HOME="$2" GIT_SSH_COMMAND="$ssh_cmd" \
    "$OCUROOT_BIN" state match 'bench/-/release.ocu.star/@r1/task/*/1/status/complete' | wc -l)
  if [ "$n" != "$total" ]; then
    echo "${label[$1]}: only $n of $total tasks complete" >&2
    exit 1
  fi
}

accepted() { grep -c "Accepted publickey" "$s/sshd.log" || true; }
sessions() { grep -c "Starting session" "$s/sshd.log" || true; }

declare -A times pushes commits conns sess
for c in "${cases[@]}"; do times[$c]=""; pushes[$c]=""; commits[$c]=""; conns[$c]=""; sess[$c]=""; done

for i in $(seq "$runs"); do
  for c in "${cases[@]}"; do
    dir="$work/r/$c"
    home="$work/h"
    rm -rf "$home" "$dir/.store"
    mkdir -p "$home"
    if [ "$c" != fs ]; then
      rm -rf "${remote[$c]}"
      git init -q --bare "${remote[$c]}"
      git -C "${remote[$c]}" config core.logAllRefUpdates always
    fi
    case "$c" in
      daemon) before=$(proxy_count daemon-proxy) ;;
      ssh-proxy) before=$(proxy_count ssh-proxy) ;;
      ssh-direct) before=$(accepted) ;;
    esac
    sessions_before=$(sessions)
    t0=$(now)
    # In the background, so that a signal to this script is handled at once.
    (cd "$dir" && OCUROOT_HOME="$home" GIT_SSH_COMMAND="$ssh_cmd" \
      exec "$OCUROOT_BIN" release new release.ocu.star --parallel "$par" -q \
      >"$work/out.$c.$i" 2>"$work/err.$c.$i") &
    run_pid=$!
    if ! wait "$run_pid"; then
      echo "${label[$c]}: run $i failed:" >&2
      tail -30 "$work/err.$c.$i" >&2
      exit 1
    fi
    t1=$(now)
    run_pid=""
    times[$c]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') "
    case "$c" in
      daemon) after=$(proxy_count daemon-proxy) ;;
      ssh-proxy) after=$(proxy_count ssh-proxy) ;;
      ssh-direct) after=$(accepted) ;;
    esac
    case "$c" in ssh-*) sess[$c]+="$(( $(sessions) - sessions_before )) " ;; esac
    if [ "$c" != fs ]; then
      [ "$c" != local ] && conns[$c]+="$((after - before)) "
      pushes[$c]+="$(git -C "${remote[$c]}" reflog show state | wc -l) "
      commits[$c]+="$(git -C "${remote[$c]}" rev-list --count state) "
      git -C "${remote[$c]}" fsck --strict --no-dangling 2>/dev/null
      if [ -n "$(git -C "${remote[$c]}" rev-list --merges state)" ]; then
        echo "${label[$c]}: merge commits on the state branch" >&2
        exit 1
      fi
    fi
    check "$c" "$home"
    close_masters "$home"
  done
  echo "run $i of $runs done" >&2
done

col() { tr ' ' '\n' | awk 'NF'; }
fs_med=$(printf '%s' "${times[fs]}" | col | median)
echo
echo "release of $total tasks ($phases phases x $tasks), --parallel $par, median of $runs runs"
echo "(each run from an empty remote and OCUROOT_HOME; RTT = round trip added by the proxy)"
echo
row='| %-22s | %8s | %11s | %6s | %6s | %7s | %11s | %12s |\n'
# shellcheck disable=SC2059
printf "$row" store "median s" "min-max s" "x fs" pushes commits connections "ssh sessions"
echo "|------------------------|---------:|------------:|-------:|-------:|--------:|------------:|-------------:|"
for c in "${cases[@]}"; do
  med=$(printf '%s' "${times[$c]}" | col | median)
  mm=$(printf '%s' "${times[$c]}" | col | minmax)
  ratio=$(awk -v a="$med" -v b="$fs_med" 'BEGIN {printf "%.1fx", a / b}')
  if [ "$c" = fs ]; then
    p=""; k=""; n=""
  else
    p=$(printf '%s' "${pushes[$c]}" | col | median)
    k=$(printf '%s' "${commits[$c]}" | col | median)
    n=$(printf '%s' "${conns[$c]}" | col | median)
  fi
  [ "$c" = local ] && n=""
  e=""
  case "$c" in ssh-*) e=$(printf '%s' "${sess[$c]}" | col | median) ;; esac
  # shellcheck disable=SC2059
  printf "$row" "${label[$c]}" "$(printf %.3f "$med")" "$mm" "$ratio" "$p" "$k" "$n" "$e"
done
echo
echo "pushes, commits, connections and ssh sessions (one per push or fetch) are medians; per run:"
for c in local daemon ssh-proxy ssh-direct; do
  echo "  ${label[$c]}: times ${times[$c]}| pushes ${pushes[$c]}| connections ${conns[$c]}|" \
    "sessions ${sess[$c]}"
done
echo
echo "targets at ${rtt} ms RTT: under 2 s, at most $target_pushes pushes (2 per phase + 2)"
for c in daemon ssh-proxy; do
  med=$(printf '%s' "${times[$c]}" | col | median)
  p=$(printf '%s' "${pushes[$c]}" | col | median)
  verdict=$(awk -v t="$med" -v p="$p" -v tp="$target_pushes" \
    'BEGIN {printf "%s, %s", (t < 2 ? "time met" : "time NOT met"), (p <= tp ? "pushes met" : "pushes NOT met")}')
  printf '  %-24s %.3f s, %s pushes: %s\n' "${label[$c]}:" "$med" "$p" "$verdict"
done
