#!/usr/bin/env bash
# Compares shipway's router with a direct connection and with nginx's `stream` TCP proxy.
#
# Needs (Debian package names): wrk, nginx, libnginx-mod-stream. This script installs
# nothing; it says what is missing and stops. Install them with:
#   sudo apt-get install wrk nginx libnginx-mod-stream
#
# A backend nginx serves a fixed 2-byte body on 127.0.0.1; each target (direct, nginx
# stream, shipway) is measured with wrk keep-alive and with `Connection: close` (one
# connection per request), rounds interleaved (A B A B) so drift on a laptop hits all
# targets alike. Settings: DURATION (10s), ROUNDS (2), CONNECTIONS (50), THREADS (2),
# WORKERS (shipway and nginx-stream workers, default: number of cores), IDLE (5000: idle
# keep-alive connections held at the end to measure the router's memory per connection).
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-$(nproc)}
STREAM_MODULE=${STREAM_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}
IDLE=${IDLE:-5000}
# Each idle client costs the router two descriptors (client and upstream).
ulimit -n $((IDLE * 3 + 1024)) 2>/dev/null || echo "cannot raise the descriptor limit: lower IDLE" >&2

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v python3 >/dev/null || missing+=(python3)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -f "$STREAM_MODULE" ] || missing+=(libnginx-mod-stream)
if [ ${#missing[@]} -gt 0 ]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    exec 3>&- 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_nginx() { # name conf-body
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
}

wait_port() {
    for _ in $(seq 1 100); do
        (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

backend_port=$(free_port)
start_nginx backend 1 "" "http {
    access_log off;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:$backend_port reuseport backlog=4096; location / { return 200 'ok'; } }
}"
stream_port=$(free_port)
start_nginx stream "$WORKERS" "load_module $STREAM_MODULE;" "stream {
    server { listen 127.0.0.1:$stream_port backlog=4096; proxy_pass 127.0.0.1:$backend_port; }
}"

echo "building the router bench binary..." >&2
bin=$(cd "$root" && cargo bench --bench router --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "could not build benches/router.rs" >&2; exit 1; }
mkfifo "$work/router.in"
"$bin" "127.0.0.1:$backend_port" http "$WORKERS" <"$work/router.in" >"$work/router.out" &
shipway_pid=$!
pids+=($shipway_pid)
exec 3>"$work/router.in" # the router runs until this descriptor closes
for _ in $(seq 1 200); do [ -s "$work/router.out" ] && break; sleep 0.05; done
shipway_addr=$(head -1 "$work/router.out")
[ -n "$shipway_addr" ] || { echo "the router did not start (benches/router.rs)" >&2; exit 1; }

wait_port "$backend_port"
wait_port "$stream_port"
wait_port "${shipway_addr##*:}"

declare -A addr=([direct]="127.0.0.1:$backend_port" [stream]="127.0.0.1:$stream_port" [shipway]="$shipway_addr")
declare -A rps p99 cpu
declare -A proxy_pids=([direct]="" [stream]="$(cat "$work/stream/nginx.pid" 2>/dev/null || true)" [shipway]="$shipway_pid")

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

run_wrk() { # target mode
    local header=()
    [ "$2" = close ] && header=(-H 'Connection: close')
    local out before after
    before=$(cpu_ticks ${proxy_pids[$1]})
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${header[@]}" "http://${addr[$1]}/")
    after=$(cpu_ticks ${proxy_pids[$1]})
    local r l errors n us
    r=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    us=$(awk -v t=$((after - before)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
    l=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd';' || true)
    [ -n "${proxy_pids[$1]}" ] || us=-
    printf '  %-8s %-10s %10s req/s   p99 %8s ms   proxy CPU %5s us/req  %s\n' "$1" "$2" "$r" "$(to_ms "$l")" "$us" "$errors"
    cpu[$1.$2]="${cpu[$1.$2]:-} $us"
    rps[$1.$2]="${rps[$1.$2]:-} $r"
    p99[$1.$2]="${p99[$1.$2]:-} $(to_ms "$l")"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, $WORKERS workers, $(nproc) cores"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    for mode in keepalive close; do
        for target in direct stream shipway; do
            run_wrk "$target" "$mode"
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo
echo "median of $ROUNDS rounds"
printf '  %-10s %12s %12s %12s   %s\n' mode direct stream shipway "shipway/stream (req/s, p99, proxy CPU per request)"
for mode in keepalive close; do
    d=$(median <<<"${rps[direct.$mode]}"); s=$(median <<<"${rps[stream.$mode]}"); w=$(median <<<"${rps[shipway.$mode]}")
    sl=$(median <<<"${p99[stream.$mode]}"); wl=$(median <<<"${p99[shipway.$mode]}")
    sc=$(median <<<"${cpu[stream.$mode]}"); wc=$(median <<<"${cpu[shipway.$mode]}")
    printf '  %-10s %12.0f %12.0f %12.0f   %.2fx, p99 %s vs %s ms, %s vs %s us\n' "$mode" "$d" "$s" "$w" \
        "$(awk -v a="$w" -v b="$s" 'BEGIN { print a / b }')" "$wl" "$sl" "$wc" "$sc"
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
pids+=($holder)
for _ in $(seq 1 1200); do
    [ "$(ls /proc/$shipway_pid/fd | wc -l)" -ge $((IDLE * 2)) ] && break
    kill -0 $holder 2>/dev/null || break
    sleep 0.1
done
after=$(rss)
latency=$(wrk -t1 -c1 -d2s --latency "http://$shipway_addr/" | awk '$1 == "99%" { print $2 }')
printf '  router RSS %s KiB -> %s KiB with %s idle connections: %s bytes per connection; p99 of a request meanwhile %s\n' \
    "$before" "$after" "$IDLE" "$(( (after - before) * 1024 / IDLE ))" "$latency"
kill $holder 2>/dev/null || true
