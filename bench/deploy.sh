#!/usr/bin/env bash
# Where the time of a `shipway deploy` goes, for the bundled sample apps.
#
# Builds shipway in release mode, starts a platform in a temporary SHIPWAY_HOME, then
# deploys fixtures/apps/python and fixtures/apps/nodejs (copies in a temporary folder)
# alternately (A B A B), ROUNDS times each after one first deploy per app that is reported
# apart (cold cache, new router). Every deploy writes a different VERSION file, so each is
# a real redeploy: new build, new container, switch, old container stopped.
#
# Reported, as medians over the rounds:
# - wall: the `shipway deploy` command as timed by this script (client start to exit);
# - the phases recorded in the deployment (`apps/<app>/deployments/<id>.toml`, whole ms):
#   intake, detect, compile, boot, hook, switch;
# - shipway's own share: wall - (detect + compile + boot + hook). detect and compile are
#   counted as buildpack time although they include shipway's own work around the scripts
#   (copying the candidate buildpacks, the cache), so the share is a lower bound; boot
#   counts from the spawn to the first accepted TCP connect (tried every 2 ms);
# - listen to switch: the records hold no listen time, so this is measured from the app's
#   own "listening on" line in `app.log` (timestamped by shipway when it reads the line,
#   ms) to the `success` status time (ms), set just after the switch, the write of
#   `current` and the scheduling of the old container's stop. An upper bound of the time
#   from listen to switch, to about 1 ms (both clocks are whole milliseconds).
#
# The apps are on the `host` stack (`stacks-set host`): their containers still get the
# /app sandbox and a writable layer of their own each.
#
# Settings: ROUNDS (5; at most 8, so that no release is pruned inside the timed deploys),
# APPS ("python nodejs"), SHIPWAY (a shipway binary to measure instead of building this
# tree's: to alternate two builds, A B A B, on a loaded machine). Needs python3 (the python app, and to read the records) and
# node/npm for the nodejs app; installs nothing. The platform is stopped at the end.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
APPS=${APPS:-python nodejs}
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 8 ]; then echo "ROUNDS must be 1 to 8" >&2; exit 1; fi
command -v python3 >/dev/null || { echo "missing: python3 (sudo apt-get install python3)" >&2; exit 1; }

. "$(dirname "$0")/lib.sh"
bench_binary release
bench_platform

# Deploys one app with the next VERSION; appends "app deploy-number wall-ms" to walls.
deploys=0
deploy() { # app
    local app=$1 start end
    deploys=$((deploys + 1))
    echo "$deploys" >"$work/src/$app/VERSION"
    start=$(date +%s%N)
    if ! "$shipway" deploy "$work/src/$app" -a "$app" --env BIND_HOST=127.0.0.1 >"$work/deploy.log" 2>&1; then
        echo "deploy of $app failed:" >&2
        tail -30 "$work/deploy.log" >&2
        exit 1
    fi
    end=$(date +%s%N)
    echo "$app $(((end - start) / 1000000))" >>"$work/walls"
}

mkdir -p "$work/src"
for app in $APPS; do
    cp -a "$root/fixtures/apps/$app" "$work/src/$app"
    # The sample apps build with the host's toolchains: the `host` stack, as before stacks
    # (a new app would pull scalingo-26 first).
    "$shipway" create "$app" >/dev/null
    "$shipway" stacks-set host -a "$app" >/dev/null
done
: >"$work/walls"
echo "first deploy of each app (platform already up, cold cache)..." >&2
for app in $APPS; do deploy "$app"; done
echo "$ROUNDS rounds of redeploys, apps alternated..." >&2
for _ in $(seq 1 "$ROUNDS"); do
    for app in $APPS; do deploy "$app"; done
done

echo "shipway deploy, $ROUNDS redeploys per app after a first one, $(nproc) cores; median ms (first deploy in brackets)"
python3 - "$SHIPWAY_HOME" "$work/walls" $APPS <<'PY'
import datetime, pathlib, statistics, sys, tomllib

home, walls_path, apps = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
walls = {}
for line in open(walls_path):
    app, ms = line.split()
    walls.setdefault(app, []).append(int(ms))

def listening_times(app):
    """Epoch ms of every "listening on" line the app printed, from app.log."""
    times = []
    for log in sorted((home / "apps" / app).glob("app.log*"), reverse=True):
        for line in log.read_text(errors="replace").splitlines():
            stamp, _, rest = line.partition(" ")
            if "listening on" in rest:
                t = datetime.datetime.fromisoformat(stamp)
                times.append(round(t.timestamp() * 1000))
    return sorted(times)

phases = ["intake", "detect", "compile", "boot", "hook", "switch"]
columns = ["wall"] + phases + ["own", "listen->switch"]
print("  %-8s" % "app" + "".join("%16s" % c for c in columns))
for app in apps:
    records = sorted(
        (tomllib.loads(p.read_text()) for p in (home / "apps" / app / "deployments").glob("*.toml")),
        key=lambda d: d["id"],
    )
    if len(records) != len(walls[app]):
        sys.exit(f"{app}: {len(records)} records for {len(walls[app])} deploys")
    listens = listening_times(app)
    rows = []
    for record, wall in zip(records, walls[app]):
        if record["statuses"][-1]["status"] != "success":
            sys.exit(f"{app}: deployment {record['id']} ended {record['statuses'][-1]['status']}")
        at = {s["status"]: s["at"] for s in record["statuses"]}
        t = record.get("timings", {})
        # A phase the deployment did not go through (no postdeploy hook) shows as "-".
        row = {"wall": wall, **{p: t.get(p) for p in phases}}
        row["own"] = wall - sum(t.get(p, 0) for p in ("detect", "compile", "boot", "hook"))
        # The line this deployment's container printed: the last one before success.
        seen = [l for l in listens if at["starting"] <= l <= at["success"]]
        row["listen->switch"] = at["success"] - seen[-1] if seen else None
        rows.append(row)

    def cell(values):
        values = [v for v in values if v is not None]
        return "%d" % statistics.median(values) if values else "-"

    first, rest = rows[0], rows[1:]
    print("  %-8s" % app + "".join("%16s" % ("%s [%s]" % (cell([r[c] for r in rest]), cell([first[c]]))) for c in columns))
    def spread(c):
        values = [r[c] for r in rest if r[c] is not None]
        return "%d-%d" % (min(values), max(values)) if values else "-"

    print("  %-8s" % "" + "".join("%16s" % spread(c) for c in columns) + "   (range of the redeploys)")
PY
echo "own = wall - (detect + compile + boot + hook), a lower bound; listen->switch: from the app's \"listening on\" line to the success status, an upper bound (see the head of bench/deploy.sh)"
