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
  local f name
  for f in "$1"/*; do
    [ -f "$f" ] || continue
    name=${f##*/}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [[ $name =~ ^(PATH|GIT_DIR|CPATH|CPPATH|LD_PRELOAD|LIBRARY_PATH|LANG|BUILD_DIR)$ ]] && continue
    export "$name=$(cat "$f")"
  done
}
