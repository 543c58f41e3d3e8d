#!/usr/bin/env bash
# The platform's output style: steps `-----> `, details indented by 7 spaces, errors ` !     `.

topic() { echo "-----> $*"; }
indent() { sed -u -E '/^(-----> | !     )/!s/^/       /'; }
# One ` !     ` line each, on stderr.
error() { for line in "$@"; do echo " !     $line" >&2; done; }
# A warning that stays in the build output, not only in a failure's summary.
warning() { echo " !     Warning: $*"; }

# Config vars live in ENV_DIR only; npm and build scripts read some of them (npm_config_*,
# NODE_ENV...), so they are exported as the official buildpack does, less the same names.
export_env_dir() {
  local f name size total=0
  for f in "$1"/*; do
    [ -f "$f" ] || continue
    name=${f##*/}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [[ $name =~ ^(PATH|GIT_DIR|CPATH|CPPATH|LD_PRELOAD|LIBRARY_PATH|LANG|BUILD_DIR)$ ]] && continue
    # A value over 32 KiB, or past 1 MiB of them in all, stays in ENV_DIR only: the kernel
    # refuses to start a program whose environment holds a string of 128 KiB, or 2 MiB in
    # all ("Argument list too long"), and npm, node and every build script would fail.
    size=$(wc -c <"$f")
    if [ "$size" -gt 32768 ] || [ $((total + size)) -gt 1048576 ]; then
      echo "       note: config var $name ($size bytes) is too large for the environment of the build's tools: it is in ENV_DIR ($1/$name) only"
      continue
    fi
    total=$((total + size))
    export "$name=$(cat "$f")"
  done
}
