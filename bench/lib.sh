# What the bench scripts share, sourced by them: the shipway binary to measure, and a
# platform of its own in a temporary SHIPWAY_HOME, stopped and removed on exit.
#
# bench_binary PROFILE: sets `root` (this tree) and `shipway`: $SHIPWAY when set (a
# binary to measure instead of this tree's, to alternate two builds), else this tree
# built in PROFILE (release or debug).
bench_binary() { # profile
    local profile=$1
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -n "${SHIPWAY:-}" ]; then
        shipway=$(realpath "$SHIPWAY")
    else
        echo "building shipway ($profile)..." >&2
        local flag=()
        [ "$profile" = release ] && flag=(--release)
        (cd "$root" && cargo build "${flag[@]}" --quiet)
        # Cargo built in $root, so a relative CARGO_TARGET_DIR is relative to it.
        shipway=$(cd "$root" && realpath -m "${CARGO_TARGET_DIR:-target}")/$profile/shipway
    fi
    [ -x "$shipway" ] || { echo "no binary at $shipway" >&2; exit 1; }
}

# bench_platform: sets `work` (a temporary folder) and `platform` (the platform's pid),
# with the short settings a bench wants; on exit, kills `$tracer` if one was set, stops
# the platform and removes `work`.
bench_platform() {
    work=$(mktemp -d)
    export SHIPWAY_HOME="$work/home" SHIPWAY_LOOPBACK_BIND=allow SHIPWAY_PORT=0 SHIPWAY_GRACE_PERIOD=1s
    tracer=
    trap bench_cleanup EXIT
    "$shipway" up --detach >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
    platform=$(head -1 "$SHIPWAY_HOME/platform.pid")
}

bench_cleanup() {
    [ -n "${tracer:-}" ] && kill "$tracer" 2>/dev/null
    "$shipway" down >/dev/null 2>&1 || true
    rm -rf "$work"
}
