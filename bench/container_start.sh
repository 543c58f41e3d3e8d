#!/usr/bin/env bash
# What entering a stack image costs a container's start, against today's sandboxed start.
#
# Runs `/bin/true` behind the shim, as every container's program is, N times in a row for
# each way of starting it, the ways alternated (A B C, then C B A, ROUNDS times), and
# reports the median per start in ms:
# - host: the `host` stack, the slug at /app with a writable layer of its own;
# - image: the same inside a stack image (a busybox rootfs made here: its own os-release);
# - no-layer: the slug bound at /app without a layer (what a container got before layers).
# Each start is a fork and exec of the shim by this shell, the shim's fork, the sandbox's
# mounts, and the exec of `true`; the shell's share is the same in every column.
#
# Settings: N (200 starts per run), ROUNDS (3), SHIPWAY_BIN (a shipway binary to use
# instead of building one in release mode). Needs root, or unprivileged user
# namespaces (then it measures the rootless path), and busybox-static.
set -euo pipefail

N=${N:-200}
ROUNDS=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x /bin/busybox ] || { echo "missing: busybox (sudo apt-get install busybox-static)" >&2; exit 1; }
if [ -n "${SHIPWAY_BIN:-}" ]; then
    shipway=$SHIPWAY_BIN
else
    echo "building shipway (release)..." >&2
    (cd "$root" && cargo build --release --quiet)
    shipway=$(cd "$root" && realpath -m "${CARGO_TARGET_DIR:-target}")/release/shipway
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/slug" "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/usr/bin"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in sh true; do ln -s busybox "$work/rootfs/bin/$applet"; done
printf 'ID=benchimage\nPRETTY_NAME="shipway bench image"\n' >"$work/rootfs/etc/os-release"

# Prints the ms per start of `shipway shim ... true` with the given sandbox arguments.
run() { # args...
    local start end
    # The shim checks that its parent is the pid it is given: this subshell (BASHPID).
    "$shipway" shim "$BASHPID" 100 "$@" /bin/true || { echo "a start failed: $*" >&2; exit 1; }
    start=$(date +%s%N)
    for ((i = 0; i < N; i++)); do
        "$shipway" shim "$BASHPID" 100 "$@" /bin/true
    done
    end=$(date +%s%N)
    echo "scale=3; ($end - $start) / $N / 1000000" | bc
}

# Containers start in their slug, which they see at /app.
cd "$work/slug"
declare -A results
for ((r = 0; r < ROUNDS; r++)); do
    order=(host image no-layer)
    ((r % 2)) && order=(no-layer image host)
    for way in "${order[@]}"; do
        case $way in
        host) ms=$(run --app "$work/slug" --layer) ;;
        image) ms=$(run --app "$work/slug" --layer --root "$work/rootfs") ;;
        no-layer) ms=$(run --app "$work/slug") ;;
        esac
        results[$way]+="$ms "
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-9s %s\n' way "median ms per start (runs: ms)"
for way in no-layer host image; do
    printf '%-9s %s   (%s)\n' "$way" "$(echo "${results[$way]}" | median)" "${results[$way]% }"
done
