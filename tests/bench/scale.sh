#!/usr/bin/env bash
# Benchmark: how ocuroot scales with the number of environments.
#
# For each N, in a fresh git repo with the filesystem store: register N
# environments (`release new environments.ocu.star`), release one package
# that deploys to all of them with a no-op `up` (`release new release.ocu.star
# --parallel P`), then `state match` the N completed deploy runs (the check:
# exactly N) and `state get` one run document, then `state checkpoint` (the
# files of the release's state, written from the store's log) and the same
# `state get` from the files. Wall time and peak RSS of
# each command are recorded.
#
# --docs M: a store of about M documents (a real release of K deploys,
# checkpointed, then copied as releases r2, r3, ... of the same package),
# where `state match` of one release's runs and `state get` of one document
# are timed beside `find` over the same files.
#
# Usage: tests/bench/scale.sh [-N LIST] [--docs M] [-K RUNS] [-p PARALLEL]
#   -N LIST     numbers of environments (default "100 1000 10000"); -N "" skips
#   --docs M    also build a store of about M documents and time reads in it
#   -K RUNS     deploys per release in the --docs store (default 1000)
#   -p PARALLEL ocuroot --parallel for the releases (default 2)
# Environment: OCUROOT=path uses that binary instead of building
# target/release/ocuroot; BENCH_KEEP=1 keeps the temp dir; TMPDIR places it.
#
# Exits 0 whatever the figures (a measurement, not a test); non-zero if a
# command fails or a check of its result fails.
set -euo pipefail

ns="100 1000 10000"
docs=0
per_release=1000
par=2
while [ $# -gt 0 ]; do
  case "$1" in
    -N|--docs|-K|-p) [ $# -ge 2 ] || { echo "$1 needs a value (see -h)" >&2; exit 2; } ;;
  esac
  case "$1" in
    -N) ns="$2"; shift 2 ;;
    --docs) docs="$2"; shift 2 ;;
    -K) per_release="$2"; shift 2 ;;
    -p) par="$2"; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see -h)" >&2; exit 2 ;;
  esac
done
for v in $ns "$docs" "$per_release" "$par"; do
  case "$v" in
    ''|*[!0-9]*) echo "not a number: '$v'" >&2; exit 2 ;;
  esac
done
if [ "$per_release" -lt 1 ] || [ "$par" -lt 1 ]; then
  echo "-K and -p must be at least 1" >&2; exit 2
fi
for n in $ns; do
  if [ "$n" -lt 1 ]; then echo "-N: every N must be at least 1" >&2; exit 2; fi
done
if [ -z "${ns// /}" ] && [ "$docs" -eq 0 ]; then
  echo "nothing to do: -N is empty and no --docs" >&2; exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"

if [ -n "${OCUROOT:-}" ]; then
  case "$OCUROOT" in
    */*) ocuroot="$(cd "$(dirname "$OCUROOT")" && pwd)/$(basename "$OCUROOT")" ;;
    *) ocuroot="$(command -v "$OCUROOT" || true)" ;;
  esac
  if [ ! -x "$ocuroot" ]; then echo "OCUROOT=$OCUROOT is not an executable" >&2; exit 2; fi
else
  echo "building ocuroot (release)..." >&2
  (cd "$top" && cargo build --release -q -p ocuroot-cli)
  ocuroot="$top/target/release/ocuroot"
fi

# GNU time for the peak RSS (%M); its %e has two decimals only, so the wall
# time is taken with date around it.
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
    echo "installing time (for /usr/bin/time)..." >&2
    apt-get update -qq > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time > /dev/null
  else
    echo "/usr/bin/time (GNU time) is needed: apt-get install time" >&2; exit 2
  fi
fi
if [ "$docs" -gt 0 ] && ! command -v python3 > /dev/null; then
  echo "--docs needs python3" >&2; exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ocuroot-scale.XXXXXX")"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  echo "keeping $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi

if [ "$docs" -gt 0 ]; then
  # Each document is a file of ~0.3-1 KiB (a 4 KiB block or page) and, on
  # average, 1.33 directories of its own; refuse early rather than fill a
  # filesystem.
  fstype=$(stat -f -c %T "$work")
  free_inodes=$(df -Pi "$work" | awk 'NR == 2 { print $4 }')
  free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
  need_inodes=$((docs * 24 / 10))
  if [ "$fstype" = tmpfs ]; then need_kib=$((docs * 5)); else need_kib=$((docs * 10)); fi
  if [ "${free_inodes:-0}" -gt 0 ] && [ "$free_inodes" -lt "$need_inodes" ]; then
    echo "--docs $docs needs about $need_inodes inodes, $work has $free_inodes free" >&2; exit 2
  fi
  if [ "${free_kib:-0}" -lt "$need_kib" ]; then
    echo "--docs $docs needs about $((need_kib / 1024)) MiB, $work has $((free_kib / 1024)) MiB free" >&2; exit 2
  fi
  if [ "$fstype" != tmpfs ] && [ "$docs" -ge 100000 ]; then
    echo "note: $work is on $fstype; creating and then removing $docs files there can take many minutes (TMPDIR=/dev/shm is faster)" >&2
  fi
fi

pkg="bench/-/release.ocu.star"

# Progress, with the seconds since the start, on stderr.
note() { echo "[+${SECONDS}s] $*" >&2; }

# timed LABEL CMD...: runs CMD in the current directory, stdout to
# LABEL.out, stderr to LABEL.err, GNU time's figures to LABEL.time. Sets
# `secs` (wall, 3 decimals) and `kib` (peak RSS). A failure prints the
# command's stderr and exits 1.
secs=0
kib=0
timed() {
  local label=$1 t0 t1
  shift
  t0=$(date +%s%N)
  if ! /usr/bin/time -f '%e %M' -o "$label.time" "$@" > "$label.out" 2> "$label.err"; then
    echo "failed: $* (in $PWD)" >&2
    tail -n 20 "$label.err" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  kib=$(tail -n 1 "$label.time" | awk '{ print $2 }')
}

# make_repo DIR N: a git repo registering N environments e0..e<N-1> and a
# package deploying to each with no-op up and down.
make_repo() {
  mkdir -p "$1"
  cat > "$1/repo.ocu.star" <<'STAR'
ocuroot("0.3.0")
repo_alias("bench")
store.set(store.fs(".store"))
STAR
  cat > "$1/environments.ocu.star" <<STAR
ocuroot("0.3.0")

[register_environment(environment("e{}".format(i), {"type": "prod"})) for i in range($2)]
STAR
  cat > "$1/release.ocu.star" <<'STAR'
ocuroot("0.3.0")

def up(environment):
    return done()

def down(environment):
    return done()

phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
STAR
  printf '.store/\n' > "$1/.gitignore"
  git -C "$1" init -q
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@example.invalid commit -qm bench
}

# count_lines FILE: lines in FILE, as a bare number.
count_lines() { wc -l < "$1" | tr -d ' '; }

# register_and_release N: registration and release in the current repo,
# with their checks. Sets reg_s reg_kib rel_s rel_kib.
register_and_release() {
  local n=$1 got
  timed register "$ocuroot" release new environments.ocu.star -q
  reg_s=$secs; reg_kib=$kib
  "$ocuroot" state match '@/environment/*' > envs.out
  got=$(count_lines envs.out)
  if [ "$got" -ne "$n" ]; then
    echo "expected $n environments in state, found $got (in $PWD)" >&2; exit 1
  fi
  timed release "$ocuroot" release new release.ocu.star -q --parallel "$par"
  rel_s=$secs; rel_kib=$kib
}

# The glob of every completed deploy run of release rX.
complete_glob() { printf '%s/@r%s/deploy/*/1/status/complete' "$pkg" "$1"; }

rows=()
prev_n=""
prev_reg=""
prev_rel=""
growth=()
for n in $ns; do
  note "N = $n: registration, release, match, get"
  dir="$work/n$n"
  make_repo "$dir" "$n"
  cd "$dir"
  register_and_release "$n"

  timed match "$ocuroot" state match "$(complete_glob 1)"
  match_s=$secs
  got=$(count_lines match.out)
  if [ "$got" -ne "$n" ]; then
    echo "N = $n: expected $n complete deploy runs, state match found $got (in $dir)" >&2
    exit 1
  fi

  timed get "$ocuroot" state get "$pkg/@r1/deploy/e$((n / 2))/1"
  get_s=$secs
  if ! grep -q '"finished_at"' get.out; then
    echo "N = $n: state get did not print a finished run document (in $dir)" >&2
    cat get.out >&2; exit 1
  fi

  # The release's state is in the store's log until a checkpoint writes
  # its files (on its own once the log passes 64 MiB): its cost, and a
  # read from the files afterwards, which must say the same.
  timed checkpoint "$ocuroot" state checkpoint
  ckpt_s=$secs
  timed get2 "$ocuroot" state get "$pkg/@r1/deploy/e$((n / 2))/1"
  get2_s=$secs
  if ! cmp -s get.out get2.out; then
    echo "N = $n: state get printed another document after the checkpoint (in $dir)" >&2
    exit 1
  fi

  rows+=("$(awk -v n="$n" -v rg="$reg_s" -v rl="$rel_s" -v m="$match_s" -v g="$get_s" \
    -v c="$ckpt_s" -v g2="$get2_s" -v rk="$rel_kib" -v gk="$reg_kib" 'BEGIN {
      printf "| %6d | %14.3f | %10.3f | %13.3f | %8.3f | %6.3f | %12.3f | %12.3f | %15.1f | %20.1f |",
        n, rg, rl, rl * 1000 / n, m, g, c, g2, rk / 1024, gk / 1024 }')")
  if [ -n "$prev_n" ]; then
    growth+=("$(awk -v n1="$prev_n" -v n2="$n" -v a1="$prev_reg" -v a2="$reg_s" \
      -v b1="$prev_rel" -v b2="$rel_s" 'BEGIN {
        r = n2 / n1
        printf "| %6d -> %-6d | %12s | %7s |", n1, n2,
          (a1 > 0 ? sprintf("%.2f", (a2 / a1) / r) : "-"),
          (b1 > 0 ? sprintf("%.2f", (b2 / b1) / r) : "-") }')")
  fi
  prev_n=$n; prev_reg=$reg_s; prev_rel=$rel_s
  cd "$work"
  if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
done

if [ ${#rows[@]} -gt 0 ]; then
  echo
  echo "$("$ocuroot" version 2>/dev/null | head -n 1), $ocuroot, --parallel $par, fs store in ${TMPDIR:-/tmp}, one run per N"
  echo
  echo "|      N | registration s |  release s | per deploy ms |  match s |  get s | checkpoint s | then get s   | release RSS MiB | registration RSS MiB |"
  echo "|-------:|---------------:|-----------:|--------------:|---------:|-------:|-------------:|-------------:|----------------:|---------------------:|"
  printf '%s\n' "${rows[@]}"
  if [ ${#growth[@]} -gt 0 ]; then
    echo
    echo "Growth per step, (t2/t1)/(N2/N1): 1.00 is linear, 2.00 is twice as slow per item."
    echo
    echo "| N1 -> N2         | registration | release |"
    echo "|------------------|-------------:|--------:|"
    printf '%s\n' "${growth[@]}"
  fi
fi

[ "$docs" -gt 0 ] || exit 0

# --docs: a real release of K deploys, checkpointed to files, copied as
# further releases of the same package until the store holds about M
# documents. Each copy gets its own (made-up) commit; the package's
# `@/deploy/<env>` links point at the last release, as they would.
note "--docs $docs: a real release of $per_release deploys"
dir="$work/docs"
make_repo "$dir" "$per_release"
cd "$dir"
register_and_release "$per_release"
"$ocuroot" state checkpoint
note "--docs $docs: copying the release's files"
refs="$dir/.store/state/refs"

cat > "$work/copy_releases.py" <<'PY'
import hashlib, os, sys, time

refs, intent_refs, pkg, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pkg_dir = os.path.join(refs, pkg)
src = os.path.join(pkg_dir, "@r1")

existing = 0
for _, _, files in os.walk(refs):
    existing += sum(1 for f in files if f == "@object.json")

dirs, files, sha = [], [], None
for root, ds, fs in os.walk(src):
    ds.sort()
    rel = os.path.relpath(root, src)
    if rel != ".":
        dirs.append(rel)
        parts = rel.split(os.sep)
        if len(parts) == 2 and parts[0] == "commit":
            sha = parts[1]
    for f in fs:
        if f != "@object.json":
            sys.exit("unexpected file in the store: " + os.path.join(root, f))
        with open(os.path.join(root, f), "rb") as fh:
            files.append((rel, fh.read()))
if sha is None:
    sys.exit("no commit marker under " + src)

per = len(files)
releases = max(1, -(-(target - existing + per) // per))  # r1 is already there
old = (pkg + "/@r1").encode()
t0 = time.monotonic()
written = 0
for j in range(2, releases + 1):
    new_sha = hashlib.sha1(b"bench-release-%d" % j).hexdigest()
    new = (pkg + "/@r%d" % j).encode()
    base = os.path.join(pkg_dir, "@r%d" % j)
    os.mkdir(base)
    for d in dirs:
        os.mkdir(os.path.join(base, d.replace(sha, new_sha)))
    for rel, body in files:
        path = os.path.join(base, rel.replace(sha, new_sha), "@object.json")
        with open(path, "wb") as fh:
            fh.write(body.replace(old, new).replace(sha.encode(), new_sha.encode()))
        written += 1

# The package's links to its latest deployments (state) and its deploy
# intents (intent): to the last release.
last = (pkg + "/@r%d" % releases).encode()
for store, end in ((refs, b"/"), (intent_refs, b'"')):
    links = os.path.join(store, pkg, "@", "deploy")
    for env in os.listdir(links):
        path = os.path.join(links, env, "@object.json")
        with open(path, "rb") as fh:
            body = fh.read()
        if old + end not in body:
            sys.exit("no reference to @r1 in " + path)
        with open(path, "wb") as fh:
            fh.write(body.replace(old + end, last + end))

print(releases, per, existing + written, written, "%.1f" % (time.monotonic() - t0))
PY
python3 "$work/copy_releases.py" "$refs" "$dir/.store/intent/refs" "$pkg" "$docs" > copy.out
read -r releases per_rel total_docs written build_s < copy.out
note "store: $total_docs documents ($releases releases x $per_rel, plus environments and config); wrote $written files in $build_s s"

x=$((releases / 2 + 1))
glob="$(complete_glob "$x")"
rel_dir="$refs/$pkg/@r$x"
find_all=(find "$refs" -name '@object.json' -path "*/$pkg/@r$x/deploy/*/1/status/complete/*")
find_rel=(find "$rel_dir" -name '@object.json' -path "*/deploy/*/1/status/complete/*")
get_ref="$pkg/@r$x/deploy/e$((per_release / 2))/1"

note "--docs $docs: an untimed pass of each command, then the timed ones"
# One untimed pass of each first, so that every timed one reads from the
# page cache alike.
"$ocuroot" state match "$glob" > /dev/null
"${find_all[@]}" > /dev/null
"${find_rel[@]}" > /dev/null

timed dmatch "$ocuroot" state match "$glob"
dmatch_s=$secs; dmatch_kib=$kib
got=$(count_lines dmatch.out)
if [ "$got" -ne "$per_release" ]; then
  echo "--docs: expected $per_release complete runs of @r$x, state match found $got (in $dir)" >&2; exit 1
fi
timed dfind "${find_all[@]}"
dfind_s=$secs
got=$(count_lines dfind.out)
if [ "$got" -ne "$per_release" ]; then
  echo "--docs: expected $per_release complete runs of @r$x, find found $got (in $dir)" >&2; exit 1
fi
timed dfindrel "${find_rel[@]}"
dfindrel_s=$secs
got=$(count_lines dfindrel.out)
if [ "$got" -ne "$per_release" ]; then
  echo "--docs: expected $per_release complete runs of @r$x, find under the release found $got" >&2; exit 1
fi
timed dget "$ocuroot" state get "$get_ref"
dget_s=$secs; dget_kib=$kib
if ! grep -q '"finished_at"' dget.out; then
  echo "--docs: state get $get_ref did not print a finished run document" >&2; exit 1
fi

echo
echo "Store of $total_docs documents: $releases releases x $per_rel documents ($per_release deploys each), one page-cache-warming pass first"
echo
awk -v m="$dmatch_s" -v mk="$dmatch_kib" -v f="$dfind_s" -v fr="$dfindrel_s" \
  -v g="$dget_s" -v gk="$dget_kib" -v x="$x" -v k="$per_release" 'BEGIN {
  printf "| %-62s | %8s | %7s |\n", "command", "s", "RSS MiB"
  printf "|%s|---------:|--------:|\n", "----------------------------------------------------------------"
  printf "| %-62s | %8.3f | %7.1f |\n", "state match @r" x "/deploy/*/1/status/complete (" k ")", m, mk / 1024
  printf "| %-62s | %8.3f | %7s |\n", "find refs -path \"*@r" x "/deploy/*/1/status/complete/*\"", f, ""
  printf "| %-62s | %8.3f | %7s |\n", "find refs/.../@r" x " -path \"*/deploy/*/1/status/complete/*\"", fr, ""
  printf "| %-62s | %8.3f | %7.1f |\n", "state get @r" x "/deploy/<env>/1", g, gk / 1024
  printf "\nstate match / find over all refs:        %s\n", (f > 0 ? sprintf("%.2fx", m / f) : "-")
  printf "state match / find under the release:    %s\n", (fr > 0 ? sprintf("%.2fx", m / fr) : "-")
}'
