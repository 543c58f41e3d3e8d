#!/usr/bin/env bash
# Compares shipway's router with a direct connection, with nginx's `stream` TCP proxy and
# with nginx as an HTTP reverse proxy that adds the same headers as shipway's router.
#
# Best with (Debian package names): wrk, nginx, libnginx-mod-stream. This script installs
# nothing; when they are missing it says so and falls back on the repository's own tools:
# without wrk, the load comes from benches/loadgen.rs; without nginx, the backend is
# benches/backend.rs (a 2-byte body, keep-alive, epoll: python3's http.server would cap
# the figures far below the router's) and the nginx columns are left out. Install them with:
#   sudo apt-get install wrk nginx libnginx-mod-stream
# FORCE_LOADGEN=1 and FORCE_BACKEND=1 use the fallbacks even where the packages are
# installed, to check them or to compare like with like across machines.
#
# A backend serves a fixed 2-byte body on 127.0.0.1; each target (direct, nginx `stream`,
# nginx `stream` with `reuseport`, nginx `http` when available, shipway) is measured with
# keep-alive and with
# `Connection: close` (one connection per request), rounds interleaved (A B, then B A) so
# drift on a laptop hits all targets alike. nginx `stream` forwards bytes and parses
# nothing; `stream-rp` is the same with `listen ... reuseport`, one listening socket per
# worker, which spreads connections over the workers as shipway's hand-off does (plain
# `listen` can leave most of a burst of connections on one worker); nginx `http` (upstream
# keep-alive, the platform's X-Forwarded-* and X-Request-* headers) does the work
# shipway's router does. Settings: DURATION (10s), ROUNDS (4),
# CONNECTIONS (50), THREADS (2), WORKERS (shipway's and each nginx proxy's workers,
# default: number of cores), IDLE (5000: idle keep-alive connections held at the end to
# measure the router's memory per connection), STREAM_MODULE (where nginx's stream module
# is, /usr/lib/nginx/modules/ngx_stream_module.so), ROUTER_BIN (a router bench binary built
# before, to compare two builds of the router: run the script with each in turn).
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-4}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-$(nproc)}
STREAM_MODULE=${STREAM_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}
IDLE=${IDLE:-5000}
# Each idle client costs the router two descriptors (client and upstream).
ulimit -n $((IDLE * 3 + 1024)) 2>/dev/null || echo "cannot raise the descriptor limit: lower IDLE" >&2

command -v python3 >/dev/null || { echo "missing: python3 (sudo apt-get install python3)" >&2; exit 1; }
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
if [ "${FORCE_LOADGEN:-0}" = 1 ]; then
    CLIENT=loadgen
    echo "load client: benches/loadgen.rs (FORCE_LOADGEN=1)" >&2
elif command -v wrk >/dev/null; then
    CLIENT=wrk
else
    CLIENT=loadgen
    echo "wrk is not installed: the load client is benches/loadgen.rs (sudo apt-get install wrk for wrk)" >&2
fi
if [ "${FORCE_BACKEND:-0}" = 1 ]; then
    BACKEND=rust
    echo "backend: benches/backend.rs (FORCE_BACKEND=1), no nginx comparison" >&2
elif [ -n "$NGINX" ]; then
    BACKEND=nginx
else
    BACKEND=rust
    echo "nginx is not installed: the backend is benches/backend.rs, no nginx comparison (sudo apt-get install nginx libnginx-mod-stream)" >&2
fi
STREAM=0
if [ "$BACKEND" = nginx ]; then
    if [ -f "$STREAM_MODULE" ]; then
        STREAM=1
    else
        echo "no $STREAM_MODULE: no nginx stream comparison (sudo apt-get install libnginx-mod-stream)" >&2
    fi
fi

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    exec 3>&- 4>&- 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

declare -A nginx_pid
start_nginx() { # name workers conf-head conf-body; records the master's pid (daemon off)
    local dir="$work/$1"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
$3
worker_processes $2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((IDLE + 4096)); }
$4
CONF
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" &
    pids+=($!)
    nginx_pid[$1]=$!
}

wait_port() {
    for _ in $(seq 1 100); do
        (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

echo "building the bench binaries..." >&2
wanted=()
[ -n "${ROUTER_BIN:-}" ] || wanted+=(router)
[ "$CLIENT" = loadgen ] && wanted+=(loadgen)
[ "$BACKEND" = rust ] && wanted+=(backend)
built=""
if [ ${#wanted[@]} -gt 0 ]; then
    built=$(cd "$root" && cargo bench "${wanted[@]/#/--bench=}" --no-run --message-format=json 2>/dev/null |
        grep '"kind":\["bench"\]' || true)
fi
bench_bin() { # target name
    local bin
    bin=$(grep "\"name\":\"$1\"" <<<"$built" | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
    [ -x "$bin" ] || { echo "could not build benches/$1.rs" >&2; exit 1; }
    echo "$bin"
}
router_bin=${ROUTER_BIN:-$(bench_bin router)}
[ "$CLIENT" = loadgen ] && loadgen_bin=$(bench_bin loadgen)

# Starts a bench binary that prints its address and serves until stdin closes; the
# descriptor given keeps its stdin open. Sets `started_addr` and `started_pid`.
start_served() { # name fd binary args...
    local name=$1 fd=$2
    shift 2
    mkfifo "$work/$name.in"
    "$@" <"$work/$name.in" >"$work/$name.out" &
    started_pid=$!
    pids+=("$started_pid")
    eval "exec $fd>\"\$work/\$name.in\""
    for _ in $(seq 1 200); do [ -s "$work/$name.out" ] && break; sleep 0.05; done
    started_addr=$(head -1 "$work/$name.out")
    [ -n "$started_addr" ] || { echo "$name did not start" >&2; exit 1; }
}

if [ "$BACKEND" = nginx ]; then
    backend_port=$(free_port)
    start_nginx backend 1 "" "http {
    access_log off;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:$backend_port reuseport backlog=4096; location / { return 200 'ok'; } }
}"
    backend_addr="127.0.0.1:$backend_port"
else
    start_served backend 4 "$(bench_bin backend)" 1
    backend_addr=$started_addr
fi
declare -A port_of
if [ "$STREAM" = 1 ]; then
    for target in stream stream-rp; do
        port_of[$target]=$(free_port)
        options=""
        [ "$target" = stream-rp ] && options=" reuseport"
        start_nginx "$target" "$WORKERS" "load_module $STREAM_MODULE;" "stream {
    server { listen 127.0.0.1:${port_of[$target]}$options backlog=4096; proxy_pass $backend_addr; }
}"
    done
fi

if [ "$BACKEND" = nginx ]; then
    port_of[http]=$(free_port)
    # What a platform router does: pooled upstream connections, HTTP/1.1 both ways, and the
    # headers shipway's router adds (PLATFORM.md §5).
    start_nginx http "$WORKERS" "" "http {
    access_log off;
    upstream app { server $backend_addr; keepalive 64; }
    server {
        listen 127.0.0.1:${port_of[http]} backlog=4096;
        keepalive_requests 100000000;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Port \$server_port;
            proxy_set_header X-Request-Start t=\${msec};
            proxy_set_header X-Request-ID \$request_id;
        }
    }
}"
fi

start_served router 3 "$router_bin" "$backend_addr" http "$WORKERS"
shipway_addr=$started_addr
shipway_pid=$started_pid

wait_port "${backend_addr##*:}"
for port in "${port_of[@]}"; do wait_port "$port"; done
wait_port "${shipway_addr##*:}"

# The proxies shipway is compared with, and everything measured.
rivals=()
[ "$STREAM" = 1 ] && rivals+=(stream stream-rp)
[ "$BACKEND" = nginx ] && rivals+=(http)
targets=(direct "${rivals[@]}" shipway)
declare -A addr=([direct]="$backend_addr" [shipway]="$shipway_addr")
declare -A proxy_pids=([direct]="" [shipway]="$shipway_pid")
for rival in "${rivals[@]}"; do
    addr[$rival]="127.0.0.1:${port_of[$rival]}"
    proxy_pids[$rival]=${nginx_pid[$rival]}
done
declare -A rps p99 cpu last_rps

# CPU time (user + system, in clock ticks) used so far by a process and its children's
# threads: the proxy's cost per request, a steadier figure than req/s on a shared laptop.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        for p in $pid $(pgrep -P "$pid" || true); do
            [ -r "/proc/$p/stat" ] || continue
            total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
        done
    done
    echo "$total"
}

# wrk prints latency percentiles in us/ms/s: normalise to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0;
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000;
        printf "%.2f", n }'
}

# One load run against an address; sets `load_rps`, `load_p99` (ms), `load_requests` and
# `load_errors` (empty when there were none), whichever client runs it.
load() { # addr mode threads connections duration
    local out close=()
    if [ "$CLIENT" = wrk ]; then
        [ "$2" = close ] && close=(-H 'Connection: close')
        out=$(wrk -t"$3" -c"$4" -d"$5" --latency "${close[@]}" "http://$1/")
        load_rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
        load_requests=$(awk '/requests in/ { print $1 }' <<<"$out")
        load_p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
        load_errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd';' || true)
    else
        [ "$2" = close ] && close=(--close)
        out=$("$loadgen_bin" --url "$1" --threads "$3" --connections "$4" --duration "$5" "${close[@]}")
        field() { tr ' ' '\n' <<<"$out" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
        load_rps=$(field rps)
        load_requests=$(field requests)
        load_p99=$(printf '%.2f' "$(field p99_ms)")
        load_errors=""
        [ "$(field errors)" = 0 ] || load_errors="errors $(field errors)"
        [ "$(field non2xx)" = 0 ] || load_errors="$load_errors non-2xx $(field non2xx)"
    fi
}

run_load() { # target mode
    local before after us
    before=$(cpu_ticks ${proxy_pids[$1]})
    load "${addr[$1]}" "$2" "$THREADS" "$CONNECTIONS" "$DURATION"
    after=$(cpu_ticks ${proxy_pids[$1]})
    us=$(awk -v t=$((after - before)) -v n="$load_requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
    [ -n "${proxy_pids[$1]}" ] || us=-
    printf '  %-9s %-10s %10.0f req/s   p99 %8s ms   proxy CPU %5s us/req  %s\n' "$1" "$2" "$load_rps" "$load_p99" "$us" "$load_errors"
    cpu[$1.$2]="${cpu[$1.$2]:-} $us"
    rps[$1.$2]="${rps[$1.$2]:-} $load_rps"
    last_rps[$1]=$load_rps
    p99[$1.$2]="${p99[$1.$2]:-} $load_p99"
}

client_name=$([ "$CLIENT" = wrk ] && echo wrk || echo "benches/loadgen.rs")
backend_name=$([ "$BACKEND" = nginx ] && echo "nginx" || echo "benches/backend.rs")
echo "$client_name -t$THREADS -c$CONNECTIONS -d$DURATION, backend $backend_name, $ROUNDS rounds, $WORKERS workers, $(nproc) cores"
declare -A pair
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    # Every other round runs the targets in reverse (A B, B A), so that whatever follows a
    # given target (a warm cache, a backend still settling) is shared out evenly.
    order=("${targets[@]}")
    if [ $((round % 2)) = 0 ]; then
        order=()
        for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("${targets[i]}"); done
    fi
    for mode in keepalive close; do
        for target in "${order[@]}"; do
            run_load "$target" "$mode"
        done
        # The ratio of two runs a few seconds apart: drift on a shared machine hits both.
        for rival in "${rivals[@]}"; do
            pair[$rival.$mode]="${pair[$rival.$mode]:-} $(awk -v a="${last_rps[shipway]}" -v b="${last_rps[$rival]}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
echo
echo "median of $ROUNDS rounds (req/s; p99 in ms; proxy CPU in us per request)"
for mode in keepalive close; do
    echo "  $mode"
    for target in "${targets[@]}"; do
        c=$(median <<<"${cpu[$target.$mode]}")
        [ "$target" = direct ] && c=-
        printf '    %-9s %10.0f req/s   p99 %7s ms   proxy CPU %6s us\n' "$target" \
            "$(median <<<"${rps[$target.$mode]}")" "$(median <<<"${p99[$target.$mode]}")" "$c"
    done
done
echo
echo "shipway's ratios (req/s of shipway / req/s of the other; p99 of each)"
for mode in keepalive close; do
    w=$(median <<<"${rps[shipway.$mode]}"); wl=$(median <<<"${p99[shipway.$mode]}")
    for other in direct "${rivals[@]}"; do
        o=$(median <<<"${rps[$other.$mode]}"); ol=$(median <<<"${p99[$other.$mode]}")
        line=$(printf '  %-10s vs %-9s %sx of medians, p99 %s vs %s ms' "$mode" "$other" "$(ratio "$w" "$o")" "$wl" "$ol")
        if [ "$other" != direct ]; then
            # Round by round: each ratio from two runs a few seconds apart.
            ratios=$(tr ' ' '\n' <<<"${pair[$other.$mode]}" | grep -v '^$' | sort -g)
            ahead=$(awk '$1 >= 1' <<<"$ratios" | wc -l)
            line+=$(printf '; by round: median %.2fx, range %.2fx-%.2fx, at or above in %s of %s' \
                "$(median <<<"$ratios")" "$(head -1 <<<"$ratios")" "$(tail -1 <<<"$ratios")" "$ahead" "$ROUNDS")
        fi
        echo "$line"
    done
done

echo
echo "holding $IDLE idle keep-alive connections (one request each) through shipway"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$shipway_pid/status"; }
before=$(rss)
python3 - "$shipway_addr" "$IDLE" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
conns = []
for _ in range(int(sys.argv[2])):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while not data.endswith(b"ok"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed")
        data += chunk
    conns.append(s)
print("  holding them", flush=True)
time.sleep(3600)  # until the script kills this process
PY
holder=$!
pids+=("$holder")
for _ in $(seq 1 1200); do
    [ "$(ls /proc/$shipway_pid/fd | wc -l)" -ge $((IDLE * 2)) ] && break
    kill -0 $holder 2>/dev/null || break
    sleep 0.1
done
after=$(rss)
load "$shipway_addr" keepalive 1 1 2s
printf '  router RSS %s KiB -> %s KiB with %s idle connections: %s bytes per connection; p99 of a request meanwhile %s ms\n' \
    "$before" "$after" "$IDLE" "$(( (after - before) * 1024 / IDLE ))" "$load_p99"
kill $holder 2>/dev/null || true
