#!/usr/bin/env bash
# What the platform's supervisor thread costs: `shipway ps` with 50 containers, and the
# system calls that thread makes during one redeploy.
#
# Builds shipway in release mode, starts a platform in a temporary SHIPWAY_HOME, then:
# - deploys fixtures/apps/python (a copy) ROUNDS times, each a real redeploy (a new
#   VERSION), with `strace -f -ff` attached to the platform for each one; the supervisor
#   thread is the one named `supervisor` (in a build before threads were named: the one,
#   older than the deploy, that wrote the app log's "[platform] web-1 started (release vN)"
#   line, as the supervisor wrote its log lines itself then). Its system calls during the deploy are counted (every traced call,
#   `futex` included: each wake-up of the thread is one);
# - deploys an app of five worker types (`sleep`, the procfile-only fixture buildpack),
#   scales each to 10 (50 containers), and times `shipway ps` PS_RUNS times.
#
# Settings: ROUNDS (3), PS_RUNS (30), SHIPWAY (a shipway binary to measure instead of
# building this tree's, to alternate two builds). Needs strace and python3; installs nothing. The
# platform is stopped at the end.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
PS_RUNS=${PS_RUNS:-30}
for tool in strace python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (sudo apt-get install $tool)" >&2; exit 1; }
done

. "$(dirname "$0")/lib.sh"
bench_binary release
bench_platform
cp -a "$root/fixtures/apps/python" "$work/python"
deploy() { # dir app [args...]
    local dir=$1 app=$2
    shift 2
    "$shipway" deploy "$dir" -a "$app" --env BIND_HOST=127.0.0.1 "$@" >"$work/deploy.log" 2>&1 \
        || { echo "deploy of $app failed:" >&2; tail -30 "$work/deploy.log" >&2; exit 1; }
}
echo 0 >"$work/python/VERSION"
deploy "$work/python" py

echo "supervisor thread, system calls per redeploy of the python sample:"
for round in $(seq 1 "$ROUNDS"); do
    echo "$round" >"$work/python/VERSION"
    rm -rf "$work/trace" && mkdir "$work/trace"
    strace -f -ff -qq -s 256 -o "$work/trace/t" -p "$platform" 2>/dev/null &
    tracer=$!
    sleep 1 # strace attaches to every thread before the deploy starts
    for t in /proc/"$platform"/task/*; do echo "${t##*/} $(cat "$t/comm")"; done >"$work/threads"
    deploy "$work/python" py
    kill "$tracer" && wait "$tracer" 2>/dev/null || true
    tracer=
    python3 - "$work/trace" "$platform" "$work/threads" <<'PY'
import collections, pathlib, re, sys
trace, pid = pathlib.Path(sys.argv[1]), sys.argv[2]
names = dict(l.split(" ", 1) for l in pathlib.Path(sys.argv[3]).read_text().splitlines())
files = sorted(trace.glob("t.*"))
# The thread named `supervisor`; a build before it was named: the one that wrote the
# started line (the supervisor wrote its app-log lines itself then). The threads it
# starts unnamed (workers, watchers) inherit its name: it is the oldest of them, the
# lowest thread id (ids grow until they wrap at pid_max, far above a bench's few).
named = [f for f in files if names.get(f.suffix[1:]) == "supervisor"]
chosen = [min(named, key=lambda f: int(f.suffix[1:]))] if named else []
if not chosen:
    chosen = [f for f in files if f.suffix[1:] in names and "started (release v" in f.read_text(errors="replace")]
if len(chosen) != 1:
    sys.exit(f"cannot tell the supervisor thread ({len(chosen)} threads wrote the started line)")
calls = collections.Counter()
for line in chosen[0].read_text(errors="replace").splitlines():
    m = re.match(r"(\w+)\(", line)
    if m:
        calls[m.group(1)] += 1
top = ", ".join(f"{n} {c}" for n, c in calls.most_common(8))
print(f"  {sum(calls.values())} calls ({top})")
PY
done

mkdir -p "$work/many"
{ for t in a b c d e; do echo "w$t: sleep 1000000"; done; } >"$work/many/Procfile"
deploy "$work/many" many --env "BUILDPACK_URL=$root/fixtures/buildpacks/procfile-only"
"$shipway" scale -a many wa:10 wb:10 wc:10 wd:10 we:10 >"$work/scale.log" 2>&1 \
    || { cat "$work/scale.log" >&2; exit 1; }
running=$("$shipway" ps -a many --json | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r.get("status") == "running"))')
[ "$running" -eq 50 ] || { echo "expected 50 running containers, ps shows $running" >&2; exit 1; }
for _ in $(seq 1 "$PS_RUNS"); do
    start=$(date +%s%N)
    "$shipway" ps -a many >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
done | python3 -c '
import statistics, sys
us = sorted(int(l) for l in sys.stdin)
print(f"shipway ps, 50 containers, {len(us)} runs: median {statistics.median(us)/1000:.1f} ms, range {us[0]/1000:.1f}-{us[-1]/1000:.1f} ms")'
