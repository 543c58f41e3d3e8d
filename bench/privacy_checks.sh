#!/usr/bin/env bash
# How many times the platform checks an app's privacy (`Home::app`: a stat of each of the
# eleven paths it keeps directly in the app's folder) during one redeploy and one restart
# of fixtures/apps/python.
#
# Starts a platform in a temporary SHIPWAY_HOME, deploys the app once (on the `host`
# stack), then attaches strace to the platform (every thread) for a second deploy, then
# for a `restart`. A check stats the app's folder as `apps/python/` (the path joined with
# ""), which nothing else does: those stats are counted. Also given: every stat of the
# eleven checked paths, whoever made it (other code reads `app.toml`, `current`...).
#
# Settings: SHIPWAY (a shipway binary to count instead of building this tree's, debug).
# Needs strace and python3; installs nothing. The platform is stopped at the end.
set -euo pipefail

command -v strace >/dev/null || { echo "missing: strace (sudo apt-get install strace)" >&2; exit 1; }
. "$(dirname "$0")/lib.sh"
bench_binary debug
bench_platform
pid=$platform
mkdir -p "$work/src"
cp -a "$root/fixtures/apps/python" "$work/src/python"
"$shipway" create python >/dev/null
"$shipway" -a python stacks-set host >/dev/null

# Runs `shipway ARGS` with the platform traced; prints the two counts.
traced() { # what args...
    local what=$1 trace="$work/trace"
    shift
    rm -f "$trace"
    strace -f -qq -p "$pid" -e trace=statx,newfstatat,stat,lstat -o "$trace" &
    tracer=$!
    # strace writes nothing until a traced thread makes a call: wait until it is attached.
    for _ in $(seq 100); do
        [ "$(awk '/^TracerPid/ {print $2}' "/proc/$pid/status")" != 0 ] && break
        sleep 0.05
    done
    "$shipway" "$@" >"$work/out.log" 2>&1 || { tail -20 "$work/out.log" >&2; exit 1; }
    kill "$tracer"
    wait "$tracer" 2>/dev/null || true
    tracer=
    local checks paths
    checks=$(grep -c 'apps/python/"' "$trace" || true)
    paths=$(grep -cE 'apps/python/(|app\.toml|current|releases|deployments|cache|app\.log|\.lock|\.config\.lock|repo\.git|addons)"' "$trace" || true)
    echo "$what: privacy checks $checks, stats of the checked paths $paths"
}

echo 1 >"$work/src/python/VERSION"
"$shipway" deploy "$work/src/python" -a python --env BIND_HOST=127.0.0.1 >"$work/first.log" 2>&1 \
    || { tail -20 "$work/first.log" >&2; exit 1; }
echo 2 >"$work/src/python/VERSION"
traced redeploy deploy "$work/src/python" -a python --env BIND_HOST=127.0.0.1
traced restart -a python restart
